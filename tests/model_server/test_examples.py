"""Classify and Regress (REST and gRPC) on TF Serving's half_plus_two, and the tf.Example codec."""

from __future__ import annotations

import grpc
import httpx
import pytest
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

from base.errors import InvalidArgument
from pools.model_server import examples
from tests.model_server.helpers import ModelServer


def test_json_features_become_typed_tf_examples() -> None:
    (raw,) = examples.serialize_json([{"i": [1, 2], "f": [1, 2.5], "s": "a",
                                       "b": {"b64": "AAE="}}], {"c": 3})
    example = example_pb2.Example.FromString(raw)
    feature = example.features.feature
    assert list(feature["i"].int64_list.value) == [1, 2]
    assert list(feature["f"].float_list.value) == [1.0, 2.5]
    assert list(feature["s"].bytes_list.value) == [b"a"]
    assert list(feature["b"].bytes_list.value) == [b"\x00\x01"]
    assert list(feature["c"].int64_list.value) == [3]


@pytest.mark.parametrize("rows, context, words", [
    ([{"x": [1, "a"]}], {}, "numbers or all strings"),
    ([{"x": 1}], {"x": 2}, "both"),
    ([{"x": {"b64": "!"}}], {}, "base64"),
])
def test_bad_features_are_invalid_argument(rows: list, context: dict, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        examples.serialize_json(rows, context)


def test_rest_regress_on_half_plus_two(served: ModelServer) -> None:
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]}
    response = httpx.post(f"{served.rest}/v1/models/half_plus_two:regress", json=body)
    assert response.json() == {"results": [2.5, 3.0]}
    # Context features are shared by every example.
    body = {"signature_name": "regress_x_to_y", "context": {"x": 5.0}, "examples": [{}]}
    response = httpx.post(f"{served.rest}/v1/models/half_plus_two:regress", json=body)
    assert response.json() == {"results": [4.5]}


def test_rest_classify_on_half_plus_two(served: ModelServer) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 4.0}]}
    response = httpx.post(f"{served.rest}/v1/models/half_plus_two:classify", json=body)
    # The model has scores and no classes: labels are empty, as TF Serving answers.
    assert response.json() == {"results": [[["", 2.5]], [["", 4.0]]]}


def test_rest_regress_needs_a_regress_signature(served: ModelServer) -> None:
    body = {"examples": [{"x": 1.0}]}  # serving_default is a predict signature
    response = httpx.post(f"{served.rest}/v1/models/half_plus_two:regress", json=body)
    assert response.status_code == 400 and "method_name" in response.json()["error"]


def test_grpc_regress_and_classify(served: ModelServer) -> None:
    stub = served.prediction_stub()
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "regress_x_to_y"
    for x in (1.0, 3.0):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    response = stub.Regress(request, 30)
    assert [r.value for r in response.result.regressions] == [2.5, 3.5]
    assert response.model_spec.version.value == 123

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "half_plus_two"
    classify.model_spec.signature_name = "classify_x_to_y"
    listed = classify.input.example_list_with_context
    listed.context.features.feature["x"].float_list.value.append(2.0)
    listed.examples.add()
    response = stub.Classify(classify, 30)
    (row,) = response.result.classifications
    assert [(c.label, c.score) for c in row.classes] == [("", 3.0)]


def multi_request(*tasks: tuple[str, str, str]) -> inference_pb2.MultiInferenceRequest:
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    for x in (1.0, 3.0):
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(x)
    return request


def test_grpc_multi_inference_runs_every_task_on_the_one_input(served: ModelServer) -> None:
    stub = served.prediction_stub()
    response = stub.MultiInference(multi_request(
        ("half_plus_two", "classify_x_to_y", "classify"),
        ("half_plus_two", "regress_x_to_y", "regress")), 30)
    classified, regressed = response.results
    assert [[c.score for c in row.classes]
            for row in classified.classification_result.classifications] == [[2.5], [3.5]]
    assert [r.value for r in regressed.regression_result.regressions] == [2.5, 3.5]
    assert [(r.model_spec.name, r.model_spec.version.value, r.model_spec.signature_name)
            for r in response.results] == [("half_plus_two", 123, "classify_x_to_y"),
                                            ("half_plus_two", 123, "regress_x_to_y")]


@pytest.mark.parametrize("tasks, words", [
    ((), "at least one task"),
    ((("half_plus_two", "regress_x_to_y", "regress"), ("other", "regress_x_to_y", "regress")),
     "same model name"),
    ((("half_plus_two", "regress_x_to_y", "regress"),
      ("half_plus_two", "regress_x_to_y", "regress")), "Duplicate evaluation of signature"),
    ((("half_plus_two", "serving_default", "predict"),), "Unsupported signature method_name"),
])
def test_grpc_multi_inference_refuses_what_tf_serving_refuses(
        served: ModelServer, tasks: tuple[tuple[str, str, str], ...], words: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction_stub().MultiInference(multi_request(*tasks), 30)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert words in (caught.value.details() or "")
