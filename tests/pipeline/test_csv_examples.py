"""pipeline/csv_examples.py writes the same tf.Examples, in the same splits, as TFX's own CSV executor."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from tfx_bsl.coders import csv_decoder

from pipeline import config as cfg
from pipeline import csv_examples

TRICKY = (
    "id,age,income,name,note,empty,mixed,big,flt\n"
    '1,34,1000.5,"Smith, J",hello,,1,9223372036854775808,1e5\n'
    '2,,2.0,Ann,"multi\nline",,x,5,inf\n'
    "\n"
    "-3,7,,Émile,,,2.5,-9223372036854775808,-0.0\n"
    '4,+8, 3 ,"""q""",z,,,12,nan\n'
    "5,1_000,-7.25e-3,,,,,0,3\n"
)
"""Quoted commas and quotes, a multi-line cell, a blank line, an all-empty column, a column of ints
and text, ints beyond int64 (text) and at its bounds, signs, spaces, underscores, inf and nan."""


def run_executor(executor_class: type, input_base: Path, out: Path, pattern: str = "*",
                 partition_feature: str | None = None) -> dict[str, list[bytes]]:
    """Run a CSV ExampleGen executor; each split's examples, re-serialised deterministically and sorted."""
    splits = [example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in cfg.SPLIT_BUCKETS.items()]
    split_config = example_gen_pb2.SplitConfig(splits=splits)
    if partition_feature is not None:
        split_config.partition_feature_name = partition_feature
    properties = {
        "input_base": str(input_base),
        "input_config": proto_utils.proto_to_json(
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output(split_config=split_config)),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    context = BaseBeamExecutor.Context(beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    executor_class(context).Do({}, {"examples": [examples]}, properties)
    result = {}
    for split in cfg.SPLIT_BUCKETS:
        files = [str(p) for p in sorted((out / f"Split-{split}").glob("*.gz"))]
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        result[split] = sorted(tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
                               for r in records)
    return result


def assert_same_as_tfx(tmp_path: Path, files: dict[str, bytes]) -> dict[str, list[bytes]]:
    data = tmp_path / "data"
    data.mkdir()
    for name, content in files.items():
        (data / name).write_bytes(content)
    ours = run_executor(csv_examples.Executor, data, tmp_path / "ours")
    assert ours == run_executor(tfx_csv.Executor, data, tmp_path / "tfx")
    return ours


def test_tricky_csv_gives_tfx_s_examples_in_tfx_s_splits(tmp_path: Path) -> None:
    ours = assert_same_as_tfx(tmp_path, {"a.csv": TRICKY.encode()})
    assert sum(len(v) for v in ours.values()) == 5  # the blank line is skipped
    example = tf.train.Example.FromString(next(r for v in ours.values() for r in v))
    kinds = {k: f.WhichOneof("kind") for k, f in example.features.feature.items()}
    assert kinds == {"id": "int64_list", "age": "int64_list", "income": "float_list", "name": "bytes_list",
                     "note": "bytes_list", "empty": None, "mixed": "bytes_list", "big": "bytes_list",
                     "flt": "float_list"}


def test_several_files_and_windows_line_ends(tmp_path: Path) -> None:
    rows = [f"{i},{i % 7},{i * 0.5},{'abc'[i % 3]}" for i in range(300)]
    first = "\n".join(["id,n,x,c", *rows[:150]]) + "\n"
    second = "\r\n".join(["id,n,x,c", *rows[150:]]) + "\r\n"
    ours = assert_same_as_tfx(tmp_path, {"a.csv": first.encode(), "b.csv": second.encode()})
    assert sum(len(v) for v in ours.values()) == 300 and all(ours.values())


def test_split_by_customer_id_is_tfx_s_and_keeps_a_customer_in_one_split_across_spans(tmp_path: Path) -> None:
    """partition_feature_name = Customer_ID: TFX's executor and ours give the same splits, and a customer
    present in two months' files (different rows) lands in the same split in both."""
    from data import spans

    written = spans.write_spans(tmp_path / "spans", 2, shift_at=2, rows=1_000, seed=4)
    by_span = {}
    for entry in written:
        pattern = str(entry["file"])
        ours = run_executor(csv_examples.Executor, tmp_path / "spans", tmp_path / f"ours-{entry['span']}",
                            pattern, "Customer_ID")
        if entry["span"] == 1:  # one comparison with TFX's executor is enough (each run takes seconds)
            assert ours == run_executor(tfx_csv.Executor, tmp_path / "spans", tmp_path / "tfx", pattern, "Customer_ID")
        by_span[entry["span"]] = {tf.train.Example.FromString(r).features.feature["Customer_ID"].int64_list.value[0]:
                                  split for split, records in ours.items() for r in records}
    assert len(by_span[0]) == len(by_span[1]) == 1_000 and all(len(v) > 100 for v in ours.values())
    both = by_span[0].keys() & by_span[1].keys()
    assert len(both) > 300
    assert all(by_span[0][i] == by_span[1][i] for i in both)
    rows = run_executor(csv_examples.Executor, tmp_path / "spans", tmp_path / "rows", "span-*/*")
    moved = sum(1 for split, records in rows.items() for r in records
                if by_span[0].get(tf.train.Example.FromString(r).features.feature["Customer_ID"].int64_list.value[0],
                                  split) != split)
    assert moved > 100  # without the option, rows (not customers) are hashed: customers change split


def test_files_with_different_headers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id,x\n1,2\n")
    (tmp_path / "data" / "b.csv").write_text("id,y\n1,2\n")
    with pytest.raises(RuntimeError, match="different header"):
        run_executor(csv_examples.Executor, tmp_path / "data", tmp_path / "out")


CELLS = st.one_of(
    st.text(alphabet="0123456789-+._e ", max_size=8),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "1e400", "9223372036854775807", "9223372036854775808", "é", ""]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=6))
def test_column_type_is_tfx_s(cells: list[str]) -> None:
    inferrer = csv_decoder.ColumnTypeInferrer(["c"], skip_blank_lines=True)
    accumulator = inferrer.create_accumulator()
    for cell in cells:
        accumulator = inferrer.add_input(accumulator, [cell.encode()])
    (info,) = inferrer.extract_output(accumulator)
    names = {csv_examples.UNKNOWN: "UNKNOWN", csv_examples.INT: "INT", csv_examples.FLOAT: "FLOAT",
             csv_examples.STRING: "STRING"}
    assert names[max(csv_examples.value_type(c.encode()) for c in cells)] == info.type.name


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([csv_examples.INT, csv_examples.FLOAT, csv_examples.STRING]), CELLS)
def test_encoded_cell_is_the_feature_tfx_builds(column_type: int, cell: str) -> None:
    raw = cell.encode()
    if raw and column_type != csv_examples.STRING and csv_examples.value_type(raw) > column_type:
        return  # a column's type covers all its cells: such a cell cannot occur in a column of this type
    handler = {csv_examples.INT: tfx_csv._int_handler, csv_examples.FLOAT: tfx_csv._float_handler,
               csv_examples.STRING: tfx_csv._bytes_handler}[column_type]
    expected = tf.train.Example(features=tf.train.Features(feature={"c": handler(raw)}))
    # Byte for byte, as protobuf serialises it deterministically (NaN included, which == cannot compare).
    assert csv_examples.field_bytes(1, csv_examples.entry_bytes(b"c", column_type, raw)) == expected.SerializeToString(
        deterministic=True)
