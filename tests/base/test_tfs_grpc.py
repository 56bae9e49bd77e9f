"""base.tfs_grpc: a request's ModelSpec read and rewritten on the wire, checked against the
protos' own parsers; every other byte kept."""

from __future__ import annotations

import grpc
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
)

from base import tfs_grpc
from base.errors import InvalidArgument
from base.grpc_forwarding import is_transport_failure
from base.tfs_grpc import ModelSpec, read_spec, write_spec


def predict(name: str = "m", version: int | None = None, label: str | None = None,
            signature: str = "") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].float_val.extend([1.0, 2.5, -3.0])
    request.inputs["x"].dtype = 1
    request.inputs["s"].string_val.append(b"\x00\xff binary")
    request.output_filter.append("y")
    return request


@pytest.mark.parametrize(("version", "label", "signature"), [
    (None, None, ""), (3, None, "sig"), (None, "canary", ""), (0, None, ""),
    (2**40, None, "x"), (-1, None, "")])
def test_read_matches_the_proto(version: int | None, label: str | None,
                                signature: str) -> None:
    data = predict("model-a", version, label, signature).SerializeToString()
    assert read_spec(data) == ModelSpec("model-a", version, label, signature)


@pytest.mark.parametrize(("target", "expected_version", "expected_label"), [
    (ModelSpec("v2"), None, None),
    (ModelSpec("v2", 7), 7, None),
    (ModelSpec("v2", None, "canary"), None, "canary")])
def test_write_changes_only_the_model_and_version(target: ModelSpec,
                                                  expected_version: int | None,
                                                  expected_label: str | None) -> None:
    original = predict("pub", 3, signature="sig")
    rewritten = predict_pb2.PredictRequest.FromString(
        write_spec(original.SerializeToString(), target))
    assert rewritten.model_spec.name == "v2"
    assert rewritten.model_spec.signature_name == "sig"  # kept
    choice = rewritten.model_spec.WhichOneof("version_choice")
    assert (rewritten.model_spec.version.value if choice == "version" else None) == \
        expected_version
    assert (rewritten.model_spec.version_label if choice == "version_label" else None) == \
        expected_label
    assert rewritten.inputs == original.inputs
    assert rewritten.output_filter == original.output_filter


def test_with_target_keeps_the_callers_version_unless_the_variant_has_one() -> None:
    call = ModelSpec("pub", 3, None, "sig")
    assert call.with_target("v", None, None) == ModelSpec("v", 3, None, "sig")
    assert call.with_target("v", None, "canary") == ModelSpec("v", None, "canary", "sig")
    assert call.with_target("v", 9, None) == ModelSpec("v", 9, None, "sig")


def test_repeated_spec_fields_merge_as_protobuf_does() -> None:
    first = model_pb2.ModelSpec(name="a", signature_name="s").SerializeToString()
    second = model_pb2.ModelSpec(name="b").SerializeToString()
    data = (b"\x0a" + bytes([len(first)]) + first
            + predict().SerializeToString()[len(predict().model_spec.SerializeToString()) + 2:]
            + b"\x0a" + bytes([len(second)]) + second)
    parsed = predict_pb2.PredictRequest.FromString(data)
    assert read_spec(data) == ModelSpec(parsed.model_spec.name, None, None,
                                        parsed.model_spec.signature_name)
    assert predict_pb2.PredictRequest.FromString(
        write_spec(data, ModelSpec("c"))).model_spec.signature_name == "s"


def test_other_requests() -> None:
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "c"
    classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(2)
    assert read_spec(classify.SerializeToString()) == ModelSpec("c")
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "s"
    status.model_spec.version.value = 4
    assert read_spec(status.SerializeToString()) == ModelSpec("s", 4)


def test_multi_inference_rewrites_every_task_keeping_its_signature() -> None:
    multi = inference_pb2.MultiInferenceRequest()
    for signature in ("a", "b"):
        task = multi.tasks.add(method_name="tensorflow/serving/regress")
        task.model_spec.name = "pub"
        task.model_spec.signature_name = signature
    multi.input.example_list.examples.add()
    data = multi.SerializeToString()
    assert read_spec(data, multi=True) == ModelSpec("pub", None, None, "a")
    out = inference_pb2.MultiInferenceRequest.FromString(
        write_spec(data, ModelSpec("v", 2), multi=True))
    assert [(t.model_spec.name, t.model_spec.version.value, t.model_spec.signature_name,
             t.method_name) for t in out.tasks] == [
        ("v", 2, "a", "tensorflow/serving/regress"), ("v", 2, "b", "tensorflow/serving/regress")]
    assert out.input == multi.input
    with pytest.raises(InvalidArgument):
        read_spec(inference_pb2.MultiInferenceRequest().SerializeToString(), multi=True)


@pytest.mark.parametrize("data", [b"", predict_pb2.PredictRequest(
    inputs={}).SerializeToString(), b"\x0a\x05ab", b"\x0b", b"\xff\xff\xff"])
def test_no_spec_or_bad_bytes_are_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        read_spec(data)


def test_methods_are_tf_servings() -> None:
    from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2

    names = {f"/tensorflow.serving.PredictionService/{m.name}"
             for m in prediction_service_pb2.DESCRIPTOR.services_by_name[
                 "PredictionService"].methods}
    names |= {f"/tensorflow.serving.ModelService/{m.name}"
              for m in model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].methods}
    assert set(tfs_grpc.METHODS) | {tfs_grpc.RELOAD} == names


@pytest.mark.parametrize(("code", "details", "transport"), [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
                                  "Connection refused", True),
    (grpc.StatusCode.UNAVAILABLE, "Stream removed (Socket closed)", True),
    (grpc.StatusCode.UNAVAILABLE, "model m version 1 is still loading; retry later", False),
    (grpc.StatusCode.NOT_FOUND, "failed to connect", False)])
def test_transport_failures_are_told_from_a_servers_unavailable(
        code: grpc.StatusCode, details: str, transport: bool) -> None:
    assert is_transport_failure(code, details) is transport
