"""Output TensorProtos with TF Serving's typed fields, checked against a value-by-value fill."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from pools.model_server import tensor_proto

# dtype -> (field, how TF's AsProtoField turns the flat array into that field's values)
_REFERENCE: dict[Any, tuple[str, Any]] = {
    np.float32: ("float_val", lambda a: a.tolist()),
    np.float64: ("double_val", lambda a: a.tolist()),
    np.int32: ("int_val", lambda a: a.tolist()),
    np.int16: ("int_val", lambda a: a.tolist()),
    np.int8: ("int_val", lambda a: a.tolist()),
    np.uint8: ("int_val", lambda a: a.tolist()),
    np.uint16: ("int_val", lambda a: a.tolist()),
    np.int64: ("int64_val", lambda a: a.tolist()),
    np.uint32: ("uint32_val", lambda a: a.tolist()),
    np.uint64: ("uint64_val", lambda a: a.tolist()),
    np.bool_: ("bool_val", lambda a: a.tolist()),
    np.float16: ("half_val", lambda a: a.view(np.uint16).tolist()),
    np.complex64: ("scomplex_val", lambda a: a.view(np.float32).tolist()),
    np.complex128: ("dcomplex_val", lambda a: a.view(np.float64).tolist()),
}


def reference(array: np.ndarray) -> tensor_pb2.TensorProto:
    """The obvious, slow fill: one value at a time into the typed field."""
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    field, values = _REFERENCE[array.dtype.type]
    getattr(proto, field).extend(values(array.ravel()))
    return proto


def sample(dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(7)
    count = int(np.prod(shape))
    if dtype is np.bool_:
        return rng.integers(0, 2, count).astype(bool).reshape(shape)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        # The extremes and zero are where varints change length or sign-extend.
        edges = [v for v in (info.min, info.max, 0, 1, 127, 128, 16383, 16384) if v <= info.max]
        randoms = rng.integers(info.min, info.max, count, dtype=dtype, endpoint=True)
        return np.concatenate([np.array(edges, dtype), randoms])[:count].reshape(shape)
    values = rng.normal(0, 1e3, count)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.normal(0, 1, count)
    return values.astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", list(_REFERENCE))
@pytest.mark.parametrize("shape", [(), (1,), (3, 2), (70_000,)])
def test_typed_fields_match_a_value_by_value_fill(dtype: Any, shape: tuple[int, ...]) -> None:
    array = sample(dtype, shape)
    proto = tensor_proto.to_proto(array)
    assert proto == reference(array)
    assert proto.tensor_content == b""
    back = tf.make_ndarray(proto)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_bfloat16_goes_to_half_val_as_raw_bits() -> None:
    array = tf.constant([1.5, -2.0, 3.25], dtype=tf.bfloat16).numpy()
    proto = tensor_proto.to_proto(array)
    assert proto.dtype == types_pb2.DT_BFLOAT16
    assert list(proto.half_val) == array.view(np.uint16).tolist()
    assert tf.make_ndarray(proto).astype(np.float32).tolist() == [1.5, -2.0, 3.25]


def test_strings_go_to_string_val() -> None:
    array = np.array([[b"ab", b"\x00\xff"], [b"", b"z"]], dtype=object)
    proto = tensor_proto.to_proto(array)
    assert proto.dtype == types_pb2.DT_STRING
    assert list(proto.string_val) == [b"ab", b"\x00\xff", b"", b"z"]
    assert [d.size for d in proto.tensor_shape.dim] == [2, 2]
    assert tf.make_ndarray(proto).tolist() == array.tolist()
    assert list(tensor_proto.to_proto(np.array(["é"])).string_val) == ["é".encode()]


def test_empty_tensor_has_shape_and_no_values() -> None:
    proto = tensor_proto.to_proto(np.zeros((0, 3), np.float32))
    assert [d.size for d in proto.tensor_shape.dim] == [0, 3]
    assert len(proto.float_val) == 0 and proto.tensor_content == b""


def test_tensor_content_on_request() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    proto = tensor_proto.to_proto(array, as_content=True)
    assert len(proto.float_val) == 0
    assert proto.tensor_content == array.tobytes()
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
