"""`python -m monitoring.drift` with real TFDV on generated data: what drifts, what does not, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from common import exit_codes
from monitoring import drift
from pipeline.config import CURATED_SCHEMA, TRAIN_SPLIT, PipelineConfig
from tests.monitoring.models import traffic, write_log

SERVING_ROWS = drift.MIN_ROWS


@pytest.fixture(scope="module")
def training_statistics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<artifact>/Split-train/FeatureStats.pb` of 4,000 generated customers, StatisticsGen's layout."""
    schema = drift.serving_schema(CURATED_SCHEMA, drift.CATEGORICAL_THRESHOLD, drift.NUMERIC_THRESHOLD)
    stats = tfdv.generate_statistics_from_dataframe(drift.serving_frame(traffic(4000, seed=1), schema))
    path = tmp_path_factory.mktemp("statistics") / "4" / f"Split-{TRAIN_SPLIT}" / drift.STATISTICS_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(stats.SerializeToString())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = drift.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_same_distribution_does_not_drift(tmp_path: Path, training_statistics: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2))
    code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics))
    assert code == exit_codes.OK, out
    assert f"{SERVING_ROWS} logged rows" in out and "No drift" in out
    assert out.count(" no\n") + out.endswith(" no") == 13  # every model feature measured


def test_shifted_traffic_drifts_and_names_the_features(tmp_path: Path, training_statistics: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def shift(frame: pd.DataFrame) -> None:
        frame["Age"] = (frame["Age"] + 12).clip(upper=70)  # numeric: Jensen-Shannon
        opted_out = np.random.default_rng(0).random(len(frame)) < 0.5
        frame.loc[opted_out, "Email_Opt_In"] = "False"  # categorical: L-infinity

    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2, change=shift))
    code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics))
    assert code == exit_codes.DRIFT, out
    assert "Drifted: Age, Email_Opt_In" in out
    report = drift.compare(drift.read_request_log(log), drift.load_statistics(training_statistics), "",
                           drift.serving_schema(CURATED_SCHEMA, drift.CATEGORICAL_THRESHOLD,
                                                drift.NUMERIC_THRESHOLD))
    measured = {m.feature: m for m in report.measurements}
    assert measured["Age"].measure == "JENSEN_SHANNON_DIVERGENCE" and measured["Age"].drifted
    assert measured["Email_Opt_In"].measure == "L_INFTY" and measured["Email_Opt_In"].drifted
    assert [m.feature for m in report.drifted] == ["Age", "Email_Opt_In"]


def test_values_outside_the_schema_are_reported(tmp_path: Path, training_statistics: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def unknown_gender(frame: pd.DataFrame) -> None:
        frame.loc[frame.index[:3], "Gender"] = "Robot"

    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2, change=unknown_gender))
    code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics))
    assert code == exit_codes.DRIFT
    assert "Anomaly: Gender:" in out and "Robot" in out


def test_model_version_filter(tmp_path: Path, training_statistics: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2), version=7)
    code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics),
                       "--model-version", "7")
    assert code == exit_codes.OK, out
    code, _, err = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics),
                       "--model-version", "8")
    assert code == exit_codes.USAGE and "no logged rows for model version 8" in err


def _record_statistics(output: Path, uris: list[Path]) -> None:
    """An ML Metadata store like the pipeline's, with StatisticsGen artifacts at `uris` (oldest first)."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(PipelineConfig(output=output).metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(connection)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=drift.STATISTICS_TYPE))
    for uri in uris:
        store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri=str(uri),
                                                         state=metadata_store_pb2.Artifact.LIVE)])


def test_training_statistics_come_from_the_newest_statistics_gen_run(
        tmp_path: Path, training_statistics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out"
    output.mkdir()
    stale = tmp_path / "stale" / f"Split-{TRAIN_SPLIT}"
    stale.mkdir(parents=True)
    (stale / drift.STATISTICS_FILE).write_bytes(b"not statistics")
    newest = training_statistics.parent.parent
    _record_statistics(output, [stale.parent, newest])
    assert drift.newest_training_statistics(output) == training_statistics
    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2))
    code, out, _ = run(capsys, "--request-log", str(log), "--pipeline-output", str(output))
    assert code == exit_codes.OK and str(training_statistics) in out


@pytest.mark.parametrize("case, expected", [
    ("missing log", "does not exist (start the server with --request_log_file="),
    ("malformed line", "requests.jsonl:2: not a request log line"),
    ("too few rows", f"holds 5 rows; at least {drift.MIN_ROWS} are needed"),
    ("no schema feature", "none of the schema's features"),
    ("bad statistics", "is not a TFDV statistics file"),
    ("no metadata", "has no metadata.sqlite: is it a pipeline --output folder?"),
    ("empty metadata", "records no StatisticsGen output: run the pipeline first"),
    ("bad threshold", "--numeric-threshold must be in (0, 1]"),
])
def test_bad_input_exits_2_with_a_message(case: str, expected: str, tmp_path: Path, training_statistics: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2))
    source = ["--statistics", str(training_statistics)]
    extra: list[str] = []
    if case == "missing log":
        log.unlink()
    elif case == "malformed line":
        lines = log.read_text().splitlines()
        log.write_text(lines[0] + "\n{not json\n")
    elif case == "too few rows":
        write_log(log, traffic(5, seed=2))
    elif case == "no schema feature":
        write_log(log, pd.DataFrame({"examples": ["abc"] * SERVING_ROWS}))
    elif case == "bad statistics":
        (tmp_path / "bad.pb").write_text("garbage")
        source = ["--statistics", str(tmp_path / "bad.pb")]
    elif case == "no metadata":
        source = ["--pipeline-output", str(tmp_path)]
    elif case == "empty metadata":
        _record_statistics(tmp_path, [])
        source = ["--pipeline-output", str(tmp_path)]
    elif case == "bad threshold":
        extra = ["--numeric-threshold", "0"]
    code, out, err = run(capsys, "--request-log", str(log), *source, *extra)
    assert code == exit_codes.USAGE, out
    assert err.startswith("error: ") and expected in err, err


def test_a_customer_csv_is_read_like_the_pipelines_input(tmp_path: Path, training_statistics: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    customers = traffic(SERVING_ROWS, seed=2).rename(columns={"Total_Spend": "Total Spend"})
    customers.loc[3, "Age"] = None  # a blank cell: missing, as in training
    path = tmp_path / "customers.csv"
    customers.to_csv(path, sep=";", decimal=",", index=False)  # a European spreadsheet export
    frame = drift.read_customer_file(path)
    assert "Total_Spend" in frame.columns and frame.loc[3, "Age"] is None
    assert float(frame.loc[0, "Total_Spend"]) == pytest.approx(customers.loc[0, "Total Spend"])
    code, out, _ = run(capsys, "--data", str(path), "--statistics", str(training_statistics))
    assert code == exit_codes.OK, out
    assert "No drift" in out
    code, _, err = run(capsys, "--data", str(tmp_path / "absent.csv"), "--statistics", str(training_statistics))
    assert code == exit_codes.USAGE and "absent.csv does not exist (--data)" in err
