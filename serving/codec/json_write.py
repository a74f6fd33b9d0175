"""Byte-level JSON output as TF Serving writes it (rapidjson `PrettyWriter`, `WriteDecimal`).

TF Serving does not use a generic JSON dumper: floats are printed with `%g` and widened only when
they do not round-trip, non-finite floats become `NaN`/`Infinity`, and the pretty printer uses a
4-space indent with an optional single-line-array mode. `PrettyWriter` below replays rapidjson's
prefix rules so bodies match byte for byte.
"""
from __future__ import annotations

import math
import struct
from typing import Any

_F32 = struct.Struct("<f")
_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"})
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})
_INDENT = "    "


def quote(text: str) -> str:
    """A JSON string literal escaped as rapidjson does (control chars, quote, backslash only)."""
    return '"' + text.translate(_ESCAPES) + '"'


def _float32_roundtrips(text: str, value: float) -> bool:
    try:
        rounded: float = _F32.unpack(_F32.pack(float(text)))[0]
        return rounded == value
    except OverflowError:
        return False


def format_decimal(value: float, is_float32: bool) -> str:
    """TF Serving `WriteDecimal`: `%g`, widened to max_digits10 if lossy; `.0` for bare integers."""
    if math.isfinite(value):
        text = f"{value:g}"
        if is_float32:
            if not _float32_roundtrips(text, value):
                text = f"{value:.9g}"
        elif float(text) != value:
            text = f"{value:.17g}"
        if "." not in text and "e" not in text:
            text += ".0"
        return text
    if math.isnan(value):
        return "NaN"
    return "-Infinity" if value < 0 else "Infinity"


def _grisu(value: float) -> str:
    """rapidjson's shortest double form for echoed request values (used only in messages)."""
    if not math.isfinite(value):
        return format_decimal(value, False)
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


class PrettyWriter:
    """rapidjson `PrettyWriter<StringBuffer>` with `kFormatSingleLineArray` switching."""

    def __init__(self, single_line_arrays: bool = False) -> None:
        self._out: list[str] = []
        self._stack: list[list[Any]] = []  # [in_array, value_count]
        self.single_line_arrays = single_line_arrays

    def _prefix(self) -> None:
        if not self._stack:
            return
        level = self._stack[-1]
        out = self._out
        if level[0]:
            if level[1] > 0:
                out.append(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                out.append("\n" + _INDENT * len(self._stack))
        else:
            if level[1] > 0:
                out.append(",\n" if level[1] % 2 == 0 else ": ")
            else:
                out.append("\n")
            if level[1] % 2 == 0:
                out.append(_INDENT * len(self._stack))
        level[1] += 1

    def raw(self, text: str) -> None:
        self._prefix()
        self._out.append(text)

    def string(self, text: str) -> None:
        self._prefix()
        self._out.append(quote(text))

    key = string

    def start_object(self) -> None:
        self._open("{", in_array=False)

    def end_object(self) -> None:
        self._close("}", multi_line=True)

    def start_array(self) -> None:
        self._open("[", in_array=True)

    def end_array(self) -> None:
        self._close("]", multi_line=not self.single_line_arrays)

    def _open(self, bracket: str, in_array: bool) -> None:
        self._prefix()
        self._out.append(bracket)
        self._stack.append([in_array, 0])

    def _close(self, bracket: str, multi_line: bool) -> None:
        """A non-empty container ends on a line of its own at its parent's indent (unless single-line)."""
        level = self._stack.pop()
        if level[1] and multi_line:
            self._out.append("\n" + _INDENT * len(self._stack))
        self._out.append(bracket)

    def value(self, value: Any) -> None:
        """Writes a parsed-JSON value (dict/list/str/int/float/bool/None) recursively."""
        if isinstance(value, dict):
            self.start_object()
            for k, v in value.items():
                self.key(k)
                self.value(v)
            self.end_object()
        elif isinstance(value, list):
            self.start_array()
            for v in value:
                self.value(v)
            self.end_array()
        elif isinstance(value, str):
            self.string(value)
        elif value is True:
            self.raw("true")
        elif value is False:
            self.raw("false")
        elif value is None:
            self.raw("null")
        elif isinstance(value, float):
            self.raw(_grisu(value))
        else:
            self.raw(str(value))

    def getvalue(self) -> str:
        return "".join(self._out)


DEBUG_STRING_LIMIT = 256


def debug_string(value: Any) -> str:
    """TF Serving `JsonValueToDebugString`: pretty, arrays on one line, cut at 256 bytes."""
    if isinstance(value, float):
        text = format_decimal(value, False)
    else:
        writer = PrettyWriter(single_line_arrays=True)
        writer.value(value)
        text = writer.getvalue()
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > DEBUG_STRING_LIMIT:
        text = raw[:DEBUG_STRING_LIMIT].decode("utf-8", "ignore")
    return text


def json_type_name(value: Any) -> str:
    """rapidjson type names used in messages: Null False True Object Array String Number."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def error_body(message: str) -> bytes:
    """`MakeJsonFromStatus`: `{\\n    "error": "<message>"\\n}`."""
    return ('{\n    "error": ' + quote(message) + "\n}").encode("utf-8", "surrogateescape")
