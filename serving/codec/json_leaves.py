"""JSON leaves -> tensors, with TF Serving's type rules (`json_tensor.cc::AddValueToTensor`).

Each JSON value is checked against the signature dtype with TF Serving's messages: integer
dtypes take only JSON integers in range, floats take any number, strings take JSON strings or
`{"b64": ...}`, bools only `true`/`false`. `fill` walks nested lists depth-first and insists on a
dense, regular nesting (`FillTensorProto`); `to_array` builds the numpy value.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from tensorflow.core.framework import types_pb2 as dt

from common.limits import INT64_MAX, INT64_MIN, UINT64_MAX
from serving.codec.json_write import debug_string, json_type_name
from serving.core.errors import InvalidArgumentError, UnimplementedError
from serving.core.types import NUMPY_DTYPES, dtype_name

DT_STRING = dt.DT_STRING
_INT32 = (int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max))
# TF Serving checks the 8- and 16-bit dtypes against int32's range too (they travel in int_val).
_INT_RANGES = {
    dt.DT_INT32: _INT32, dt.DT_UINT8: _INT32, dt.DT_INT16: _INT32, dt.DT_INT8: _INT32,
    dt.DT_INT64: (INT64_MIN, INT64_MAX), dt.DT_UINT32: (0, int(np.iinfo(np.uint32).max)), dt.DT_UINT64: (0, UINT64_MAX),
}


def is_b64_object(value: Any) -> bool:
    """`{"b64": "<string>"}` with exactly that one key: a bytes value, not a named-input object."""
    return type(value) is dict and len(value) == 1 and type(value.get("b64")) is str


def to_bytes(text: str) -> bytes:
    """UTF-8 bytes of a decoded JSON string (raw invalid bytes survive via surrogateescape)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise InvalidArgumentError(
                "JSON Parse error: The surrogate pair in string is invalid."
            ) from None


def decode_b64(value: Any) -> bytes:
    if not is_b64_object(value):
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
        )
    data = value["b64"]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError("Unable to base64 decode") from None


def _type_error(value: Any, dtype: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"JSON Value: {debug_string(value)} Type: {json_type_name(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _make_checker(dtype: int) -> Callable[[Any], Any]:
    """Returns a function validating one JSON leaf against `dtype` (`AddValueToTensor`)."""
    if dtype in (1, 2):
        def check_float(v: Any) -> Any:
            t = type(v)
            if t is float:
                return v
            if t is int:
                try:
                    return float(v)
                except OverflowError:
                    return float("inf") if v > 0 else float("-inf")
            raise _type_error(v, dtype)
        return check_float
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]

        def check_int(v: Any) -> Any:
            if type(v) is int and low <= v <= high:
                return v
            raise _type_error(v, dtype)
        return check_int
    if dtype == 10:
        def check_bool(v: Any) -> Any:
            if type(v) is bool:
                return v
            raise _type_error(v, dtype)
        return check_bool
    if dtype == DT_STRING:
        def check_string(v: Any) -> Any:
            if type(v) is str:
                return to_bytes(v)
            if type(v) is dict:
                return decode_b64(v)
            raise _type_error(v, dtype)
        return check_string

    def unsupported(v: Any) -> Any:
        if type(v) is dict:
            raise _type_error(v, dtype)
        raise UnimplementedError(
            f"Conversion of JSON Value: {debug_string(v)} to type: {dtype_name(dtype)}"
        )
    return unsupported


_CHECKERS: dict[int, Callable[[Any], Any]] = {}


def checker(dtype: int) -> Callable[[Any], Any]:
    check = _CHECKERS.get(dtype)
    if check is None:
        check = _CHECKERS[dtype] = _make_checker(dtype)
    return check


def dense_shape(value: Any) -> tuple[int, ...]:
    dims = []
    while type(value) is list:
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


def fill(value: Any, level: int, shape: tuple[int, ...], check: Callable[[Any], Any],
         out: list[Any]) -> None:
    """`FillTensorProto`: appends leaves depth-first, insisting on a dense, regular nesting."""
    rank = len(shape)
    if type(value) is not list:
        if level != rank:
            raise InvalidArgumentError(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        out.append(check(value))
        return
    if level >= rank:
        raise InvalidArgumentError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidArgumentError(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        fill(item, level + 1, shape, check, out)


def to_array(flat: list[Any], shape: tuple[int, ...], dtype: int) -> npt.NDArray[Any]:
    """The leaves as an array of `shape` (batch dimension included) and TF dtype enum `dtype`.

    Raises:
      InvalidArgumentError: more dimensions than numpy arrays can have (`np.MAXDIMS`, 32 in numpy 1.x);
        TF allows 254, but such a tensor cannot be built here and no real signature takes one.
    """
    if len(shape) > np.MAXDIMS:
        raise InvalidArgumentError(
            f"Tensor of rank {len(shape)} is not supported: at most {np.MAXDIMS} dimensions.")
    np_dtype = NUMPY_DTYPES[dtype]
    if dtype in (4, 5, 6):  # TF narrows int_val with wrap-around.
        return np.array(flat, dtype=np.int32).astype(np_dtype).reshape(shape)
    return np.array(flat, dtype=np_dtype).reshape(shape)


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def scalar_column(values: list[Any], dtype: int) -> npt.NDArray[Any] | None:
    """`values` as a 1-D tensor when each is a plain JSON scalar the dtype takes as is, else None.

    The per-value checks above cost more than the rest of a request; this answers the common
    case with a few C-level passes, and anything unusual (nested lists, b64 objects, ints out
    of range, narrow int dtypes) returns None so the checked path builds it or the error.
    """
    kinds = set(map(type, values))
    try:
        if dtype in (1, 2) and kinds <= {float, int}:
            if int in kinds:
                values = [float(v) for v in values]
            return np.array(values, dtype=NUMPY_DTYPES[dtype])
        if dtype == 9 and kinds == {int}:
            return np.array(values, dtype=np.int64)
        if dtype == DT_STRING and kinds == {str}:
            return np.array([v.encode() for v in values], dtype=object)
        if dtype == 10 and kinds == {bool}:
            return np.array(values, dtype=np.bool_)
    except (OverflowError, UnicodeEncodeError):
        pass
    return None
