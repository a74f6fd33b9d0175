"""Classify/regress wire format: JSON `examples` -> serialized tf.Examples, results -> JSON.

Mirrors TF Serving's `FillClassifyRegressRequestFromJson` / `MakeJsonFromClassificationResult`
/ `MakeJsonFromRegressionResult`. Feature kinds come from JSON types: decimals -> float_list,
integers and booleans -> int64_list, strings and `{"b64": ...}` -> bytes_list.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import input_pb2

from common.limits import INT64_MAX, INT64_MIN, UINT64_MAX
from serving.codec.decode import check_rows, json_array
from serving.codec.json_leaves import decode_b64, is_b64_object, to_bytes
from serving.codec.json_write import PrettyWriter, debug_string, format_decimal, json_type_name
from serving.core.errors import InvalidArgumentError

_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    kind = feature.WhichOneof("kind")

    def require(wanted: str) -> None:
        if kind not in (None, wanted):
            raise InvalidArgumentError(
                f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[kind]}"
            )

    if type(value) is bool:
        require("int64_list")
        feature.int64_list.value.append(1 if value else 0)
    elif type(value) is str:
        require("bytes_list")
        feature.bytes_list.value.append(to_bytes(value))
    elif is_b64_object(value):
        require("bytes_list")
        feature.bytes_list.value.append(decode_b64(value))
    elif type(value) is float:
        require("float_list")
        feature.float_list.value.append(value)
    elif type(value) is int:
        if value > UINT64_MAX or value < INT64_MIN:
            require("float_list")
            feature.float_list.value.append(float(value))
            return
        require("int64_list")
        if value > INT64_MAX:
            raise InvalidArgumentError(
                f"Feature: {name} has uint64_t element. Only int64_t is supported."
            )
        feature.int64_list.value.append(value)
    else:
        raise InvalidArgumentError(
            f"Feature: {name} has element with unexpected JSON type: {json_type_name(value)}"
        )


def _make_example(value: Any) -> example_pb2.Example:
    if type(value) is not dict:
        raise InvalidArgumentError(f"Example must be JSON object but got JSON {json_type_name(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if type(content) is list else [content]:
            _add_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)
    return example


def decode_examples(doc: Mapping[str, Any], max_rows: int) -> list[bytes]:
    """Serialized examples of a classify/regress request (context bytes prefixed, as TF Serving)."""
    context = b""
    if "context" in doc:
        context = _make_example(doc["context"]).SerializeToString()
    if "examples" not in doc:
        raise InvalidArgumentError(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected "
            "and was not found"
        )
    examples = json_array(doc, "examples", "Expecting 'examples' value to be an list/array",
                          "'examples' value is an empty array")
    check_rows(len(examples), max_rows, "examples")
    return [context + _make_example(item).SerializeToString() for item in examples]


def encode_classify_results(results: Sequence[Sequence[tuple[str, float]]]) -> bytes:
    """`{"results": [[[label, score], ...], ...]}` with TF Serving's whitespace."""
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for classes in results:
        writer.single_line_arrays = True
        writer.start_array()
        for label, score in classes:
            writer.start_array()
            writer.string(label)
            writer.raw(format_decimal(score, True))
            writer.end_array()
        writer.end_array()
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.getvalue().encode("utf-8", "surrogateescape")


def encode_regress_results(values: Sequence[float]) -> bytes:
    """`{"results": [v, ...]}` with TF Serving's whitespace."""
    writer = PrettyWriter(single_line_arrays=True)
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for value in values:
        writer.raw(format_decimal(value, True))
    writer.end_array()
    writer.end_object()
    return writer.getvalue().encode("utf-8", "surrogateescape")


def example_bytes(request_input: input_pb2.Input, max_rows: int | None = None) -> list[bytes]:
    """The serialized tf.Examples of a Classify/Regress request's `input` (gRPC, warmup records).

    `example_list_with_context`: each example is the context's bytes followed by the example's
    (protobuf merges concatenated messages), as TF Serving's `InputToSerializedExampleTensor`.
    `max_rows`: our `--max_instances_per_request` cap (`decode.check_rows`); None: no cap (warmup).

    Raises:
      InvalidArgumentError: the input is empty ("Input is empty", as TF Serving), or more than
        `max_rows` examples.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = request_input.example_list.examples
        if max_rows is not None:
            check_rows(len(examples), max_rows)
        return [e.SerializeToString() for e in examples]
    if kind == "example_list_with_context":
        data = request_input.example_list_with_context
        if max_rows is not None:
            check_rows(len(data.examples), max_rows)
        context = data.context.SerializeToString()
        return [context + e.SerializeToString() for e in data.examples]
    raise InvalidArgumentError("Input is empty")
