"""The REST JSON codec, pure: request forms, b64, dtype and shape checks, answer shapes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from base.errors import InvalidArgument
from pools.model_server import tensors

F32 = {"x": np.dtype(np.float32)}
STR = {"data_bytes": np.dtype(object)}
TWO = {"a": np.dtype(np.int32), "b": np.dtype(object)}


def decode(body: dict, dtypes: dict) -> dict[str, np.ndarray]:
    return tensors.decode_inputs(tensors.parse_predict(body), dtypes)


def test_row_form_single_input_plain_values() -> None:
    out = decode({"instances": [1, 2.5, 5]}, F32)
    assert out["x"].dtype == np.float32 and out["x"].tolist() == [1.0, 2.5, 5.0]


def test_row_form_named_inputs_are_stacked_per_name() -> None:
    out = decode({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": {"b64": "eXk="}}]}, TWO)
    assert out["a"].tolist() == [1, 2]
    assert out["b"].tolist() == [b"x", b"yy"]


def test_columnar_form_bare_value_and_named() -> None:
    assert decode({"inputs": [[1, 2], [3, 4]]}, F32)["x"].shape == (2, 2)
    assert decode({"inputs": {"x": [7]}}, F32)["x"].tolist() == [7.0]


def test_b64_values_decode_to_bytes() -> None:
    out = decode({"instances": [{"b64": "aGVsbG8="}, "ab"]}, STR)
    assert out["data_bytes"].tolist() == [b"hello", b"ab"]


@pytest.mark.parametrize("body, dtypes, words", [
    ({"instances": [1], "inputs": [1]}, F32, "only one of"),
    ({"signature_name": "x"}, F32, "Missing 'inputs' or 'instances'"),
    ({"instances": 3}, F32, "list"),
    ({"instances": []}, F32, "empty"),
    ({"instances": ["abc"]}, F32, "String is not of expected type"),
    ({"inputs": {"x": [1.5]}}, {"x": np.dtype(np.int32)}, "not of expected type"),
    ({"inputs": {"y": [1]}}, F32, "alias not found"),
    ({"instances": [[1, 2], [3]]}, F32, "ragged"),
    ({"instances": [{"b64": "!!"}]}, STR, "base64"),
    ({"instances": [1]}, TWO, "inputs"),
    ({"instances": [{"a": 1, "b": "x"}, {"a": 2}]}, TWO, "keys"),
    ({"instances": [5]}, STR, "Number is not of expected type: string"),
])
def test_bad_requests_are_invalid_argument(body: dict, dtypes: dict, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        decode(body, dtypes)


def test_parse_body_rejects_bad_json_and_non_objects() -> None:
    with pytest.raises(InvalidArgument, match="JSON Parse error"):
        tensors.parse_body(b"{nope")
    with pytest.raises(InvalidArgument):
        tensors.parse_body(b"[1, 2]")
    assert tensors.parse_body(b'{"instances": [NaN]}')["instances"][0] != 0


def test_row_answer_single_output_is_a_plain_list() -> None:
    body = tensors.encode_outputs("row", {"y": np.array([2.5, 0.1], np.float32)})
    assert body == {"predictions": [2.5, 0.1]}  # float32 0.1 printed as 0.1, as TF Serving


def test_row_answer_several_outputs_is_a_list_of_objects() -> None:
    body = tensors.encode_outputs("row", {"y": np.array([1, 2]), "z": np.array([b"a", b"b"])})
    assert body == {"predictions": [{"y": 1, "z": "a"}, {"y": 2, "z": "b"}]}


def test_row_answer_needs_one_batch_size() -> None:
    with pytest.raises(InvalidArgument, match="batch"):
        tensors.encode_outputs("row", {"y": np.array([1, 2]), "z": np.array([1])})


def test_columnar_answers() -> None:
    assert tensors.encode_outputs("columnar", {"y": np.array([[1, 2]])}) == {"outputs": [[1, 2]]}
    assert tensors.encode_outputs("columnar", {"y": np.array([1]), "z": np.array([2])}) == {
        "outputs": {"y": [1], "z": [2]}}


def test_bytes_outputs_are_b64_only_when_the_alias_ends_in_bytes() -> None:
    body = tensors.encode_outputs("columnar", {"out_bytes": np.array([b"\xff\x00"], object)})
    assert body == {"outputs": [{"b64": "/wA="}]}


def test_nan_and_infinity_are_written_as_tf_serving_does() -> None:
    body = tensors.encode_outputs("row", {"y": np.array([math.nan, math.inf], np.float32)})
    assert tensors.dumps(body) == b'{"predictions":[NaN,Infinity]}'


def test_float32_answers_round_trip_in_their_short_spelling() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.standard_normal(20_000).astype(np.float32),
        (rng.standard_normal(20_000) * 10.0 ** rng.integers(-40, 38, 20_000)).astype(np.float32),
        np.array([0.1, 2.5, 1 / 3, 1e-45, 3.4028235e38, -0.0, 16777217, 123456.7], np.float32)])
    text = tensors.dumps(tensors.to_json_value("y", values))
    back = np.array(json.loads(text), np.float64).astype(np.float32)
    assert np.array_equal(back, values)
    assert tensors.to_json_value("y", np.array([0.1, 2.5, 1 / 3, 123456.7], np.float32)) == [
        0.1, 2.5, 0.33333334, 123456.7]
    shortest = values[:20_000].astype(str).astype(np.float64)
    assert np.array_equal(tensors.short_float32(values[:20_000]), shortest)
