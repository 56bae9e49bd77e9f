"""TF Serving's gRPC API through the official tensorflow_serving.apis stubs."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tests.model_server.helpers import ModelServer
from tierserve import toy_models


def predict_request(name: str, xs: list[float], version: int | None = None,
                    label: str | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(xs, np.float32)))
    return request


def test_predict_values(served: ModelServer) -> None:
    response = served.prediction_stub().Predict(predict_request("m2", [1.0, 2.0, 5.0]), 30)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == toy_models.expected(
        4.0, 1.0, [1, 2, 5])
    assert (response.model_spec.name, response.model_spec.version.value) == ("m2", 2)
    assert response.model_spec.signature_name == "serving_default"


def test_predict_by_version_label_and_signature(served: ModelServer) -> None:
    stub = served.prediction_stub()
    v1 = stub.Predict(predict_request("m3", [2.0], version=1), 30)
    canary = stub.Predict(predict_request("m3", [2.0], label="canary"), 30)
    assert tf.make_ndarray(v1.outputs["y"]).tolist() == [10.0]
    assert tf.make_ndarray(canary.outputs["y"]).tolist() == [12.0]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m1"
    request.model_spec.signature_name = "bytes_length"
    request.inputs["data_bytes"].CopyFrom(tf.make_tensor_proto([b"abcd", b"\x00"]))
    lengths = stub.Predict(request, 30).outputs["length"]
    assert tf.make_ndarray(lengths).tolist() == [4, 1]


def test_output_filter_selects_outputs(served: ModelServer) -> None:
    request = predict_request("m1", [1.0])
    request.output_filter.append("y")
    assert list(served.prediction_stub().Predict(request, 30).outputs) == ["y"]
    request.output_filter[:] = ["nope"]
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction_stub().Predict(request, 30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_tf_servings_half_plus_two(served: ModelServer) -> None:
    response = served.prediction_stub().Predict(
        predict_request("half_plus_two", [1.0, 2.0, 5.0]), 30)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.5, 3.0, 4.5]


@pytest.mark.parametrize("request_, code", [
    (predict_request("nope", [1.0]), grpc.StatusCode.NOT_FOUND),
    (predict_request("m1", [1.0], version=5), grpc.StatusCode.NOT_FOUND),
    (predict_request("m3", [1.0], label="nope"), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_predict_errors(served: ModelServer, request_: predict_pb2.PredictRequest,
                        code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction_stub().Predict(request_, 30)
    assert caught.value.code() == code


def test_predict_wrong_input_name_is_invalid_argument(served: ModelServer) -> None:
    request = predict_request("m1", [1.0])
    request.inputs["other"].CopyFrom(request.inputs.pop("x"))
    with pytest.raises(grpc.RpcError) as caught:
        served.prediction_stub().Predict(request, 30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "other" in caught.value.details()


def test_get_model_status(served: ModelServer) -> None:
    stub = served.model_stub()
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "m3"
    states = stub.GetModelStatus(request, 30).model_version_status
    assert [(s.version, s.state) for s in states] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    request.model_spec.name = "corrupt"
    (corrupt,) = stub.GetModelStatus(request, 30).model_version_status
    assert corrupt.state == get_model_status_pb2.ModelVersionStatus.END
    assert corrupt.status.error_code != 0 and corrupt.status.error_message
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request, 30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_model_metadata(served: ModelServer) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("signature_def")
    response = served.prediction_stub().GetModelMetadata(request, 30)
    assert response.model_spec.version.value == 123
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    assert serving.inputs["x"].name == "x:0" and serving.outputs["y"].name == "y:0"


def test_predict_answers_in_typed_fields_as_tf_serving(served: ModelServer) -> None:
    stub = served.prediction_stub()
    y = stub.Predict(predict_request("m2", [1.0, 2.0, 5.0]), 30).outputs["y"]
    assert list(y.float_val) == toy_models.expected(4.0, 1.0, [1, 2, 5])
    assert y.tensor_content == b"" and [d.size for d in y.tensor_shape.dim] == [3]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m1"
    request.model_spec.signature_name = "bytes_length"
    request.inputs["data_bytes"].CopyFrom(tf.make_tensor_proto([b"abcd", b"", b"xy"]))
    length = stub.Predict(request, 30).outputs["length"]
    assert list(length.int_val) == [4, 0, 2] and length.tensor_content == b""
