"""The data-validation gate: real TFDV anomalies become readable lines, and any anomaly stops the run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from data.generate import generate
from pipeline import reader
from pipeline.config import CURATED_SCHEMA
from pipeline.gates import DataValidationError, describe_anomalies, first_out_of_domain_cells
from tests.field_cases import SEMICOLON


def validate(frame) -> anomalies_pb2.Anomalies:
    """Statistics the way the pipeline computes them: from a CSV file."""
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "d.csv", index=False)
        statistics = tfdv.generate_statistics_from_csv(str(Path(tmp) / "d.csv"))
    return tfdv.validate_statistics(statistics, tfdv.load_schema_text(str(CURATED_SCHEMA)))


def test_clean_generated_data_has_no_anomalies() -> None:
    assert describe_anomalies({"train": validate(generate(300))}) == []


def test_each_kind_of_bad_data_is_named_by_feature_and_split() -> None:
    frame = generate(300)
    frame.loc[0, "Promotion_Response"] = "Maybe"
    frame.loc[1, "Age"] = 150
    frame = frame.drop(columns="Num_of_Returns")
    lines = describe_anomalies({"eval": validate(frame)})
    assert len(lines) == 3 and all(line.startswith("eval: ") for line in lines)
    by_feature = {line.split(": ")[1]: line for line in lines}
    assert set(by_feature) == {"Promotion_Response", "Age", "Num_of_Returns"}
    assert "Maybe" in by_feature["Promotion_Response"]
    assert "Column dropped" in by_feature["Num_of_Returns"] or "missing" in by_feature["Num_of_Returns"].lower()


def test_dataset_level_anomalies_are_reported_too() -> None:
    anomalies = anomalies_pb2.Anomalies()
    anomalies.dataset_anomaly_info.short_description = "Low num examples"
    anomalies.dataset_anomaly_info.description = "too few"
    assert describe_anomalies({"train": anomalies}) == ["train: (dataset): Low num examples (too few)"]


def test_gate_error_lists_every_anomaly() -> None:
    error = DataValidationError(["train: Age: out of range (x)", "eval: Gender: unexpected (y)"])
    assert error.anomalies == ["train: Age: out of range (x)", "eval: Gender: unexpected (y)"]
    assert "Age" in str(error) and "Gender" in str(error)
    with pytest.raises(DataValidationError):
        raise error


def test_too_many_missing_values_is_an_anomaly() -> None:
    frame = generate(300).astype({"Age": object})
    frame.loc[:40, "Age"] = None  # 14 % missing; the schema allows 5 %
    lines = describe_anomalies({"train": validate(frame)})
    assert len(lines) == 1 and lines[0].startswith("train: Age: ")


def test_the_first_cell_outside_the_schema_is_found_with_its_line_column_and_value(tmp_path: Path) -> None:
    frame = generate(300, seed=3)
    frame.loc[5, "Gender"] = "Robot"          # line 7: header, then rows 0..4 on lines 2..6
    frame.loc[7, "Satisfaction_Score"] = 11   # line 9, out of 1..5
    frame.loc[200, "Satisfaction_Score"] = 0  # a later one: only the first is named
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    dialect = reader.detect_dialect(path)
    schema = text_format.Parse(CURATED_SCHEMA.read_text(), schema_pb2.Schema())
    found = first_out_of_domain_cells([path], dialect, reader.read_header(path, dialect), schema,
                                      {"Gender", "Satisfaction_Score", "Age", "Num_of_Returns"}, chunk_rows=50)
    assert found == {
        "Gender": "line 7 of bad.csv, column 'Gender': value 'Robot' (the schema allows: Female, Male, Other)",
        "Satisfaction_Score": "line 9 of bad.csv, column 'Satisfaction_Score': value '11' (the schema allows 1..5)",
    }  # Age and Num_of_Returns are within their domains


def test_decimal_commas_read_with_a_decimal_point_name_the_flag() -> None:
    """The European field case read with `--decimal .`: its `24,24` is text in a numeric column, and the
    exit-3 message's cell says which flag reads it (the run used to end with the range alone)."""
    dialect = reader.detect_dialect(SEMICOLON, decimal=".")
    schema = text_format.Parse(CURATED_SCHEMA.read_text(), schema_pb2.Schema())
    found = first_out_of_domain_cells([SEMICOLON], dialect, reader.read_header(SEMICOLON, dialect), schema,
                                      {"Annual_Income", "Gender"})
    assert found == {"Annual_Income": "line 2 of semicolon_decimal_comma.csv, column 'Annual_Income': value '24,24' "
                                      "(the schema allows 20..200; a number with a decimal comma: set --decimal ,)"}
    detected = reader.detect_dialect(SEMICOLON)
    assert detected.decimal == "," and first_out_of_domain_cells(
        [SEMICOLON], detected, reader.read_header(SEMICOLON, detected), schema, {"Annual_Income"}) == {}
