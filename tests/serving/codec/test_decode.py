"""`serving/codec/decode.py`: the row cap (`--max_instances_per_request`) comes before any conversion."""
from __future__ import annotations

import pytest

from serving.codec.decode import decode_predict_inputs
from serving.core.errors import InvalidArgumentError
from serving.core.types import TensorSpec

FLOAT = 1  # DT_FLOAT
SPECS = {"x": TensorSpec("x:0", FLOAT, (-1,))}
TOO_MANY = r"Request has 4 instances, more than the limit of 3 per request \(--max_instances_per_request\)"


@pytest.mark.parametrize("doc", [
    {"instances": [1.0, 2.0, 3.0, "not a float"]},
    {"inputs": [1.0, 2.0, 3.0, "not a float"]},
    {"inputs": {"x": [1.0, 2.0, 3.0, "not a float"]}},
])
def test_rows_over_the_cap_are_refused_before_values_are_converted(doc: dict) -> None:
    """The fourth value cannot be converted: the row error shows the count came first."""
    with pytest.raises(InvalidArgumentError, match=TOO_MANY):
        decode_predict_inputs(doc, SPECS, max_rows=3)


@pytest.mark.parametrize("doc", [{"inputs": [1.0, 2.0, 3.0]}, {"inputs": {"x": [1.0, 2.0, 3.0]}, "extra": 1}])
def test_rows_at_the_cap_are_decoded(doc: dict) -> None:
    tensors, _ = decode_predict_inputs(doc, SPECS, max_rows=3)
    assert tensors["x"].tolist() == [1.0, 2.0, 3.0]
