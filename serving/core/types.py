"""Shared vocabulary of the server: ids, tensor specs, lifecycle states and request formats."""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tensorflow.core.framework import types_pb2 as dt

TensorMap = dict[str, npt.NDArray[Any]]
"""Signature alias -> value, the currency between codec, service and servable."""

Done = Callable[[Any, Exception | None], None]
"""`done(result, None)` or `done(None, error)`: how a worker thread hands back one request's
outcome, called exactly once. A plain callback rather than a `concurrent.futures.Future`: at
thousands of requests per second a Future's lock, condition and callback list per request cost
more GIL time than the model run."""


class RequestFormat(enum.Enum):
    """How a predict request carried its tensors; the response mirrors it."""

    ROW = "instances"
    COLUMNAR = "inputs"


class ModelState(enum.Enum):
    """Per-version lifecycle; values are the names in `tensorflow.serving.ModelVersionStatus.State`."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass(frozen=True)
class ServableId:
    """One version of one model, TF Serving's `ServableId`."""

    name: str
    version: int


@dataclass(frozen=True)
class TensorSpec:
    """What a signature declares for one alias (from its `TensorInfo`)."""

    tensor_name: str
    dtype: int
    """A `tensorflow.DataType` enum value (DT_FLOAT == 1, ...)."""
    shape: tuple[int, ...] | None
    """Dims with -1 for unknown; None when the rank is unknown."""


DTYPE_NAMES = {
    dt.DT_FLOAT: "float", dt.DT_DOUBLE: "double", dt.DT_INT32: "int32", dt.DT_UINT8: "uint8",
    dt.DT_INT16: "int16", dt.DT_INT8: "int8", dt.DT_STRING: "string", dt.DT_COMPLEX64: "complex64",
    dt.DT_INT64: "int64", dt.DT_BOOL: "bool", dt.DT_BFLOAT16: "bfloat16", dt.DT_UINT16: "uint16",
    dt.DT_COMPLEX128: "complex128", dt.DT_HALF: "half", dt.DT_RESOURCE: "resource", dt.DT_VARIANT: "variant",
    dt.DT_UINT32: "uint32", dt.DT_UINT64: "uint64",
}
"""`DataTypeString()` for the `tensorflow.DataType` values a signature can realistically use."""

NUMPY_DTYPES = {
    dt.DT_FLOAT: np.float32, dt.DT_DOUBLE: np.float64, dt.DT_INT32: np.int32, dt.DT_UINT8: np.uint8,
    dt.DT_INT16: np.int16, dt.DT_INT8: np.int8, dt.DT_STRING: np.object_, dt.DT_INT64: np.int64,
    dt.DT_BOOL: np.bool_, dt.DT_UINT16: np.uint16, dt.DT_HALF: np.float16, dt.DT_UINT32: np.uint32,
    dt.DT_UINT64: np.uint64, dt.DT_COMPLEX64: np.complex64, dt.DT_COMPLEX128: np.complex128,
}


def dtype_name(dtype: int) -> str:
    """TF's lower-case dtype name (`float`, `int64`, `string`), as used in TF Serving messages."""
    return DTYPE_NAMES.get(dtype, f"unknown dtype {dtype}")
