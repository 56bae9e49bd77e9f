"""TF Serving's gRPC calls as bytes: the methods, and each request's ModelSpec (pure: no I/O).

The router and the cold pool forward a request's bytes without decoding its tensors: only
the ModelSpec (field 1 of every request, inside each task of a MultiInference) is read, and
rewritten when the request must name another model or a pinned version. Everything else is
copied byte for byte. Reading the wire format directly costs a few microseconds; parsing a
PredictRequest into its proto would copy every tensor (and importing predict_pb2 would load
TensorFlow into the router). The ModelSpec itself is parsed and written with its proto
(tensorflow_serving.apis.model_pb2 imports no TensorFlow).

ModelSpec (tensorflow_serving/apis/model.proto): name = 1 (string), version = 2
(google.protobuf.Int64Value, value = 1), signature_name = 3 (string), version_label = 4
(string); version and version_label are one oneof.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError
from tensorflow_serving.apis import model_pb2  # protobuf only: no TensorFlow import

from base.errors import InvalidArgument

PREDICTION = "/tensorflow.serving.PredictionService/"
MODEL = "/tensorflow.serving.ModelService/"
# Full method name -> its kind, as router.inference counts REST calls.
METHODS: dict[str, str] = {
    PREDICTION + "Predict": "predict",
    PREDICTION + "Classify": "classify",
    PREDICTION + "Regress": "regress",
    PREDICTION + "MultiInference": "multi_inference",
    PREDICTION + "GetModelMetadata": "metadata",
    MODEL + "GetModelStatus": "status",
}
RELOAD = MODEL + "HandleReloadConfigRequest"
INFERENCE_KINDS = frozenset(("predict", "classify", "regress", "multi_inference"))
MISSING_SPEC = "Missing ModelSpec"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class WireError(InvalidArgument):
    """Bytes that are not a protobuf message of the expected shape."""


@dataclass(frozen=True)
class ModelSpec:
    name: str = ""
    version: int | None = None
    label: str | None = None
    signature_name: str = ""

    def with_target(self, name: str, version: int | None, label: str | None) -> ModelSpec:
        """The same spec on another model; a variant's own version or label wins (as
        base.tfs_rest.ModelPath.with_target)."""
        if version is None and label is None:
            version, label = self.version, self.label
        return ModelSpec(name, version, label, self.signature_name)

    def encode(self) -> bytes:
        proto = model_pb2.ModelSpec(name=self.name, signature_name=self.signature_name)
        if self.version is not None:
            proto.version.value = self.version
        elif self.label is not None:
            proto.version_label = self.label
        return proto.SerializeToString()


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated protobuf message")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("bad protobuf varint")


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_len(out: bytearray, field: int, payload: bytes) -> None:
    _put_varint(out, (field << 3) | _LEN)
    _put_varint(out, len(payload))
    out += payload


def fields(data: bytes | memoryview) -> list[tuple[int, int, int, int]]:
    """The top-level fields: (number, start of the field, start of the payload, end).
    For a length-delimited field the payload is its bytes; otherwise start == payload."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError("bad protobuf field number 0")
        payload = pos
        if wire == _VARINT:
            _, pos = _varint(data, pos)
            payload = start
        elif wire == _I64:
            pos += 8
            payload = start
        elif wire == _I32:
            pos += 4
            payload = start
        elif wire == _LEN:
            size, payload = _varint(data, pos)
            pos = payload + size
        else:  # groups (3, 4) are in no TF Serving message
            raise WireError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise WireError("truncated protobuf message")
        out.append((number, start, payload, pos))
    return out


def decode_spec(data: bytes) -> ModelSpec:
    """A ModelSpec's fields (the proto's own parser: a few hundred bytes at most)."""
    try:
        proto = model_pb2.ModelSpec.FromString(data)
    except DecodeError as exc:
        raise WireError(f"bad ModelSpec: {exc}") from exc
    choice = proto.WhichOneof("version_choice")
    return ModelSpec(proto.name, proto.version.value if choice == "version" else None,
                     proto.version_label if choice == "version_label" else None,
                     proto.signature_name)


def _spec_parts(view: memoryview) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """The merged bytes of every field 1 (protobuf merges repeated sub-messages by
    concatenation) and the other fields."""
    spec = bytearray()
    rest = []
    for part in fields(view):
        number, start, payload, end = part
        if number == 1 and payload != start:
            spec += view[payload:end]
        else:
            rest.append(part)
    return bytes(spec), rest


def read_spec(request: bytes, multi: bool = False) -> ModelSpec:
    """The ModelSpec a request names (for MultiInference: its first task's).
    InvalidArgument when there is none, as TF Serving answers."""
    view = memoryview(request)
    if multi:
        tasks = [view[p:e] for n, s, p, e in fields(view) if n == 1 and p != s]
        if not tasks:
            raise InvalidArgument("MultiInferenceRequest must have at least one task")
        view = tasks[0]
    spec = decode_spec(_spec_parts(view)[0])
    if not spec.name:
        raise InvalidArgument(MISSING_SPEC)
    return spec


def _replace_spec(message: memoryview, target: ModelSpec) -> bytes:
    old, rest = _spec_parts(message)
    # Only the model and version change: each spec keeps its own signature.
    spec = ModelSpec(target.name, target.version, target.label,
                     decode_spec(old).signature_name)
    head = bytearray()
    _put_len(head, 1, spec.encode())
    pieces = [bytes(head)]
    run_start = run_end = -1
    for _, start, _, end in rest:  # copy runs of untouched fields in one slice each
        if start != run_end:
            if run_start >= 0:
                pieces.append(message[run_start:run_end])
            run_start = start
        run_end = end
    if run_start >= 0:
        pieces.append(message[run_start:run_end])
    return b"".join(pieces)


def write_spec(request: bytes, target: ModelSpec, multi: bool = False) -> bytes:
    """`request` naming `target`'s model, version and label instead (in every task of a
    MultiInference); the signature and every other field are kept as they are."""
    view = memoryview(request)
    if not multi:
        return _replace_spec(view, target)
    pieces: list[bytes | memoryview] = []
    for number, start, payload, end in fields(view):
        if number == 1 and payload != start:
            task = bytearray()
            _put_len(task, 1, _replace_spec(view[payload:end], target))
            pieces.append(bytes(task))
        else:
            pieces.append(view[start:end])
    return b"".join(pieces)
