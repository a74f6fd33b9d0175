"""Input checks and staging: messy CSVs become clean ones, or a clear InputError."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data.generate import generate
from pipeline import inputs
from pipeline.config import CURATED_SCHEMA


def stage(data: Path, tmp_path: Path, label: str = "Target_Churn", positive: str = "1",
          ids: tuple[str, ...] = ("Customer_ID",)) -> inputs.StagedData:
    return inputs.stage_data(data, tmp_path / "staging", label, positive, ids)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_clean_file_is_staged_unchanged_in_a_content_named_folder(tmp_path: Path) -> None:
    source = write(generate(200), tmp_path / "c.csv")
    staged = stage(source, tmp_path)
    assert staged.directory.parent == tmp_path / "staging" and staged.directory.name.startswith("data-")
    assert staged.rows == 200 and staged.dropped_unlabelled_rows == 0 and staged.missing_cells == {}
    # Same values; only whole numbers written as floats (`45.0`) are written as integers (`45`).
    pd.testing.assert_frame_equal(pd.read_csv(staged.directory / "c.csv"), pd.read_csv(source))


def test_restaging_unchanged_data_keeps_path_and_file_time_so_tfx_cache_holds(tmp_path: Path) -> None:
    source = write(generate(200), tmp_path / "c.csv")
    first = stage(source, tmp_path)
    mtime = (first.directory / "c.csv").stat().st_mtime_ns
    second = stage(source, tmp_path)
    assert second.directory == first.directory
    assert (second.directory / "c.csv").stat().st_mtime_ns == mtime
    write(generate(201), source)
    assert stage(source, tmp_path).directory != first.directory


def test_missing_tokens_and_whitespace_become_empty_cells_and_are_counted(tmp_path: Path) -> None:
    frame = generate(100).astype(str)
    frame.loc[0, "Age"] = "  "
    frame.loc[1, "Age"] = "N/A"
    frame.loc[2, "Annual_Income"] = "nan"
    frame.loc[3, "Gender"] = " Male "
    staged = stage(write(frame, tmp_path / "m.csv"), tmp_path)
    out = pd.read_csv(staged.directory / "m.csv", dtype=str, keep_default_na=False)
    assert list(out.loc[0:2, "Age"]) == ["", "", frame.loc[2, "Age"]]
    assert out.loc[2, "Annual_Income"] == "" and out.loc[3, "Gender"] == "Male"
    assert staged.missing_cells == {"Age": 2, "Annual_Income": 1}


def test_rows_without_label_are_dropped_and_counted(tmp_path: Path) -> None:
    frame = generate(100).astype(str)
    frame.loc[[4, 9], "Target_Churn"] = ""
    staged = stage(write(frame, tmp_path / "l.csv"), tmp_path)
    assert staged.rows == 98 and staged.dropped_unlabelled_rows == 2
    assert sum(staged.label_values.values()) == 98


def test_folder_of_csvs_with_one_header_is_staged_whole(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frame = generate(120)
    write(frame[:60], folder / "a.csv")
    write(frame[60:], folder / "b.csv")
    (folder / "notes.txt").write_text("ignored")
    staged = stage(folder, tmp_path)
    assert staged.rows == 120 and sorted(p.name for p in staged.directory.iterdir()) == ["a.csv", "b.csv"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "absent.csv", "data not found"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no .csv files"),
        (lambda d: write(pd.DataFrame({"x": [1, 2]}), d / "x.csv"), "label column 'Target_Churn' not in"),
        (lambda d: write(generate(100).drop(columns="Customer_ID"), d / "i.csv"), "id column(s) Customer_ID"),
        (lambda d: write(generate(100).assign(Target_Churn=1), d / "one.csv"), "exactly two values"),
        (lambda d: write(generate(20), d / "few.csv"), "at least 50 are needed"),
        (lambda d: (d / "bin.csv").write_bytes(b"\xff\xfe\x00\x01garbage") and d / "bin.csv", "cannot read"),
    ],
)
def test_unusable_input_is_a_clear_input_error(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(inputs.InputError, match=None) as error:
        stage(setup(tmp_path), tmp_path)
    assert message in str(error.value)
    assert not any(p.name.startswith(".staging-") for p in (tmp_path / "staging").glob("*"))


def test_positive_label_must_exist_and_numbers_match_numerically(tmp_path: Path) -> None:
    source = write(generate(100), tmp_path / "c.csv")
    with pytest.raises(inputs.InputError, match="positive label 'Yes' not found"):
        stage(source, tmp_path, positive="Yes")
    assert stage(source, tmp_path, positive="1.0").rows == 100
    yes_no = generate(100).assign(Target_Churn=lambda f: f["Target_Churn"].map({1: "Yes", 0: "No"}))
    assert set(stage(write(yes_no, tmp_path / "y.csv"), tmp_path, positive="Yes").label_values) == {"Yes", "No"}


def test_files_with_different_headers_are_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write(generate(60), folder / "a.csv")
    write(generate(60).drop(columns="Age"), folder / "b.csv")
    with pytest.raises(inputs.InputError, match="different columns"):
        stage(folder, tmp_path)


def test_schema_is_staged_by_content_and_validated(tmp_path: Path) -> None:
    staged = inputs.stage_schema(CURATED_SCHEMA, tmp_path)
    assert staged.read_text() == CURATED_SCHEMA.read_text()
    assert inputs.stage_schema(CURATED_SCHEMA, tmp_path) == staged
    edited = tmp_path / "edited.pbtxt"
    edited.write_text(CURATED_SCHEMA.read_text().replace("max: 70", "max: 71"))
    assert inputs.stage_schema(edited, tmp_path) != staged
    broken = tmp_path / "broken.pbtxt"
    broken.write_text("feature { name: ")
    with pytest.raises(inputs.InputError, match="not a valid tensorflow_metadata Schema"):
        inputs.stage_schema(broken, tmp_path)
    with pytest.raises(inputs.InputError, match="cannot read schema"):
        inputs.stage_schema(tmp_path / "nope.pbtxt", tmp_path)
