"""Classify and Regress: tf.Example inputs (JSON or gRPC Input) and TF Serving's results.

A classify or regress signature takes one DT_STRING input, a batch of serialized
tf.Example protos; `context` features are merged into every example. JSON feature
values: whole numbers -> int64_list, decimals -> float_list, strings and
`{"b64": ...}` -> bytes_list (a list mixing whole and decimal numbers is floats).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from base.errors import InvalidArgument

REGRESS = "regress"
CLASSIFY = "classify"
METHOD_NAMES = {REGRESS: "tensorflow/serving/regress", CLASSIFY: "tensorflow/serving/classify"}


def parse_request(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(signature_name, examples, context) of a REST :classify / :regress body."""
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise InvalidArgument("'examples' must be a non-empty list of objects")
    context = body.get("context", {})
    if not isinstance(context, dict) or not all(isinstance(e, dict) for e in examples):
        raise InvalidArgument("'context' and every one of 'examples' must be objects")
    signature = body.get("signature_name", "")
    if not isinstance(signature, str):
        raise InvalidArgument("'signature_name' key must be a string")
    return signature, examples, context


def serialize_json(examples: list[dict[str, Any]], context: dict[str, Any]) -> list[bytes]:
    from tensorflow.core.example import example_pb2

    shared = example_pb2.Example()
    _fill(shared, context)
    out = []
    for features in examples:
        clash = set(features) & set(context)
        if clash:
            raise InvalidArgument(f"feature {sorted(clash)[0]!r} is in both 'context' and "
                                  "an example")
        example = example_pb2.Example()
        example.CopyFrom(shared)
        _fill(example, features)
        out.append(example.SerializeToString())
    return out


def _fill(example: Any, features: dict[str, Any]) -> None:
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        else:
            feature.bytes_list.value.extend(_bytes(name, v) for v in values)


def _bytes(name: str, value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise InvalidArgument(f"feature {name}: invalid base64 value: {exc}") from exc
    raise InvalidArgument(f"feature {name}: values must all be numbers or all strings "
                          f"(or {{\"b64\": ...}}), got {value!r}")


def serialize_input(input_proto: Any) -> list[bytes]:
    """The serialized examples of a gRPC `Input` (context merged into each)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        out = []
        for example in listed.examples:
            merged = type(example)()
            merged.CopyFrom(listed.context)
            merged.MergeFrom(example)
            out.append(merged.SerializeToString())
        return out
    raise InvalidArgument("Input is empty: set example_list or example_list_with_context")


def regressions(outputs: dict[str, np.ndarray], count: int) -> list[float]:
    values = outputs.get("outputs")
    if values is None:
        raise InvalidArgument("regress signature has no 'outputs' tensor")
    flat = np.asarray(values, np.float64).reshape(len(values), -1) if np.ndim(values) else None
    if flat is None or flat.shape != (count, 1):
        raise InvalidArgument(f"regress output has shape {np.shape(values)}, expected "
                              f"[{count}] or [{count}, 1]")
    return [float(np.float32(v)) for v in flat[:, 0]]


def classifications(outputs: dict[str, np.ndarray],
                    count: int) -> list[list[tuple[str, float]]]:
    classes, scores = outputs.get("classes"), outputs.get("scores")
    if classes is None and scores is None:
        raise InvalidArgument("classify signature has neither 'classes' nor 'scores'")
    shape = np.shape(scores if scores is not None else classes)
    if len(shape) != 2 or shape[0] != count:
        raise InvalidArgument(f"classify output has shape {shape}, expected [{count}, n]")
    rows = []
    for i in range(count):
        row = []
        for j in range(shape[1]):
            label = classes[i][j] if classes is not None else b""
            label = label.decode(errors="replace") if isinstance(label, bytes) else str(label)
            score = float(np.float32(scores[i][j])) if scores is not None else 0.0
            row.append((label, score))
        rows.append(row)
    return rows
