"""`serving/codec/examples.py`: a classify/regress request's `examples` list, checked as TF Serving checks it and
capped by `--max_instances_per_request` before any example is built."""
from __future__ import annotations

import pytest
from tensorflow.core.example import example_pb2

from serving.codec.examples import decode_examples
from serving.core.errors import InvalidArgumentError


@pytest.mark.parametrize(("doc", "message"), [
    ({"examples": 1}, "JSON Value: {\n    \"examples\": 1\n} Expecting 'examples' value to be an list/array"),
    ({"examples": []}, "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
    ({"examples": [{"x": 1.0}] * 3 + ["not an object"]},
     "Request has 4 examples, more than the limit of 3 per request (--max_instances_per_request)"),
])
def test_a_bad_or_too_long_examples_list_is_invalid_argument(doc: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        decode_examples(doc, max_rows=3)
    assert err.value.message == message


def test_examples_at_the_cap_are_serialized_with_the_context_first() -> None:
    serialized = decode_examples({"context": {"c": "a"}, "examples": [{"x": 1.0}, {"x": [2.0, 3.0]}]}, max_rows=2)
    examples = [example_pb2.Example.FromString(s) for s in serialized]
    assert [list(e.features.feature["x"].float_list.value) for e in examples] == [[1.0], [2.0, 3.0]]
    assert all(e.features.feature["c"].bytes_list.value == [b"a"] for e in examples)
