"""Request half of the REST wire contract (TF Serving `json_tensor.cc::Fill*FromJson`).

* Bodies are parsed by `json_parse.parse_json` (rapidjson's leniency and messages).
* `decode_predict_inputs(doc, specs)` turns `"instances"` (row format: one element per batch row,
  objects keyed by input alias when the signature has several inputs) or `"inputs"` (columnar:
  each tensor as-is) into numpy arrays, checking each JSON value against the signature dtype in
  the same order, with the same messages, as TF Serving. `{"b64": "..."}` carries bytes.
* Leaf values follow `json_leaves` (type rules and messages).

Specs are injected (a mapping alias -> `TensorSpec`), so the codec never touches the manager.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from serving.codec.json_leaves import checker, dense_shape, fill, is_b64_object, scalar_column, shape_text, to_array
from serving.codec.json_write import debug_string
from serving.core.errors import InvalidArgumentError, ServingError
from serving.core.types import RequestFormat, TensorMap, TensorSpec


def signature_name_of(doc: Mapping[str, Any]) -> str:
    """The optional `signature_name` ("" when absent); must be a JSON string."""
    name = doc.get("signature_name", "")
    if type(name) is not str:
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


class _Column:
    """Accumulates one input's rows for the row format (`AddInstanceItem`)."""

    __slots__ = ("dtype", "check", "flat", "shape", "size")

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.check = checker(dtype)
        self.flat: list[Any] = []
        self.shape: tuple[int, ...] | None = None
        self.size = 0

    def add(self, value: Any) -> None:
        if type(value) is not list:
            shape: tuple[int, ...] = ()
            self.flat.append(self.check(value))
            size = 1
        else:
            shape = dense_shape(value)
            before = len(self.flat)
            fill(value, 0, shape, self.check, self.flat)
            size = len(self.flat) - before
        if self.shape is None:
            self.shape, self.size = shape, size
        elif self.size != size:
            raise InvalidArgumentError(f"Expecting tensor size: {self.size} but got: {size}")
        elif self.shape != shape:
            raise InvalidArgumentError(
                f"Expecting shape {shape_text(self.shape)} but got: {shape_text(shape)}"
            )


def _instance_error(index: int, err: ServingError, key: str | None = None) -> InvalidArgumentError:
    where = f"{index} key: {key}" if key is not None else f"{index}"
    return InvalidArgumentError(
        f"Failed to process element: {where} of 'instances' list. Error: {err.status_string()}"
    )


_RowPlan = tuple[tuple[int, tuple[str, ...]], ...]
_PLANS: dict[int, tuple[Mapping[str, TensorSpec], _RowPlan]] = {}
_MAX_PLANS = 256


def _row_plan(specs: Mapping[str, TensorSpec]) -> _RowPlan:
    """The inputs grouped by dtype, so a row request costs one array build per dtype rather than
    one per input. Cached by identity: a signature's specs mapping lives as long as the signature
    (the entry holds it, so its id cannot be reused while cached)."""
    entry = _PLANS.get(id(specs))
    if entry is not None and entry[0] is specs:
        return entry[1]
    groups: dict[int, list[str]] = {}
    for name, spec in specs.items():
        groups.setdefault(spec.dtype, []).append(name)
    plan = tuple((dtype, tuple(names)) for dtype, names in groups.items())
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(specs)] = (specs, plan)
    return plan


def _scalar_rows(instances: list[Any], specs: Mapping[str, TensorSpec]) -> TensorMap | None:
    """The common request (every row an object of exactly the inputs, or a plain scalar for a
    single input, all plain scalars) without per-value Python checks; None for anything else."""
    names = specs.keys()
    if type(instances[0]) is not dict:
        if len(specs) != 1:
            return None
        name, spec = next(iter(specs.items()))
        tensor = scalar_column(instances, spec.dtype)
        return None if tensor is None else {name: tensor}
    if names == {"b64"}:  # {"b64": ...} rows are values, not named inputs
        return None
    for item in instances:
        if type(item) is not dict or item.keys() != names:
            return None
    rows = len(instances)
    tensors = {}
    for dtype, group in _row_plan(specs):
        block = scalar_column([item[name] for item in instances for name in group], dtype)
        if block is None:
            return None
        if len(group) == 1:
            tensors[group[0]] = block
            continue
        block = block.reshape(rows, len(group))
        for column, name in enumerate(group):
            tensors[name] = block[:, column]
    return {name: tensors[name] for name in names}


def _decode_instances(instances: list[Any], specs: Mapping[str, TensorSpec]) -> TensorMap:
    fast = _scalar_rows(instances, specs)
    if fast is not None:
        return fast
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
        name: to_array(col.flat, (rows,) + (col.shape or ()), col.dtype)
        for name, col in columns.items()
    }


def _decode_tensor(value: Any, dtype: int) -> npt.NDArray[Any]:
    shape = dense_shape(value)
    flat: list[Any] = []
    fill(value, 0, shape, checker(dtype), flat)
    return to_array(flat, shape, dtype)


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
                          max_rows: int) -> tuple[TensorMap, RequestFormat]:
    """Builds the input tensors of a predict request (`FillPredictRequestFromJson` after lookup).

    Args:
      doc: the parsed request object.
      specs: the signature's inputs, alias -> spec (must be non-empty).
      max_rows: safety limit on batch rows (instances, or dim 0 of columnar tensors), checked on
        the parsed lists before any value is converted.
    Returns:
      The tensors and the request format, which decides the response shape.
    Raises:
      InvalidArgumentError: TF Serving's messages for malformed requests; ours past `max_rows`.
    """
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = json_array(doc, "instances", "Expecting 'instances' to be an list/array",
                               "No values in 'instances' array")
        check_rows(len(instances), max_rows)
        return _decode_instances(instances, specs), RequestFormat.ROW
    if has_inputs:
        inputs = doc["inputs"]
        named = type(inputs) is dict and not is_b64_object(inputs)
        for value in ([inputs[name] for name in specs if name in inputs] if named else [inputs]):
            if type(value) is list:  # its length is the tensor's dim 0: refused before any conversion
                check_rows(len(value), max_rows)
        return _decode_inputs(inputs, specs), RequestFormat.COLUMNAR
    raise InvalidArgumentError("Missing 'inputs' or 'instances' key")


def check_rows(rows: int, max_rows: int, what: str = "instances") -> None:
    """Our `--max_instances_per_request` cap (no TF Serving equivalent), for REST and gRPC alike; `what` names
    the rows in the message (`instances`, or `examples` for classify/regress).

    Raises:
      InvalidArgumentError: `rows` is over `max_rows`.
    """
    if rows > max_rows:
        raise InvalidArgumentError(
            f"Request has {rows} {what}, more than the limit of {max_rows} per request "
            "(--max_instances_per_request)"
        )


def json_array(doc: Mapping[str, Any], key: str, not_an_array: str, empty: str) -> list[Any]:
    """`doc[key]` (present), checked to be a non-empty JSON array. TF Serving words these two errors
    differently for `instances` (`json_tensor.cc` FillTensorMapFromInstancesList) and `examples`
    (`ParseExampleList`), so the caller gives the text after `JSON Value: <doc> `.

    Raises:
      InvalidArgumentError: `JSON Value: <doc> <not_an_array>`, or `... <empty>` for `[]`.
    """
    value = doc[key]
    if type(value) is not list:
        raise InvalidArgumentError(f"JSON Value: {debug_string(doc)} {not_an_array}")
    if not value:
        raise InvalidArgumentError(f"JSON Value: {debug_string(doc)} {empty}")
    return value
