"""common.limits: the int64 bounds are TensorFlow's."""
from __future__ import annotations

import tensorflow as tf

from common.limits import INT64_MAX, INT64_MIN, UINT64_MAX


def test_bounds_are_tensorflows_and_python_ints() -> None:
    assert (INT64_MIN, INT64_MAX, UINT64_MAX) == (tf.int64.min, tf.int64.max, tf.uint64.max)
    assert all(type(v) is int for v in (INT64_MIN, INT64_MAX, UINT64_MAX))
    assert float(INT64_MAX) == 2.0 ** 63  # why insights.scoring compares floats with >= float(INT64_MAX)
