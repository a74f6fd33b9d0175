"""Numeric bounds of TensorFlow's integer dtypes, defined once (from NumPy, which matches tf.int64/tf.uint64)."""
import numpy as np

INT64_MIN: int = int(np.iinfo(np.int64).min)
"""-2**63."""
INT64_MAX: int = int(np.iinfo(np.int64).max)
"""2**63 - 1; TF Serving rejects model versions and tensor sizes above it."""
UINT64_MAX: int = int(np.iinfo(np.uint64).max)
"""2**64 - 1."""
