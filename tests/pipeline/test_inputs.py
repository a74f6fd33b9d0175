"""Input checks and staging: messy CSVs become clean ones, or a clear InputError."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data.generate import generate
from pipeline import config as cfg
from pipeline import inputs
from pipeline.config import CURATED_SCHEMA
from tests.field_cases import (
    BLANK_NUMBERS,
    CHURN_RATE_2PCT,
    DUPLICATE_HEADER,
    SEMICOLON,
    SIXTY_CUSTOMERS,
    SPACES_IN_NAMES,
)


def stage(data: Path, tmp_path: Path, label: str = "Target_Churn", positive: str = "1",
          ids: tuple[str, ...] | str = ("Customer_ID",)) -> inputs.StagedData:
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
        (lambda d: d / "absent.csv", "absent.csv (--data: a CSV file, or a folder of CSV files)"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "empty (--data: a CSV file, or a folder of CSV files)"),
        (lambda d: write(pd.DataFrame({"x": [1, 2]}), d / "x.csv"), "label column 'Target_Churn' not in"),
        (lambda d: write(generate(100).drop(columns="Customer_ID"), d / "i.csv"), "id column(s) Customer_ID"),
        (lambda d: write(generate(100).assign(Target_Churn=1), d / "one.csv"), "exactly two values"),
        (lambda d: write(generate(20), d / "few.csv"),
         "few.csv: only 20 labelled rows in column 'Target_Churn'; at least 50 are needed to train and evaluate: "
         "add more customers, or check --label"),
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
    write(generate(60).drop(columns="Age").assign(Region="north"), folder / "b.csv")
    with pytest.raises(inputs.InputError, match="different columns") as error:
        stage(folder, tmp_path)
    assert "(columns only in b.csv: 'Region'; only in a.csv: 'Age')" in str(error.value)
    assert "must share one header: make the headers match, or pass one file with --data" in str(error.value)
    write(generate(60)[list(reversed(generate(1).columns))], folder / "b.csv")
    with pytest.raises(inputs.InputError, match=r"\(the same columns in another order\)"):
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
    with pytest.raises(inputs.InputError, match=r"not a valid tensorflow_metadata Schema: .* \(--schema\)"):
        inputs.stage_schema(broken, tmp_path)
    with pytest.raises(inputs.InputError, match=r"cannot read schema .*nope.pbtxt: .* \(--schema\)"):
        inputs.stage_schema(tmp_path / "nope.pbtxt", tmp_path)


# Real-world exports (../shared/field-cases/, README there) and the rest of their kinds.

def test_european_export_is_staged_as_the_same_numbers_as_a_comma_export(tmp_path: Path) -> None:
    european = stage(SEMICOLON, tmp_path)
    plain = stage(SPACES_IN_NAMES, tmp_path, label="Churn Value")  # the same customers, written the usual way
    assert (european.dialect.delimiter, european.dialect.decimal) == (";", ",")
    a = pd.read_csv(european.directory / SEMICOLON.name)
    b = pd.read_csv(plain.directory / SPACES_IN_NAMES.name)
    b.columns = a.columns
    pd.testing.assert_frame_equal(a, b)


def test_a_wrong_delimiter_flag_never_claims_the_listed_label_is_missing(tmp_path: Path) -> None:
    with pytest.raises(inputs.InputError, match="set --delimiter") as error:
        inputs.stage_data(SEMICOLON, tmp_path / "s", "Target_Churn", "1", cfg.AUTO, delimiter=",")
    assert "label" not in str(error.value)


def test_names_that_are_not_tensorflow_names_are_mapped_and_flags_use_the_written_names(tmp_path: Path) -> None:
    staged = inputs.stage_data(SPACES_IN_NAMES, tmp_path / "s", "Churn Value", "1", ("Customer ID",))
    assert staged.label_key == "Churn_Value" and staged.id_keys == ("Customer_ID",)
    assert staged.header.mapping["Total Spend"] == "Total_Spend"
    header = (staged.directory / SPACES_IN_NAMES.name).read_text().splitlines()[0].split(",")
    assert header == list(staged.columns) and "Num_of_Purchases" in header
    assert "Total_Spend" in inputs.served_inputs(staged) and "Customer_ID" not in inputs.served_inputs(staged)


def test_duplicate_header_stops_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(inputs.InputError, match="repeats column names: 'Age' in columns 2, 3"):
        stage(DUPLICATE_HEADER, tmp_path)
    assert not (tmp_path / "staging").exists()


def test_too_few_churners_are_refused_with_the_counts_and_the_minimum(tmp_path: Path) -> None:
    with pytest.raises(inputs.InputError, match=None) as error:
        stage(SIXTY_CUSTOMERS, tmp_path)
    needed = inputs.MIN_CLASS_PER_SPLIT * 5  # validation and eval each hold 2 of 10 hash buckets
    assert "6 churners and 54 non-churners" in str(error.value)
    assert f"at least {needed} churners and {needed} non-churners" in str(error.value)
    rare = generate(400).assign(Target_Churn=0)
    rare.loc[: needed - 2, "Target_Churn"] = 1
    with pytest.raises(inputs.InputError, match=f"{needed - 1} churners"):
        stage(write(rare, tmp_path / "rare.csv"), tmp_path)
    rare.loc[needed - 1, "Target_Churn"] = 1
    assert stage(write(rare, tmp_path / "rare.csv"), tmp_path).label_values == {"1": needed, "0": 400 - needed}


def test_two_percent_churn_is_accepted(tmp_path: Path) -> None:
    assert stage(CHURN_RATE_2PCT, tmp_path).label_values == {"0": 4939, "1": 100}


def test_telco_export_blank_numbers_are_missing_and_the_id_is_found(tmp_path: Path) -> None:
    staged = inputs.stage_data(BLANK_NUMBERS, tmp_path / "s", "Churn", "Yes", cfg.AUTO)
    assert staged.id_keys == ("customerID",) and staged.id_keys_chosen.startswith("auto: named like an identifier")
    assert staged.missing_cells == {"TotalCharges": 12} and staged.label_values == {"No": 910, "Yes": 290}
    out = pd.read_csv(staged.directory / BLANK_NUMBERS.name, keep_default_na=False, dtype=str)
    assert (out["TotalCharges"] == "").sum() == 12
    assert pd.to_numeric(out["TotalCharges"].replace("", None)).notna().sum() == 1188


def test_auto_id_columns_and_unique_text_columns(tmp_path: Path) -> None:
    frame = generate(100).rename(columns={"Customer_ID": "Account No"})
    frame["account_id"] = [f"A-{i}" for i in range(100)]
    frame["Nickname"] = [f"n{i}" for i in range(100)]
    frame["team_id"] = ["t"] * 100  # named like an id, not unique
    staged = inputs.stage_data(write(frame, tmp_path / "u.csv"), tmp_path / "s", "Target_Churn", "1", cfg.AUTO)
    assert staged.id_keys == ("account_id",) and staged.unique_text_columns == ("Nickname",)
    assert stage(write(generate(100), tmp_path / "g.csv"), tmp_path, ids=cfg.AUTO).id_keys == ("Customer_ID",)
    given = inputs.stage_data(tmp_path / "u.csv", tmp_path / "s", "Target_Churn", "1", ("Account No",))
    assert given.id_keys == ("Account_No",) and set(given.unique_text_columns) == {"Nickname", "account_id"}


def test_whole_number_floats_are_integers_in_features_and_label(tmp_path: Path) -> None:
    frame = generate(100).astype({"Age": float, "Target_Churn": float})
    frame.loc[3, "Age"] = None  # pandas writes an integer column with blanks as floats
    staged = stage(write(frame, tmp_path / "f.csv"), tmp_path)
    out = pd.read_csv(staged.directory / "f.csv", dtype=str, keep_default_na=False)
    assert out.loc[0, "Age"] == str(int(frame.loc[0, "Age"])) and out.loc[3, "Age"] == ""
    assert set(staged.label_values) == {"0", "1"}


def test_a_number_too_large_for_its_type_names_the_cell(tmp_path: Path) -> None:
    frame = generate(100).astype(str)
    frame.loc[41, "Num_of_Purchases"] = "99999999999999999999"
    with pytest.raises(inputs.InputError, match=r"line 43, column 'Num_of_Purchases': value '99999999999999999999'"):
        stage(write(frame, tmp_path / "b.csv"), tmp_path)


def test_schema_auto_is_the_curated_schema_only_for_the_bundled_columns(tmp_path: Path) -> None:
    config = cfg.PipelineConfig(schema=None)
    bundled = stage(write(generate(100), tmp_path / "b.csv"), tmp_path)
    chosen, why = inputs.choose_schema(config, bundled)
    assert chosen.schema == CURATED_SCHEMA and why.startswith("auto: curated")
    other = stage(write(generate(100).drop(columns="Age"), tmp_path / "o.csv"), tmp_path)
    chosen, why = inputs.choose_schema(config, other)
    assert chosen.schema is None and why.startswith("auto: inferred")
    inputs.check_schema_columns(CURATED_SCHEMA, other)  # shares columns: TFX validation reports the rest


def test_an_explicit_schema_sharing_no_column_stops_naming_the_flag(tmp_path: Path) -> None:
    telco = inputs.stage_data(BLANK_NUMBERS, tmp_path / "s", "Churn", "Yes", cfg.AUTO)
    with pytest.raises(inputs.InputError, match=f"--schema {CURATED_SCHEMA} describes none of the data's columns"):
        inputs.check_schema_columns(CURATED_SCHEMA, telco)
    with pytest.raises(inputs.InputError, match="cannot read schema"):
        inputs.schema_columns(tmp_path / "absent.pbtxt")
