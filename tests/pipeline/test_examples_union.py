"""Tests for pipeline/examples_union.py: the training spans' splits joined into one Examples artifact, file by
file, with the inputs' formats; what cannot be joined is refused with what is wrong."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, channel, standard_artifacts

from pipeline import config as cfg
from pipeline import examples_union

SPLITS = (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT, cfg.EVAL_SPLIT)


def _examples(root: Path, span: int, ids: dict[str, list[int]]) -> standard_artifacts.Examples:
    """An Examples artifact of `span` as ExampleGen writes it: one GZIP TFRecord file per split."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(root / f"span-{span}")
    artifact.split_names = artifact_utils.encode_split_names(list(ids))
    artifact.set_int_custom_property("span", span)
    examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(artifact, "tfrecords_gzip")
    for split, values in ids.items():
        folder = Path(artifact.uri, f"Split-{split}")
        folder.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), "GZIP") as writer:
            for value in values:
                example = tf.train.Example()
                example.features.feature["Customer_ID"].int64_list.value.append(value)
                writer.write(example.SerializeToString())
    return artifact


def _ids(folder: Path) -> list[int]:
    files = [str(p) for p in sorted(folder.glob("*.gz"))]
    return sorted(tf.train.Example.FromString(r.numpy()).features.feature["Customer_ID"].int64_list.value[0]
                  for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _run(inputs: list[standard_artifacts.Examples], out: Path) -> standard_artifacts.Examples:
    output = standard_artifacts.Examples()
    output.uri = str(out)
    component = examples_union.examples_union([channel.Channel(type=standard_artifacts.Examples) for _ in inputs])
    examples_union.Executor().Do(
        {examples_union.INPUT_KEY.format(index=i): [a] for i, a in enumerate(inputs)},
        {examples_union.OUTPUT_KEY: [output]}, component.exec_properties)
    return output


def test_union_holds_every_row_of_the_train_and_validation_splits_of_each_span_and_no_eval_row(tmp_path: Path) -> None:
    spans = [_examples(tmp_path, 3, {"train": [1, 2, 3], "validation": [4], "eval": [5]}),
             _examples(tmp_path, 4, {"train": [1, 2, 6], "validation": [4, 7], "eval": [5, 8]})]
    union = _run(spans, tmp_path / "union")
    assert artifact_utils.decode_split_names(union.split_names) == ["train", "validation"]
    assert _ids(tmp_path / "union" / "Split-train") == [1, 1, 2, 2, 3, 6]  # a customer once per month
    assert _ids(tmp_path / "union" / "Split-validation") == [4, 4, 7]
    assert not (tmp_path / "union" / "Split-eval").exists()
    assert sorted(p.name for p in (tmp_path / "union" / "Split-train").iterdir()) == [
        "span-3-data_tfrecord-00000-of-00001.gz", "span-4-data_tfrecord-00000-of-00001.gz"]
    assert union.get_string_custom_property(examples_union.SPANS_PROPERTY) == "3,4"
    assert examples_utils.get_payload_format(union) == example_gen_pb2.FORMAT_TF_EXAMPLE
    assert examples_utils.get_file_format(union) == "tfrecords_gzip"


def test_inputs_that_cannot_be_joined_are_refused_with_what_is_wrong(tmp_path: Path) -> None:
    good = _examples(tmp_path, 3, {"train": [1], "validation": [2]})
    no_validation = _examples(tmp_path, 4, {"train": [3]})
    with pytest.raises(examples_union.UnionError, match=r"\(span 4\) has no split 'validation'"):
        _run([good, no_validation], tmp_path / "a")
    other_format = _examples(tmp_path, 5, {"train": [3], "validation": [4]})
    examples_utils.set_payload_format(other_format, example_gen_pb2.FORMAT_PARQUET)
    with pytest.raises(examples_union.UnionError, match="different payload or file formats"):
        _run([good, other_format], tmp_path / "b")
    with pytest.raises(ValueError, match="at least one"):
        examples_union.examples_union([])
