"""Shared vocabulary of the server: ids, tensor specs, lifecycle states and request formats."""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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
    1: "float", 2: "double", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
    19: "half", 20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
}
"""`DataTypeString()` for the `tensorflow.DataType` values a signature can realistically use."""

NUMPY_DTYPES = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
    7: np.object_, 9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16,
    22: np.uint32, 23: np.uint64, 8: np.complex64, 18: np.complex128,
}


def dtype_name(dtype: int) -> str:
    """TF's lower-case dtype name (`float`, `int64`, `string`), as used in TF Serving messages."""
    return DTYPE_NAMES.get(dtype, f"unknown dtype {dtype}")
