"""TF Serving's gRPC API: PredictionService (Predict, Classify, Regress, MultiInference,
GetModelMetadata) and ModelService."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from base.errors import InvalidArgument, TierserveError
from pools.model_server import examples, tensor_proto
from pools.model_server.manager import ModelManager
from pools.model_server.metrics import UNKNOWN, Metrics
from pools.model_server.model import VersionState

log = logging.getLogger(__name__)
T = TypeVar("T")

_STATE = get_model_status_pb2.ModelVersionStatus.State
# A MultiInference task names its signature's method as TF Serving's signature constants do.
_METHODS = {examples.CLASSIFY: "tensorflow/serving/classify",
            examples.REGRESS: "tensorflow/serving/regress"}


def _spec(request: Any) -> tuple[str, int | None, str | None]:
    spec = request.model_spec
    if not spec.name:
        raise InvalidArgument("Missing ModelSpec")
    version = spec.version.value if spec.HasField("version") else None
    label = spec.version_label if spec.HasField("version_label") else None
    return spec.name, version, label


def version_status_protos(states: list[VersionState]) -> list[Any]:
    from tensorflow.core.protobuf import error_codes_pb2

    out = []
    for state in states:
        proto = get_model_status_pb2.ModelVersionStatus(
            version=state.version, state=_STATE.Value(state.state))
        if state.error is not None:
            proto.status.error_code = error_codes_pb2.Code.Value(state.error.code_name)
            proto.status.error_message = state.error.message
        out.append(proto)
    return out


class _Base:
    def __init__(self, manager: ModelManager, metrics: Metrics,
                 tensor_content: bool = False) -> None:
        self.manager = manager
        self.metrics = metrics
        # --enable_serialization_as_tensor_content; TF Serving's default is the typed fields.
        self.tensor_content = tensor_content

    def _call(self, context: grpc.ServicerContext, method: str, model: str,
              fn: Callable[[], T], empty: T) -> T:
        started = time.monotonic()
        code = "OK"
        in_flight = self.metrics.in_flight.labels("grpc")
        in_flight.inc()
        try:
            return fn()
        except TierserveError as exc:
            code = exc.code_name
            context.abort(exc.grpc_code, exc.message)
        except Exception as exc:  # a bug must not kill the worker thread silently
            code = "INTERNAL"
            log.exception("gRPC %s failed", method)
            context.abort(grpc.StatusCode.INTERNAL, str(exc))
        finally:
            in_flight.dec()
            if model:
                label = model if self.manager.has(model) else UNKNOWN
                self.metrics.observe_request(label, "grpc", method, code,
                                             time.monotonic() - started)
        return empty  # unreachable: abort raises


class PredictionServicer(_Base, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, "predict", request.model_spec.name,
                          lambda: self._predict(request), predict_pb2.PredictResponse())

    def _predict(self, request: Any) -> Any:
        name, version, label = _spec(request)
        version, servable = self.manager.resolve(name, version, label)
        signature = request.model_spec.signature_name
        inputs = {}
        for key, proto in request.inputs.items():
            try:
                inputs[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"input {key}: bad TensorProto: {exc}") from exc
        started = time.monotonic()
        outputs = servable.predict(signature, inputs, list(request.output_filter) or None)
        self.metrics.observe_runtime(name, "predict", time.monotonic() - started)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature or "serving_default"
        for key, array in outputs.items():
            tensor_proto.fill(response.outputs[key], array, self.tensor_content)
        return response

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, "metadata", request.model_spec.name,
                          lambda: self._metadata(request),
                          get_model_metadata_pb2.GetModelMetadataResponse())

    def _metadata(self, request: Any) -> Any:
        name, version, label = _spec(request)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise InvalidArgument(f"Metadata field {','.join(fields) or '(none)'} is not "
                                  "supported; only signature_def is")
        version, servable = self.manager.resolve(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(servable.signature_defs)
        return response

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, "classify", request.model_spec.name,
                          lambda: self._classify(request),
                          classification_pb2.ClassificationResponse())

    def _classify(self, request: Any) -> Any:
        version, outputs, count = self._run_examples(request, examples.CLASSIFY)
        response = classification_pb2.ClassificationResponse()
        self._fill_spec(response, request, version)
        for row in examples.classifications(outputs, count):
            item = response.result.classifications.add()
            for label, score in row:
                item.classes.add(label=label, score=score)
        return response

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, "regress", request.model_spec.name,
                          lambda: self._regress(request), regression_pb2.RegressionResponse())

    def _regress(self, request: Any) -> Any:
        version, outputs, count = self._run_examples(request, examples.REGRESS)
        response = regression_pb2.RegressionResponse()
        self._fill_spec(response, request, version)
        for value in examples.regressions(outputs, count):
            response.result.regressions.add(value=value)
        return response

    def _run_examples(self, request: Any, method: str) -> tuple[int, dict[str, Any], int]:
        name, version, label = _spec(request)
        version, servable = self.manager.resolve(name, version, label)
        serialized = examples.serialize_input(request.input)
        started = time.monotonic()
        outputs = servable.run_examples(request.model_spec.signature_name, method, serialized)
        self.metrics.observe_runtime(name, method, time.monotonic() - started)
        return version, outputs, len(serialized)

    @staticmethod
    def _fill_spec(response: Any, request: Any, version: int) -> None:
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = (request.model_spec.signature_name
                                              or "serving_default")

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        model = request.tasks[0].model_spec.name if request.tasks else ""
        return self._call(context, "multi_inference", model,
                          lambda: self._multi_inference(request),
                          inference_pb2.MultiInferenceResponse())

    def _multi_inference(self, request: Any) -> Any:
        """TF Serving's rules: one model for every task, each signature once, classify or
        regress only; the one input is run through each task's signature in task order."""
        if not request.tasks:
            raise InvalidArgument("Expected at least one task")
        names = {task.model_spec.name for task in request.tasks}
        if len(names) != 1:
            raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the "
                                  "same model name.")
        seen: set[str] = set()
        response = inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            signature = task.model_spec.signature_name or "serving_default"
            if signature in seen:
                raise InvalidArgument(f"Duplicate evaluation of signature: {signature}")
            seen.add(signature)
            result = response.results.add()
            if task.method_name == _METHODS[examples.CLASSIFY]:
                one = self._classify(classification_pb2.ClassificationRequest(
                    model_spec=task.model_spec, input=request.input))
                result.classification_result.CopyFrom(one.result)
            elif task.method_name == _METHODS[examples.REGRESS]:
                one = self._regress(regression_pb2.RegressionRequest(
                    model_spec=task.model_spec, input=request.input))
                result.regression_result.CopyFrom(one.result)
            else:
                raise InvalidArgument(f"Unsupported signature method_name: {task.method_name}")
            result.model_spec.CopyFrom(one.model_spec)
        return response


class ModelServicer(_Base, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._call(context, "status", "", lambda: self._status(request),
                          get_model_status_pb2.GetModelStatusResponse())

    def _status(self, request: Any) -> Any:
        name, version, label = _spec(request)
        if label is not None:
            states = self.manager.labelled_status(name, label)
        else:
            states = self.manager.status(name, version)
        return get_model_status_pb2.GetModelStatusResponse(
            model_version_status=version_status_protos(states))

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = model_management_pb2.ReloadConfigResponse()
        try:
            self.manager.reload(request.config)
        except TierserveError as exc:
            # As TF Serving: the same status in the body and as the RPC's status.
            from tensorflow.core.protobuf import error_codes_pb2

            response.status.error_code = error_codes_pb2.Code.Value(exc.code_name)
            response.status.error_message = exc.message
            context.set_code(exc.grpc_code)
            context.set_details(exc.message)
        return response


def make_server(manager: ModelManager, metrics: Metrics, host: str, port: int,
                max_workers: int = 16, tensor_content: bool = False) -> tuple[grpc.Server, int]:
    """A started gRPC server; returns it and the bound port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="grpc"),
                         options=[("grpc.max_receive_message_length", 256 << 20),
                                  ("grpc.max_send_message_length", 256 << 20)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, metrics, tensor_content), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(manager, metrics), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    server.start()
    return server, bound

