"""CsvExampleGen's executor, vectorised: the same tf.Examples, byte for byte, several times faster.

`make bench-scale` showed TFX's CSV executor spending most of its time in per-row Python steps
(figures: docs/performance.md, "Pipeline at scale"): Python's csv module, a type guess per cell, a tf.Example
built cell by cell, serialised twice. Here, per file and in blocks of rows:
- pyarrow's C++ reader splits the CSV into columns of raw bytes;
- each column's type follows TFX's rule (csv_decoder.ColumnTypeInferrer: the widest of INT < FLOAT
  < STRING over the column's non-empty cells, int64 range for INT), computed once per distinct value;
- each distinct value is encoded once as its serialised map entry `name -> Feature`, and a row's
  tf.Example is the concatenation of its cells' entries in name order, which is what protobuf's
  deterministic serialisation writes. Empty cells give an empty list, as TFX's handlers do.
The records parse to the tf.Examples TFX's executor writes, and they are byte for byte the
deterministic serialisation TFX hashes to assign a split, so the splits and everything downstream are
unchanged (tests/pipeline/test_csv_examples.py compares the two executors' outputs).
Like TFX's executor it reads each file whole; the Beam workers share the work file by file.

Split by an id column (`SplitConfig.partition_feature_name`, e.g. Customer_ID, so a customer falls in the
same split in every span): TFX's base executor then hashes the named feature of each record, which it
can read only from a parsed tf.train.Example. For that case the records are parsed back into
tf.train.Examples, as TFX's own CSV executor hands them over, so the splits and the written bytes are
TFX's (tests/pipeline/test_csv_examples.py compares them); it costs one parse per row.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow as tf
from pyarrow import csv as pa_csv
from tfx.components import CsvExampleGen as TfxCsvExampleGen
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils, proto_utils

from common.limits import INT64_MAX, INT64_MIN

UNKNOWN, INT, FLOAT, STRING = range(4)
"""TFX's column types (tfx_bsl csv_decoder.ColumnType), in its order: a column takes the widest seen."""
_BLOCK_BYTES = 8 << 20
"""CSV bytes parsed at a time: bounds memory whatever the file size."""


def value_type(cell: bytes) -> int:
    """The type TFX infers from one cell (csv_decoder._InferValueType): int() first, then float()."""
    if not cell:
        return UNKNOWN
    try:
        return INT if INT64_MIN <= int(cell) <= INT64_MAX else STRING
    except ValueError:
        try:
            float(cell)
        except ValueError:
            return STRING
        return FLOAT


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int, or of a negative int64 as its 64-bit two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2): tag, payload length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _payload(column_type: int, cell: bytes) -> bytes:
    """The value inside a cell's one-element list: raw bytes, packed float32, or int64 varint."""
    if column_type == STRING:
        return cell
    if column_type == FLOAT:
        return np.float32(float(cell)).tobytes()
    return _varint(int(cell))


def feature_bytes(column_type: int, cell: bytes) -> bytes:
    """tf.train.Feature of one cell, serialised as TFX's CSV handlers build it (empty cell: empty list)."""
    if column_type == UNKNOWN:
        return b""
    inner = field_bytes(1, _payload(column_type, cell)) if cell else b""
    return field_bytes({STRING: 1, FLOAT: 2, INT: 3}[column_type], inner)  # bytes_list, float_list, int64_list


def entry_bytes(name: bytes, column_type: int, cell: bytes) -> bytes:
    """One `features.feature` map entry (name -> Feature), as the repeated field 1 of Features."""
    return field_bytes(1, field_bytes(1, name) + field_bytes(2, feature_bytes(column_type, cell)))


class _ColumnEncoder:
    """entry_bytes of one column's cells, fast: every length prefix depends only on the payload's length."""

    def __init__(self, name: str, column_type: int):
        self._name, self._type = name.encode(), column_type
        self._empty = entry_bytes(self._name, column_type, b"")
        self._prefixes: dict[int, bytes] = {}

    def __call__(self, cell: bytes) -> bytes:
        if not cell or self._type == UNKNOWN:
            return self._empty
        payload = _payload(self._type, cell)
        prefix = self._prefixes.get(len(payload))
        if prefix is None:
            full = entry_bytes(self._name, self._type, cell)
            prefix = self._prefixes[len(payload)] = full[: len(full) - len(payload)]
        return prefix + payload


def column_types(blocks: Iterator[pa.RecordBatch], names: Sequence[str]) -> list[int]:
    """Each column's type over every block (the widest of its distinct values' types)."""
    types = [UNKNOWN] * len(names)
    for block in blocks:
        for i, column in enumerate(block.columns):
            if types[i] != STRING:
                distinct = column.unique().to_pylist()
                types[i] = max([types[i], *(value_type(v) for v in distinct)])
    return types


def serialize_block(block: pa.RecordBatch, names: Sequence[str], types: Sequence[int]) -> list[bytes]:
    """The deterministic serialisation of each row's tf.Example."""
    order = sorted(range(len(names)), key=lambda i: names[i].encode())  # protobuf sorts map keys as bytes
    columns = []
    for i in order:
        encoded = block.column(i).dictionary_encode()
        encode = _ColumnEncoder(names[i], types[i])
        entries = np.array([encode(v) for v in encoded.dictionary.to_pylist()] or [b""], dtype=object)
        columns.append(entries[encoded.indices.to_numpy(zero_copy_only=False)])
    headers: dict[int, bytes] = {}
    rows = []
    for row in zip(*columns, strict=True):
        body = b"".join(row)
        header = headers.get(len(body))
        if header is None:
            header = headers[len(body)] = _varint(1 << 3 | 2) + _varint(len(body))
        rows.append(header + body)
    return rows


def read_blocks(path: str, names: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """The rows of one CSV file (header skipped) as blocks of raw-bytes columns."""
    with beam.io.filesystems.FileSystems.open(path) as handle:  # local files and object stores (gs://) alike
        reader = pa_csv.open_csv(
            handle,
            read_options=pa_csv.ReadOptions(column_names=list(names), skip_rows=1, block_size=_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(column_types={n: pa.binary() for n in names},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        yield from reader


class _FileTypes(beam.DoFn):
    """One file's column types."""

    def __init__(self, names: Sequence[str]):
        self._names = list(names)

    def process(self, path: str) -> Iterator[list[int]]:
        yield column_types(read_blocks(path, self._names), self._names)


class _FileExamples(beam.DoFn):
    """One file's rows as serialised tf.Examples, given every column's type over all files."""

    def __init__(self, names: Sequence[str]):
        self._names = list(names)

    def process(self, path: str, types: list[int]) -> Iterator[bytes]:
        for block in read_blocks(path, self._names):
            yield from serialize_block(block, self._names, types)


def _widest(types: list[list[int]]) -> list[int]:
    return [max(column) for column in zip(*types, strict=True)]


@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(beam.typehints.Union[bytes, tf.train.Example])
class _CsvToSerializedExamples(beam.PTransform):
    """The files of one input split (a glob under input_base) as serialised tf.Examples (parsed ones when
    the split is by a feature, see the module docstring)."""

    def __init__(self, exec_properties: dict[str, Any], split_pattern: str):
        super().__init__()
        self._pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
        self._by_feature = partition_feature(exec_properties) is not None

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        files = sorted(fileio.glob(self._pattern))
        if not files:
            raise RuntimeError(f"Split pattern {self._pattern} does not match any files.")
        names = io_utils.load_csv_column_names(files[0])
        for path in files[1:]:
            if io_utils.load_csv_column_names(path) != names:
                raise RuntimeError(f"Files in same split {self._pattern} have different header.")
        paths = pipeline | "Files" >> beam.Create(files)
        types = (paths | "FileTypes" >> beam.ParDo(_FileTypes(names))
                 | "ColumnTypes" >> beam.CombineGlobally(lambda per_file: _widest(list(per_file))))
        records = paths | "ToTFExample" >> beam.ParDo(_FileExamples(names), beam.pvalue.AsSingleton(types))
        if self._by_feature:  # TFX's partition by feature reads parsed tf.Examples (module docstring)
            return records | "ParseForPartition" >> beam.Map(tf.train.Example.FromString)
        return records


def partition_feature(exec_properties: dict[str, Any]) -> str | None:
    """The output config's `split_config.partition_feature_name` when set (as TFX's base executor reads it),
    or None when the splits hash whole rows."""
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
    split_config = output_config.split_config
    return split_config.partition_feature_name if split_config.HasField("partition_feature_name") else None


class Executor(BaseExampleGenExecutor):
    """CsvExampleGen's executor with vectorised parsing and encoding (see module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX executor API)
        return _CsvToSerializedExamples


class CsvExampleGen(TfxCsvExampleGen):
    """TFX's CsvExampleGen (same id, parameters and outputs) running the vectorised Executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
