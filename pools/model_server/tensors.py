"""TF Serving's REST JSON <-> named numpy arrays, pure (no TensorFlow).

Request forms: row (`instances`: a list of rows, each a value or an object of
named values) and columnar (`inputs`: a value or an object of named values).
Binary strings travel as `{"b64": "..."}`. Answers: row form -> `predictions`
(a plain list for a single output, a list of objects otherwise); columnar ->
`outputs` (a bare value for a single output, an object otherwise). String
outputs whose alias ends in `_bytes` are answered as `{"b64": ...}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from base.errors import InvalidArgument

Form = Literal["row", "columnar"]


@dataclass(frozen=True)
class PredictRequest:
    form: Form
    signature_name: str
    raw: Any  # the `instances` or `inputs` value, decoded later against the signature


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"JSON Parse error: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidArgument("JSON Value is not an object: the request body must be one")
    return parsed


def parse_predict(body: dict[str, Any]) -> PredictRequest:
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows and has_cols:
        raise InvalidArgument("Not formatted correctly expecting only one of 'inputs' or "
                              "'instances' keys exists")
    if not has_rows and not has_cols:
        raise InvalidArgument("Missing 'inputs' or 'instances' key")
    signature = body.get("signature_name", "")
    if not isinstance(signature, str):
        raise InvalidArgument("'signature_name' key must be a string")
    if has_rows:
        if not isinstance(body["instances"], list):
            raise InvalidArgument("Expecting 'instances' to be an list/array")
        return PredictRequest("row", signature, body["instances"])
    return PredictRequest("columnar", signature, body["inputs"])


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _is_named(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def decode_inputs(request: PredictRequest,
                  dtypes: Mapping[str, np.dtype[Any]]) -> dict[str, np.ndarray]:
    """Named arrays for the signature whose input dtypes are `dtypes`."""
    if request.form == "row":
        columns = _rows_to_columns(request.raw, dtypes)
    elif _is_named(request.raw):
        columns = dict(request.raw)
    else:
        columns = {_single_input(dtypes, "inputs"): request.raw}
    out: dict[str, np.ndarray] = {}
    for name, value in columns.items():
        if name not in dtypes:
            raise InvalidArgument(f"input tensor alias not found in signature: {name}. Inputs "
                                  f"expected to be in the set {{{','.join(sorted(dtypes))}}}.")
        out[name] = to_array(name, value, dtypes[name])
    return out


def _single_input(dtypes: Mapping[str, np.dtype[Any]], key: str) -> str:
    if len(dtypes) != 1:
        raise InvalidArgument(
            f"The signature has {len(dtypes)} inputs: '{key}' must name each "
            f"({', '.join(sorted(dtypes))}) in an object")
    return next(iter(dtypes))


def _rows_to_columns(rows: list[Any], dtypes: Mapping[str, np.dtype[Any]]) -> dict[str, list]:
    if not rows:
        raise InvalidArgument("No instances in the request: 'instances' is empty")
    if not _is_named(rows[0]):
        name = _single_input(dtypes, "instances")
        if any(_is_named(row) for row in rows):
            raise InvalidArgument("Expecting all 'instances' to be values, not objects")
        return {name: rows}
    names = set(rows[0])
    columns: dict[str, list] = {name: [] for name in rows[0]}
    for row in rows:
        if not _is_named(row) or set(row) != names:
            raise InvalidArgument("Expecting object with keys "
                                  f"{sorted(names)} in every one of 'instances'")
        for name in names:
            columns[name].append(row[name])
    return columns


def to_array(name: str, value: Any, dtype: np.dtype[Any]) -> np.ndarray:
    """One JSON value (nested lists of leaves) as an array of `dtype`, checked."""
    if dtype.kind in "OS":
        converted = _map_leaves(value, lambda leaf: _string_leaf(name, leaf))
        return _stack(name, converted, object, dtype)
    fast = _numeric_fast_path(name, value, dtype)
    if fast is not None:
        return fast
    # Slow path, for its error message: find the leaf of the wrong type.
    _map_leaves(value, lambda leaf: _check_number(name, leaf, dtype))
    return _stack(name, value, dtype, dtype)


def _numeric_fast_path(name: str, value: Any, dtype: np.dtype[Any]) -> np.ndarray | None:
    """numpy parses homogeneous numbers at C speed; None when a leaf needs a closer look."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        return None
    kind = array.dtype.kind
    if kind == "b" and dtype.kind == "b":
        return array
    if kind not in "iuf" or dtype.kind == "b":
        return None
    if dtype.kind in "iu" and kind == "f" and not np.all(np.mod(array, 1) == 0):
        return None
    try:
        return array.astype(dtype, casting="unsafe")
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"Input {name}: values do not fit {dtype}: {exc}") from exc


def _stack(name: str, value: Any, target: Any, dtype: np.dtype[Any]) -> np.ndarray:
    try:
        array = np.array(value, dtype=target)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgument(f"Input {name}: values do not form a tensor of {dtype} "
                              f"(ragged or mixed shapes?): {exc}") from exc
    if target is object and array.dtype != object:
        array = array.astype(object)
    return array


def _map_leaves(value: Any, fn: Any) -> Any:
    if isinstance(value, list):
        return [_map_leaves(item, fn) for item in value]
    return fn(value)


def _string_leaf(name: str, leaf: Any) -> bytes:
    if _is_b64(leaf):
        try:
            return base64.b64decode(leaf["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise InvalidArgument(f"Input {name}: invalid base64 value: {exc}") from exc
    if isinstance(leaf, str):
        return leaf.encode()
    raise InvalidArgument(f"JSON Value: {json.dumps(leaf)} Type: {_json_type(leaf)} is not of "
                          f"expected type: string (input {name})")


def _check_number(name: str, leaf: Any, dtype: np.dtype[Any]) -> None:
    ok = isinstance(leaf, int | float) and not (
        dtype.kind in "iu" and isinstance(leaf, float) and not leaf.is_integer())
    if dtype.kind == "b":
        ok = isinstance(leaf, bool)
    if not ok:
        raise InvalidArgument(f"JSON Value: {json.dumps(leaf)} Type: {_json_type(leaf)} is not "
                              f"of expected type: {dtype} (input {name})")


def _json_type(leaf: Any) -> str:
    for kind, label in ((bool, "Bool"), (int, "Number"), (float, "Number"), (str, "String"),
                        (dict, "Object"), (list, "Array")):
        if isinstance(leaf, kind):
            return label
    return "Null"


# -- answers -------------------------------------------------------------------------------

def to_json_value(name: str, array: np.ndarray) -> Any:
    """An output array as JSON-ready nested lists (float32 in its shortest spelling)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        as_b64 = name.endswith("_bytes")
        return _map_leaves(array.tolist(), lambda leaf: _string_out(leaf, as_b64))
    if array.dtype == np.float32 or array.dtype == np.float16:
        return short_float32(array).tolist()
    return array.tolist()


def short_float32(array: np.ndarray) -> np.ndarray:
    """float32 values as the float64s of their short decimal spelling, for JSON.

    float32 -> float64 alone would add digits (0.1 -> 0.10000000149011612); TF Serving
    prints the float32's own short spelling. numpy's str() finds the shortest but
    costs microseconds a value, so first try rounding to 7, 8, then 9 significant
    digits (9 always round-trips), vectorized, keeping the first that gives the same
    float32; str() only for magnitudes where powers of ten are inexact.
    """
    arr = np.asarray(array, np.float32)
    flat = arr.ravel()
    f64 = flat.astype(np.float64)
    out = f64.copy()
    todo = np.flatnonzero(np.isfinite(f64) & (f64 != 0))
    with np.errstate(all="ignore"):
        magnitude = np.floor(np.log10(np.abs(f64[todo]))).astype(np.int64)
        for digits in (7, 8, 9):
            if todo.size == 0:
                break
            exponent = digits - 1 - magnitude
            exact = np.abs(exponent) <= 22  # 10**22 is the largest exact power of ten
            index, e = todo[exact], exponent[exact]
            scale = 10.0 ** np.abs(e)
            x = f64[index]
            candidate = np.where(e >= 0, np.round(x * scale) / scale,
                                 np.round(x / scale) * scale)
            ok = candidate.astype(np.float32) == flat[index]
            out[index[ok]] = candidate[ok]
            keep = np.ones(todo.size, bool)
            keep[np.flatnonzero(exact)[ok]] = False
            todo, magnitude = todo[keep], magnitude[keep]
    if todo.size:
        out[todo] = flat[todo].astype(str).astype(np.float64)
    return out.reshape(arr.shape)


def _string_out(leaf: Any, as_b64: bool) -> Any:
    data = leaf if isinstance(leaf, bytes) else str(leaf).encode()
    if as_b64:
        return {"b64": base64.b64encode(data).decode()}
    return data.decode("utf-8", errors="replace")


def encode_outputs(form: Form, outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    if form == "columnar":
        if len(outputs) == 1:
            name, array = next(iter(outputs.items()))
            return {"outputs": to_json_value(name, array)}
        return {"outputs": {name: to_json_value(name, a) for name, a in outputs.items()}}
    batch_sizes = {np.asarray(a).shape[0] if np.ndim(a) else None for a in outputs.values()}
    if None in batch_sizes or len(batch_sizes) > 1:
        raise InvalidArgument("Tensors in the output do not share one batch size (0th "
                              "dimension); use the columnar 'inputs' form")
    if len(outputs) == 1:
        name, array = next(iter(outputs.items()))
        return {"predictions": to_json_value(name, array)}
    columns = {name: to_json_value(name, a) for name, a in outputs.items()}
    size = batch_sizes.pop() or 0
    return {"predictions": [{name: col[i] for name, col in columns.items()}
                            for i in range(size)]}


def dumps(body: Any) -> bytes:
    # TF Serving writes NaN and Infinity as such; Starlette's JSONResponse would refuse.
    return json.dumps(body, separators=(",", ":")).encode()
