"""Response half of the REST wire contract (TF Serving `MakeJsonFromTensors`, `json_tensor.cc`).

Row requests get `{"predictions": [...]}` (one entry per batch row; objects keyed by output alias
when there are several outputs); columnar requests get `{"outputs": ...}` with whole tensors.
Outputs are written in sorted alias order (TF Serving's map order is unspecified). A DT_STRING
output whose alias ends in `_bytes` is written as `{"b64": ...}`.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.codec.json_write import PrettyWriter, format_decimal, quote
from serving.core.errors import InvalidArgumentError
from serving.core.types import RequestFormat, TensorMap

_Leaf = Callable[[object], str]


def leaf_writer(alias: str, array: npt.NDArray[Any]) -> _Leaf:
    """The JSON writer of one element of output `alias` (any shape; decided by dtype), as TF Serving writes it:
    shortest round-trip decimals for float32/float64, ints, booleans, strings, and `{"b64": ...}` for aliases
    ending in `_bytes`. Raises InvalidArgumentError for a dtype JSON cannot carry (TF Serving's message)."""
    kind = array.dtype.kind
    if kind == "f" and array.dtype.itemsize in (4, 8):
        is_f32 = array.dtype.itemsize == 4
        return lambda v: format_decimal(v, is_f32)  # type: ignore[arg-type]
    if kind in "iu":
        return str
    if kind == "b":
        return lambda v: "true" if v else "false"
    if kind in "OSU":
        if alias.endswith("_bytes"):
            return lambda v: '{"b64": ' + quote(base64.b64encode(_raw(v)).decode()) + "}"
        return lambda v: quote(_raw(v).decode("utf-8", "surrogateescape"))
    raise InvalidArgumentError(f"Failed to write JSON value for tensor type: {_tf_name(array)}")


def _tf_name(array: npt.NDArray[Any]) -> str:
    names = {"float16": "half", "complex64": "complex64", "complex128": "complex128"}
    return names.get(array.dtype.name, array.dtype.name)


def _raw(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _write_tensor(writer: PrettyWriter, value: object, leaf: _Leaf, is_bytes: bool) -> None:
    if isinstance(value, list):
        writer.start_array()
        for item in value:
            _write_tensor(writer, item, leaf, is_bytes)
        writer.end_array()
    elif is_bytes:
        writer.start_object()
        writer.key("b64")
        writer.string(base64.b64encode(_raw(value)).decode())
        writer.end_object()
    else:
        writer.raw(leaf(value))


def _is_bytes(alias: str, array: npt.NDArray[Any]) -> bool:
    return array.dtype.kind in "OSU" and alias.endswith("_bytes")


def encode_predict_response(outputs: TensorMap, fmt: RequestFormat) -> bytes:
    """Serializes signature outputs exactly as TF Serving's PrettyWriter does."""
    if fmt is RequestFormat.ROW:
        return _encode_rows(outputs)
    return _encode_columns(outputs)


def _encode_rows(outputs: TensorMap) -> bytes:
    items = sorted(outputs.items())
    batch = -1
    for alias, array in items:
        if array.ndim == 0:
            raise InvalidArgumentError(f"Tensor name: {alias} has no shape information ")
        if batch not in (-1, array.shape[0]):
            raise InvalidArgumentError(
                f"Tensor name: {alias} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    if len(items) > 1:
        template = object_template(items)
        if template is not None:
            return scalar_objects(template, [array.tolist() for _, array in items])
    names = [alias for alias, _ in items]
    rows: dict[str, list[object]] = {a: outputs[a].tolist() for a in names}
    leaves = {a: leaf_writer(a, outputs[a]) for a in names}
    if len(names) == 1 and outputs[names[0]].ndim == 1 and not _is_bytes(names[0], outputs[names[0]]):
        leaf = leaves[names[0]]
        body = ", ".join([leaf(v) for v in rows[names[0]]])
        if not body:
            return b'{\n    "predictions": []\n}'
        return ('{\n    "predictions": [' + body + "\n    ]\n}").encode("utf-8", "surrogateescape")
    return write_rows(outputs, names, rows, leaves, batch)


_Template = tuple[list[str], list[_Leaf]]
_TEMPLATES: dict[tuple[tuple[str, np.dtype[Any], int], ...], _Template | None] = {}
_MAX_TEMPLATES = 256


def object_template(items: list[tuple[str, npt.NDArray[Any]]]) -> _Template | None:
    """For outputs that are one scalar each per row: each key's `"alias": ` prefix and leaf writer,
    built once per set of aliases and dtypes (a signature's outputs); None for any other outputs."""
    key = tuple([(alias, array.dtype, array.ndim) for alias, array in items])
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    template: _Template | None = None
    if all(array.ndim == 1 and not _is_bytes(alias, array) for alias, array in items):
        try:
            template = ([quote(alias) + ": " for alias, _ in items], [leaf_writer(a, v) for a, v in items])
        except InvalidArgumentError:  # a dtype JSON cannot carry: the general path says so
            template = None
    if len(_TEMPLATES) >= _MAX_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[key] = template
    return template


def scalar_objects(template: _Template, columns: list[list[object]]) -> bytes:
    """Several outputs, one scalar each per row: the PrettyWriter layout as a template (the
    writer's per-token bookkeeping costs more than the rest of the request)."""
    keys, writers = template
    objects = ["{\n            "
               + ",\n            ".join([k + w(v) for k, w, v in zip(keys, writers, values, strict=True)])
               + "\n        }" for values in zip(*columns, strict=True)]
    if not objects:
        return b'{\n    "predictions": []\n}'
    text = '{\n    "predictions": [\n        ' + ",\n        ".join(objects) + "\n    ]\n}"
    return text.encode("utf-8", "surrogateescape")


def write_rows(outputs: TensorMap, names: list[str], rows: dict[str, list[object]],
                leaves: dict[str, _Leaf], batch: int) -> bytes:
    """The general row-format ("predictions") body: `batch` rows of the outputs `names` (sorted aliases), each
    row from `rows[alias][row]` (the arrays' `tolist()`, first dimension = batch) written with `leaves[alias]`
    (from `leaf_writer`); one output gives bare values, several give one object per row. UTF-8 bytes."""
    as_objects = len(names) > 1
    writer = PrettyWriter()
    writer.start_object()
    writer.key("predictions")
    writer.start_array()
    for row in range(batch):
        if as_objects:
            writer.start_object()
        writer.single_line_arrays = True
        for alias in names:
            if as_objects:
                writer.key(alias)
            _write_tensor(writer, rows[alias][row], leaves[alias], _is_bytes(alias, outputs[alias]))
        writer.single_line_arrays = False
        if as_objects:
            writer.end_object()
    writer.end_array()
    writer.end_object()
    return writer.getvalue().encode("utf-8", "surrogateescape")


def _encode_columns(outputs: TensorMap) -> bytes:
    names = sorted(outputs)
    writer = PrettyWriter()
    writer.start_object()
    writer.key("outputs")
    as_objects = len(names) > 1
    if as_objects:
        writer.start_object()
    for alias in names:
        array = outputs[alias]
        leaf = leaf_writer(alias, array)
        if as_objects:
            writer.key(alias)
        _write_tensor(writer, array.tolist(), leaf, _is_bytes(alias, array))
    if as_objects:
        writer.end_object()
    writer.end_object()
    return writer.getvalue().encode("utf-8", "surrogateescape")
