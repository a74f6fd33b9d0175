"""Request half of the REST wire contract (TF Serving `json_tensor.cc::Fill*FromJson`).

* Bodies are parsed by `json_parse.parse_json` (rapidjson's leniency and messages).
* `decode_predict_inputs(doc, specs)` turns `"instances"` (row format: one element per batch row,
  objects keyed by input alias when the signature has several inputs) or `"inputs"` (columnar:
  each tensor as-is) into numpy arrays, checking each JSON value against the signature dtype in
  the same order, with the same messages, as TF Serving. `{"b64": "..."}` carries bytes.
* `decode_examples(doc)` builds serialized `tf.Example`s for classify/regress.

Specs are injected (a mapping alias -> `TensorSpec`), so the codec never touches the manager.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from serving.errors import InvalidArgumentError, ServingError, UnimplementedError
from serving.jsonfmt import debug_string, json_type_name
from serving.types import NUMPY_DTYPES, RequestFormat, TensorMap, TensorSpec, dtype_name

DT_STRING = 7
_INT_RANGES = {
    3: (-(2**31), 2**31 - 1), 4: (-(2**31), 2**31 - 1), 5: (-(2**31), 2**31 - 1),
    6: (-(2**31), 2**31 - 1), 9: (-(2**63), 2**63 - 1), 22: (0, 2**32 - 1), 23: (0, 2**64 - 1),
}


def signature_name_of(doc: Mapping[str, Any]) -> str:
    """The optional `signature_name` ("" when absent); must be a JSON string."""
    name = doc.get("signature_name", "")
    if type(name) is not str:
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


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


_CHECKERS: Dict[int, Callable[[Any], Any]] = {}


def _checker(dtype: int) -> Callable[[Any], Any]:
    check = _CHECKERS.get(dtype)
    if check is None:
        check = _CHECKERS[dtype] = _make_checker(dtype)
    return check


def _dense_shape(value: Any) -> Tuple[int, ...]:
    dims = []
    while type(value) is list:
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(dims)


def _fill(value: Any, level: int, shape: Tuple[int, ...], check: Callable[[Any], Any],
          out: List[Any]) -> None:
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
        _fill(item, level + 1, shape, check, out)


def _to_array(flat: List[Any], shape: Tuple[int, ...], dtype: int) -> np.ndarray:
    np_dtype = NUMPY_DTYPES[dtype]
    if dtype in (4, 5, 6):  # TF narrows int_val with wrap-around.
        return np.array(flat, dtype=np.int32).astype(np_dtype).reshape(shape)
    return np.array(flat, dtype=np_dtype).reshape(shape)


def _shape_text(shape: Tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


class _Column:
    """Accumulates one input's rows for the row format (`AddInstanceItem`)."""

    __slots__ = ("dtype", "check", "flat", "shape", "size")

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.check = _checker(dtype)
        self.flat: List[Any] = []
        self.shape: Optional[Tuple[int, ...]] = None
        self.size = 0

    def add(self, value: Any) -> None:
        if type(value) is not list:
            shape: Tuple[int, ...] = ()
            self.flat.append(self.check(value))
            size = 1
        else:
            shape = _dense_shape(value)
            before = len(self.flat)
            _fill(value, 0, shape, self.check, self.flat)
            size = len(self.flat) - before
        if self.shape is None:
            self.shape, self.size = shape, size
        elif self.size != size:
            raise InvalidArgumentError(f"Expecting tensor size: {self.size} but got: {size}")
        elif self.shape != shape:
            raise InvalidArgumentError(
                f"Expecting shape {_shape_text(self.shape)} but got: {_shape_text(shape)}"
            )


def _instance_error(index: int, err: ServingError, key: Optional[str] = None) -> InvalidArgumentError:
    where = f"{index} key: {key}" if key is not None else f"{index}"
    return InvalidArgumentError(
        f"Failed to process element: {where} of 'instances' list. Error: {err.status_string()}"
    )


def _decode_instances(instances: List[Any], specs: Mapping[str, TensorSpec]) -> TensorMap:
    if type(instances[0]) is not dict and len(specs) > 1:
        raise InvalidArgumentError(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    columns = {name: _Column(spec.dtype) for name, spec in specs.items()}
    first = instances[0]
    as_objects = type(first) is dict and not is_b64_object(first)
    names = sorted(specs)
    only = next(iter(columns.values()))
    for index, item in enumerate(instances):
        is_object = type(item) is dict and not is_b64_object(item)
        if as_objects:
            if not is_object:
                raise InvalidArgumentError(f"Expecting object but got list at item {index} of input list")
            for key, value in item.items():
                column = columns.get(key)
                try:
                    if column is None:
                        raise InvalidArgumentError(f"JSON object: does not have named input: {key}")
                    column.add(value)
                except ServingError as err:
                    raise _instance_error(index, err, key) from None
            if len(item) != len(columns) or item.keys() != columns.keys():
                raise InvalidArgumentError(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{debug_string(item)} keys must be equal to: {','.join(names)}"
                )
        else:
            if is_object:
                raise InvalidArgumentError(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                only.add(item)
            except ServingError as err:
                raise _instance_error(index, err) from None
    rows = len(instances)
    return {
        name: _to_array(col.flat, (rows,) + (col.shape or ()), col.dtype)
        for name, col in columns.items()
    }


def _decode_tensor(value: Any, dtype: int) -> np.ndarray:
    shape = _dense_shape(value)
    flat: List[Any] = []
    _fill(value, 0, shape, _checker(dtype), flat)
    return _to_array(flat, shape, dtype)


def _decode_inputs(value: Any, specs: Mapping[str, TensorSpec]) -> TensorMap:
    if type(value) is not dict or is_b64_object(value):
        if len(specs) > 1:
            raise InvalidArgumentError(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name, spec = next(iter(specs.items()))
        return {name: _decode_tensor(value, spec.dtype)}
    tensors = {}
    for name in sorted(specs):
        if name not in value:
            raise InvalidArgumentError(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _decode_tensor(value[name], specs[name].dtype)
    return tensors


def decode_predict_inputs(doc: Mapping[str, Any], specs: Mapping[str, TensorSpec],
                          max_rows: int) -> Tuple[TensorMap, RequestFormat]:
    """Builds the input tensors of a predict request (`FillPredictRequestFromJson` after lookup).

    Args:
      doc: the parsed request object.
      specs: the signature's inputs, alias -> spec (must be non-empty).
      max_rows: safety limit on batch rows (instances, or dim 0 of columnar tensors).
    Returns:
      The tensors and the request format, which decides the response shape.
    """
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if type(instances) is not list:
            raise InvalidArgumentError(
                f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise InvalidArgumentError(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        _check_rows(len(instances), max_rows)
        return _decode_instances(instances, specs), RequestFormat.ROW
    if has_inputs:
        tensors = _decode_inputs(doc["inputs"], specs)
        for tensor in tensors.values():
            if tensor.ndim:
                _check_rows(tensor.shape[0], max_rows)
        return tensors, RequestFormat.COLUMNAR
    raise InvalidArgumentError("Missing 'inputs' or 'instances' key")


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise InvalidArgumentError(
            f"Request has {rows} instances, more than the limit of {max_rows} per request "
            "(--max_instances_per_request)"
        )
