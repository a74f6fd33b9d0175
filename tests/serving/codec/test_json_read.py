"""`serving/codec/json_read.py`: the depth and number-length limits, on bytes (no server)."""
from __future__ import annotations

import json

import pytest

from serving.codec.json_read import check_json_limits, parse_json
from serving.core.errors import InvalidArgumentError
from serving.http.limits import MAX_JSON_DEPTH_CEILING


def nested(levels: int) -> bytes:
    """`levels` levels, objects and arrays mixed, with siblings at every level (no run of `[`)."""
    doc: object = 1
    for level in range(levels - 1):
        sibling: object = [] if level else 0  # a container sibling only where `doc` is one too
        doc = [0, doc, sibling] if level % 2 else {"k": doc, "e": sibling}
    return json.dumps({"top": doc}).encode()


@pytest.mark.parametrize("levels", [2, 5, 17, 64])
def test_depth_at_the_limit_passes_and_one_more_is_refused(levels: int) -> None:
    body = nested(levels)
    assert b"[[" not in body and b"{{" not in body
    check_json_limits(body, max_depth=levels, max_number_digits=1000)
    assert parse_json(body, max_depth=levels)
    with pytest.raises(InvalidArgumentError, match=f"more than {levels - 1} levels .--rest_api_max_json_depth."):
        check_json_limits(body, max_depth=levels - 1, max_number_digits=1000)


def test_wide_bodies_with_many_brackets_are_not_deep() -> None:
    wide = json.dumps({"instances": [[[i, i], [i, i]] for i in range(10_000)]}).encode()
    check_json_limits(wide, max_depth=4, max_number_digits=10)
    with pytest.raises(InvalidArgumentError, match="more than 3 levels"):
        check_json_limits(wide, max_depth=3, max_number_digits=10)


@pytest.mark.parametrize("body", [
    b'{"s": "' + b"[" * 100 + b'"}',
    b'{"s": "\\"' + b"[" * 100 + b'\\\\", "t": "{{{{{{"}',  # an escaped quote does not end the string
    b'{"s": "' + b"7" * 5000 + b'", "n": 1234567890}',
    b'{"s": "\\\\", "n": [1e10, -1.5e-300]}',
])
def test_strings_never_count(body: bytes) -> None:
    check_json_limits(body, max_depth=2, max_number_digits=10)


@pytest.mark.parametrize("body", [
    b'{"s": "\\\\", "n": [' * 1 + b"[" * 3 + b"]" * 3 + b"]}",  # `\\\\` ends the escape: brackets count
    b'{"s": "\\\\\\"", "n": [[[[]]]]}',
])
def test_brackets_after_escaped_backslashes_count(body: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="nesting too deep"):
        check_json_limits(body, max_depth=4, max_number_digits=10)


@pytest.mark.parametrize("number, digits", [
    (b"12345", 5), (b"-12345", 5), (b"1.2345", 5), (b"-1.23e+45", 5), (b"0.00000", 6), (b"1E1234", 5),
])
def test_number_digits_are_counted_without_sign_point_and_e(number: bytes, digits: int) -> None:
    body = b'{"pad": "' + b"x" * 50 + b'", "n": [' + number + b"]}"
    check_json_limits(body, max_depth=5, max_number_digits=digits)
    with pytest.raises(InvalidArgumentError, match=f"more than {digits - 1} digits "
                                                   r"\(--rest_api_max_json_number_digits\)"):
        check_json_limits(body, max_depth=5, max_number_digits=digits - 1)


def test_limit_errors_come_before_parse_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="Number too long"):
        parse_json(b'{"n": ' + b"9" * 2000 + b",", max_number_digits=1000)


def test_unclosed_containers_count_as_levels() -> None:
    """`[[],[[],...` never closes: each `[` opens a level even though the body is invalid JSON."""
    with pytest.raises(InvalidArgumentError, match="more than 64 levels"):
        check_json_limits(b"[[]," * 65, max_depth=64, max_number_digits=1000)
    check_json_limits(b"[[]," * 64, max_depth=64, max_number_digits=1000)


@pytest.mark.parametrize("leaf", [b"1.5", b"NaN"])  # orjson; Python's decoder (rapidjson's NaN leniency)
def test_the_depth_ceiling_is_the_limit_that_applies(leaf: bytes) -> None:
    """At `MAX_JSON_DEPTH_CEILING` levels neither parser hits its own nesting limit first."""
    levels = MAX_JSON_DEPTH_CEILING
    doc = parse_json(b'{"a": ' + b"[" * (levels - 1) + leaf + b"]" * (levels - 1) + b"}", max_depth=levels)
    for _ in range(levels):  # the object, then levels - 1 arrays
        doc = doc["a"] if isinstance(doc, dict) else doc[0]
    assert isinstance(doc, float)


TOO_BIG = "JSON Parse error: Number too big to be stored in double. at offset: {}"


@pytest.mark.parametrize("body, offset", [
    (b'{"n": ' + b"1" * 1000 + b"}", 6),  # 1,000 digits: within the digits limit, beyond a double
    (b'{"n": 1' + b"0" * 309 + b"}", 6),  # 1e309 written as an integer (1e308 fits)
    (b'{"s": "1e400", "n": [1, -1e400]}', 24),  # the same text inside a string is not the number
    (b'{"n": [0.5, 2.5e308]}', 12),
])
def test_numbers_that_overflow_a_double_are_refused_as_rapidjson_does(body: bytes, offset: int) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        parse_json(body)
    assert str(raised.value) == TOO_BIG.format(offset)


@pytest.mark.parametrize("tail", [b"", b', "z": NaN'])  # orjson's path, and the stdlib's (NaN)
def test_integers_outside_64_bits_become_doubles_as_in_rapidjson(tail: bytes) -> None:
    doc = parse_json(b'{"u": 18446744073709551615, "i": -9223372036854775808, "big": -9223372036854775809, '
                     b'"e": 1' + b"0" * 300 + b', "tiny": 1e-400' + tail + b"}")
    assert doc["u"] == 2**64 - 1 and type(doc["u"]) is int
    assert doc["i"] == -(2**63) and type(doc["i"]) is int
    assert doc["big"] == -9.223372036854776e18 and type(doc["big"]) is float
    assert doc["e"] == 1e300 and doc["tiny"] == 0.0
