"""`serving/codec/json_write.py`: float formatting as TF Serving writes it, and the pretty debug writer."""
from __future__ import annotations

import struct

import pytest

from serving.codec.json_write import debug_string, format_decimal


def f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


@pytest.mark.parametrize("value, is_f32, text", [
    (3.0, True, "3.0"), (9000000.0, True, "9e+06"), (0.00003, False, "3e-05"),
    (f32(1 / 3), True, "0.333333343"), (2.5, True, "2.5"), (float("nan"), True, "NaN"),
    (float("-inf"), False, "-Infinity"), (0.1, False, "0.1"), (1 / 3, False, "0.33333333333333331"),
    (f32(6e-7), True, "6e-07"),
])
def test_format_decimal_matches_write_decimal(value: float, is_f32: bool, text: str) -> None:
    assert format_decimal(value, is_f32) == text


def test_debug_string_is_pretty_with_single_line_arrays_and_truncated() -> None:
    assert debug_string({"a": [1, 2], "b": {"c": "x"}}) == '{\n    "a": [1, 2],\n    "b": {\n        "c": "x"\n    }\n}'
    assert debug_string(1.0) == "1.0"
    assert len(debug_string(["x" * 50] * 20)) == 256
