"""Request-body parsing with rapidjson's behaviour (`kParseNanAndInfFlag`, stop-when-done).

Accepts `NaN`/`Infinity` literals, ignores bytes after the top-level value and keeps invalid
UTF-8 inside strings (as surrogate escapes). orjson handles the common strict case; the stdlib
decoder handles the rest, and its errors are translated to rapidjson's English messages.

Numbers as rapidjson reads them: integers outside int64/uint64 become doubles, and a number whose
value overflows a double (a 1,000-digit integer, `1e400`) is an error, `Number too big to be stored in
double.` at the number's offset (`kParseErrorNumberTooBig`), never Infinity. orjson refuses such
numbers too, so they take the stdlib path, whose number hooks apply this rule.

Two limits are ours (rapidjson accepts any depth its stack allows and numbers of any length):
nesting depth and digits per number, checked on the bytes before parsing (`check_json_limits`).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from common.limits import INT64_MIN, UINT64_MAX
from serving.codec.json_write import debug_string
from serving.core.errors import InvalidArgumentError
from serving.http.limits import JSON_DEPTH_FLAG, JSON_NUMBER_DIGITS_FLAG, HttpLimits

NUMBER_TOO_BIG = "Number too big to be stored in double."
"""rapidjson's `kParseErrorNumberTooBig` message."""


class _NumberTooBig(Exception):
    """Raised by the number hooks; `literal` is the number as written."""

    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _parse_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NumberTooBig(literal)
    return value


def _parse_int(literal: str) -> Any:
    if len(literal) <= 21:  # sign and 20 digits: uint64's maximum has 20
        value = int(literal)
        if INT64_MIN <= value <= UINT64_MAX:
            return value
    return _parse_float(literal)  # rapidjson (and orjson): a double, an error if it overflows


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int)
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_WHITESPACE = " \t\n\r"
_PY_TO_RAPIDJSON = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
    "Invalid control character at": "Invalid encoding in string.",
}


_NUMBER_MASK = bytes(0x30 if byte in b"+-.0123456789eE" else 0x20 for byte in range(256))
"""`bytes.translate` table: characters that can be part of a number -> `0`, all others -> space."""
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')


def parse_json(body: bytes, max_depth: int = HttpLimits.max_json_depth,
               max_number_digits: int = HttpLimits.max_json_number_digits) -> dict[str, Any]:
    """Parses a request body into a JSON object, or raises INVALID_ARGUMENT as TF Serving does.

    `max_depth` and `max_number_digits` are `check_json_limits`'s, checked first.

    Raises:
      InvalidArgumentError: empty or invalid JSON (rapidjson's message and offset), a limit
        exceeded, or a top-level value that is not an object.
    """
    if not body:
        raise InvalidArgumentError("JSON Parse error: The document is empty")
    check_json_limits(body, max_depth, max_number_digits)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = _parse_lenient(body)
    if type(doc) is not dict:
        raise InvalidArgumentError(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def check_json_limits(body: bytes, max_depth: int, max_number_digits: int) -> None:
    """Refuses a JSON body nested deeper than `max_depth` arrays/objects or holding a number literal
    with more than `max_number_digits` digits (exponent digits count; sign, point and `e` do not).

    Bytes inside strings never count (a string of 5,000 digits or of `[` is fine). The whole body is
    scanned, including bytes after the top-level value. Cost (docs/performance.md): a body with no
    more than `max_depth` brackets and no run of more than `max_number_digits` number characters
    takes two `count`s (a body with no more openers than `max_depth` cannot nest deeper), else two
    `translate`s, a `find` and a `count`, all in C; otherwise the brackets are matched
    in that copy holding only brackets (and quotes, if a string holds brackets), at most
    `max_depth` + 1 passes of `bytes.replace`.

    Raises:
      InvalidArgumentError: `JSON Parse error: ...` naming the limit and its flag.
    """
    if len(body) > max_number_digits:
        needle = b"0" * (max_number_digits + 1)
        if body.translate(_NUMBER_MASK).find(needle) >= 0:
            _check_numbers(_outside_strings(_unescaped(body)), needle)
    if body.count(b"[") + body.count(b"{") <= max_depth:  # too few openers to nest deeper (usual bodies)
        return
    skeleton = _unescaped(body).translate(_BRACKETS, _NOT_STRUCTURE)  # `[` for `[{`, `]` for `]}`, `"`
    if skeleton.count(b"[") > max_depth:
        _check_depth(skeleton, max_depth)


def _unescaped(body: bytes) -> bytes:
    """The body without `\\\\` and `\\"`, the only escapes that matter for finding a string's end."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return body


def _outside_strings(text: bytes) -> bytes:
    """`text`'s bytes outside JSON strings (escapes removed), each string replaced by one space."""
    return b" ".join(text.split(b'"')[::2])


def _check_numbers(text: bytes, needle: bytes) -> None:
    masked = text.translate(_NUMBER_MASK)
    start = masked.find(needle)
    while start >= 0:
        end = masked.find(b" ", start)
        end = len(masked) if end < 0 else end
        if len(text[start:end].translate(None, b"+-.eE")) >= len(needle):
            raise InvalidArgumentError(
                f"JSON Parse error: Number too long: more than {len(needle) - 1} digits "
                f"({JSON_NUMBER_DIGITS_FLAG}).")
        start = masked.find(needle, end)


def _check_depth(skeleton: bytes, max_depth: int) -> None:
    """`skeleton`: the unescaped body's brackets (`[` for both openers, `]` for both closers) and quotes."""
    if b'"' in skeleton:
        # Dropping `""` keeps every bracket's parity of quotes before it (inside a string or not);
        # it removes every string that holds no bracket, which is all of them in usual bodies.
        skeleton = skeleton.replace(b'""', b"")
        if b'"' in skeleton:
            skeleton = b"".join(skeleton.split(b'"')[::2])
    too_deep = b"[" * (max_depth + 1)  # so many openers in a row: too deep, closed or not
    for _ in range(max_depth):
        if too_deep in skeleton or b"[]" not in skeleton:
            break
        skeleton = skeleton.replace(b"[]", b"")  # removes the innermost containers: depth - 1
    if too_deep in skeleton or b"[]" in skeleton:  # a container left after max_depth passes is deeper
        raise InvalidArgumentError(
            f"JSON Parse error: Document nesting too deep: more than {max_depth} levels ({JSON_DEPTH_FLAG}).")


def _parse_lenient(body: bytes) -> Any:
    text = body.decode("utf-8", "surrogateescape")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if start == len(text):
        raise InvalidArgumentError(f"JSON Parse error: The document is empty. at offset: {start}")
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError as err:
        raise InvalidArgumentError(
            f"JSON Parse error: {_rapidjson_message(err, text)} at offset: {err.pos}"
        ) from None
    except RecursionError:
        raise InvalidArgumentError("JSON Parse error: Document nesting too deep.") from None
    except _NumberTooBig as err:
        raise InvalidArgumentError(
            f"JSON Parse error: {NUMBER_TOO_BIG} at offset: {_number_offset(text, err.literal)}") from None


def _number_offset(text: str, literal: str) -> int:
    """Where the first number written as `literal` starts outside strings (rapidjson reports the
    number's start offset); computed only on this error path."""
    masked = _STRING_RE.sub(lambda m: " " * len(m.group()), text)
    found = re.search(r"(?<![0-9.eE+-])" + re.escape(literal) + r"(?![0-9.eE+-])", masked)
    return found.start() if found else 0


def _rapidjson_message(err: json.JSONDecodeError, text: str) -> str:
    if err.msg == "Expecting ',' delimiter":
        if _innermost_container(text, err.pos) == "{":
            return "Missing a comma or '}' after an object member."
        return "Missing a comma or ']' after an array element."
    return _PY_TO_RAPIDJSON.get(err.msg, "Invalid value.")


def _innermost_container(text: str, end: int) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:end]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""
