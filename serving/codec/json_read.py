"""Request-body parsing with rapidjson's behaviour (`kParseNanAndInfFlag`, stop-when-done).

Accepts `NaN`/`Infinity` literals, ignores bytes after the top-level value and keeps invalid
UTF-8 inside strings (as surrogate escapes). orjson handles the common strict case; the stdlib
decoder handles the rest, and its errors are translated to rapidjson's English messages.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List

import orjson

from serving.core.errors import InvalidArgumentError
from serving.codec.json_write import debug_string

_DECODER = json.JSONDecoder()
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


def parse_json(body: bytes) -> Dict[str, Any]:
    """Parses a request body into a JSON object, or raises INVALID_ARGUMENT as TF Serving does."""
    if not body:
        raise InvalidArgumentError("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = _parse_lenient(body)
    if type(doc) is not dict:
        raise InvalidArgumentError(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


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
    except ValueError:  # an integer longer than sys.get_int_max_str_digits() (4300 digits)
        raise InvalidArgumentError("JSON Parse error: Number too big to be stored in double.") from None


def _rapidjson_message(err: json.JSONDecodeError, text: str) -> str:
    if err.msg == "Expecting ',' delimiter":
        if _innermost_container(text, err.pos) == "{":
            return "Missing a comma or '}' after an object member."
        return "Missing a comma or ']' after an array element."
    return _PY_TO_RAPIDJSON.get(err.msg, "Invalid value.")


def _innermost_container(text: str, end: int) -> str:
    stack: List[str] = []
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
