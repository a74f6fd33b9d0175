"""`python -m monitoring.drift` with real TFDV on generated data: what drifts, what does not, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from common import exit_codes
from modules.features import PROBABILITY_OUTPUT
from monitoring import batch_metrics, drift
from pipeline.config import CURATED_SCHEMA, TRAIN_SPLIT, PipelineConfig
from pipeline.factors import FACTORS_FILE
from tests.helpers import free_port
from tests.monitoring.models import traffic, write_log
from tests.monitoring.pushgateway import pushgateway, samples

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


def _record_statistics(output: Path, uris: list[Path], type_name: str = drift.STATISTICS_TYPE) -> None:
    """An ML Metadata store like the pipeline's, with StatisticsGen (or `type_name`) artifacts at `uris`
    (oldest first)."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(PipelineConfig(output=output).metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(connection)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=type_name))
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
    ("statistics of other columns", "lack 12 of schema"),
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
    elif case == "statistics of other columns":  # the newest run trained on another CSV (only Age in common)
        other = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"Age": [30, 40] * 50, "Plan": ["a", "b"] * 50}))
        (tmp_path / "other.pb").write_bytes(other.SerializeToString())
        source = ["--statistics", str(tmp_path / "other.pb")]
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


def _with_scores(log: Path, scores: np.ndarray, versions: list[int] | None = None) -> Path:
    """`log` with each row's churn probability (and model version) replaced."""
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for i, (record, score) in enumerate(zip(records, scores, strict=True)):
        record[PROBABILITY_OUTPUT] = float(score)
        if versions:
            record["version"] = versions[i % len(versions)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    return log


def _eval_scores(path: Path, scores: np.ndarray) -> Path:
    pd.DataFrame({PROBABILITY_OUTPUT: scores, "Customer_ID": range(len(scores))}).to_csv(path, index=False)
    return path


def test_distances_drivers_and_served_score_shift_reach_a_real_pushgateway(
        tmp_path: Path, training_statistics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def older(frame: pd.DataFrame) -> None:
        frame["Age"] = (frame["Age"] + 12).clip(upper=70)

    rng = np.random.default_rng(3)
    served, expected = rng.beta(4, 4, SERVING_ROWS), rng.beta(2, 5, 3000)
    log = _with_scores(write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2, change=older),
                                 version=4), served)
    eval_csv = _eval_scores(tmp_path / "eval_scores.csv", expected)
    gateway = pushgateway()
    address = next(gateway)
    try:
        code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics),
                           "--pushgateway", address, "--period", "2026-05", "--driver", "Age",
                           "--eval-scores", str(eval_csv))
        got = samples(address, "churn_")
    finally:
        gateway.close()
    assert code == exit_codes.DRIFT, out
    psi = batch_metrics.population_stability_index(expected, served)
    assert f"Served scores of model version 4 against the eval split's: PSI {psi:.3f}" in out
    assert f"Pushed to {address} (period 2026-05; drivers: Age)" in out
    drift_job = 'instance="",job="churn_drift"'
    age = got[f'churn_feature_drift{{feature="Age",{drift_job},measure="JENSEN_SHANNON_DIVERGENCE",period="2026-05"}}']
    assert age > drift.NUMERIC_THRESHOLD
    assert f"Age                          JENSEN_SHANNON_DIVERGENCE    {age:.4f}" in out
    assert got[f'churn_feature_drift_threshold{{feature="Email_Opt_In",{drift_job},measure="L_INFTY"}}'] == \
        drift.CATEGORICAL_THRESHOLD
    drivers = {k: v for k, v in got.items() if k.startswith("churn_feature_is_driver")}
    assert len(drivers) == 13 and sum(drivers.values()) == 1
    assert drivers[f'churn_feature_is_driver{{feature="Age",{drift_job}}}'] == 1
    score_job = 'instance="",job="churn_drift_score",model_version="4",period="2026-05"'
    assert got[f"churn_score_psi{{{score_job}}}"] == pytest.approx(psi)
    assert len([k for k in got if k.startswith(batch_metrics.SCORE_BIN_SHARE)]) == 2 * batch_metrics.PSI_BINS


def test_drivers_default_to_the_newest_factor_analysis(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    _record_statistics(output, [], drift.FACTORS_TYPE)
    assert drift.driver_features(output) == []
    for name, drivers in (("old", ["Age"]), ("new", ["Satisfaction_Score", "Last_Purchase_Days_Ago"])):
        (tmp_path / name).mkdir()
        (tmp_path / name / FACTORS_FILE).write_text(json.dumps({"drivers": drivers}))
    _record_statistics(output, [tmp_path / "old", tmp_path / "new"], drift.FACTORS_TYPE)
    assert drift.driver_features(output) == ["Satisfaction_Score", "Last_Purchase_Days_Ago"]


@pytest.mark.parametrize("case, expected", [
    ("eval scores with --data", "--eval-scores compares the served scores of a --request-log"),
    ("no probability column", "has no churn_probability column"),
    ("probability out of range", "must be probabilities in [0, 1]; 1 row(s) are not (first at data row 3)"),
    ("log without scores", "holds no churn_probability values: start the server with --observed_output"),
    ("several versions", "holds scores of model versions 1, 2: choose one with --model-version"),
    ("push fails", "Pushgateway at 127.0.0.1:"),
])
def test_bad_push_input_exits_2_with_a_message(case: str, expected: str, tmp_path: Path,
                                               training_statistics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = traffic(SERVING_ROWS, seed=2)
    log = _with_scores(write_log(tmp_path / "requests.jsonl", rows), np.full(SERVING_ROWS, 0.3))
    eval_csv = _eval_scores(tmp_path / "eval.csv", np.linspace(0, 1, 50))
    source = ["--request-log", str(log)]
    extra = ["--eval-scores", str(eval_csv)]
    if case == "eval scores with --data":
        rows.to_csv(tmp_path / "customers.csv", index=False)
        source = ["--data", str(tmp_path / "customers.csv")]
    elif case == "no probability column":
        pd.DataFrame({"score": [0.1]}).to_csv(eval_csv, index=False)
    elif case == "probability out of range":
        pd.DataFrame({PROBABILITY_OUTPUT: [0.1, 0.2, 1.5]}).to_csv(eval_csv, index=False)
    elif case == "log without scores":
        write_log(log, rows)
        log.write_text(log.read_text().replace(f'"{PROBABILITY_OUTPUT}": 0.5', '"other": 0.5'))
    elif case == "several versions":
        _with_scores(log, np.full(SERVING_ROWS, 0.3), versions=[1, 2])
    elif case == "push fails":
        extra = ["--pushgateway", f"127.0.0.1:{free_port()}"]
    code, out, err = run(capsys, *source, "--statistics", str(training_statistics), *extra)
    assert code == exit_codes.USAGE, out
    assert err.startswith("error: ") and expected in err, err


def test_period_must_be_a_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        drift.main(["--request-log", str(tmp_path / "r.jsonl"), "--period", "May 2026"])
    assert exited.value.code == exit_codes.USAGE
    assert "expected a month YYYY-MM, got 'May 2026'" in capsys.readouterr().err


def _record_runs(output: Path, runs: list[tuple[str, int, Path | None]]) -> None:
    """An ML Metadata store like the pipeline's: per run (oldest first) a `pipeline_run` context with a Pusher
    execution whose PushedModel output has `pushed_version` and `newly_pushed` ("new" or "same" run), and, with a
    folder, a ReferenceModels execution whose output artifact is that folder."""
    from pipeline.pusher import NEWLY_PUSHED_PROPERTY
    from pipeline.reference import ReferenceModelsArtifact

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(PipelineConfig(output=output).metadata_path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(connection)
    pushed_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=drift.PUSHED_MODEL_TYPE))
    reference_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=ReferenceModelsArtifact.TYPE_NAME))
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name=drift.RUN_CONTEXT_TYPE))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="component"))
    for index, (kind, version, folder) in enumerate(runs):
        (run,) = store.put_contexts([metadata_store_pb2.Context(type_id=run_type, name=f"run-{index}")])
        push = metadata_store_pb2.Artifact(type_id=pushed_type, uri=str(output / f"push-{index}"),
                                           state=metadata_store_pb2.Artifact.LIVE)
        push.custom_properties["pushed_version"].string_value = str(version)
        push.custom_properties[NEWLY_PUSHED_PROPERTY].int_value = int(kind == "new")
        outputs = [push]
        if folder is not None:
            outputs.append(metadata_store_pb2.Artifact(type_id=reference_type, uri=str(folder),
                                                       state=metadata_store_pb2.Artifact.LIVE))
        for artifact in outputs:
            execution = metadata_store_pb2.Execution(type_id=execution_type)
            event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
            store.put_execution(execution, [(artifact, event)], store.get_contexts_by_id([run]))


def test_eval_scores_default_to_those_of_the_run_that_pushed_the_served_version(
        tmp_path: Path, training_statistics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline import reference

    output = tmp_path / "out"
    output.mkdir()
    _record_statistics(output, [training_statistics.parent.parent])
    rng = np.random.default_rng(5)
    served = rng.beta(2, 5, SERVING_ROWS)
    log = _with_scores(write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2), version=3), served)
    args = ["--request-log", str(log), "--pipeline-output", str(output), "--eval-scores"]
    code, _, err = run(capsys, *args)
    assert code == exit_codes.USAGE
    assert err == (f"error: {PipelineConfig(output=output).metadata_path} records no pipeline run that pushed model "
                   "version 3 (served from another pipeline output?): pass --eval-scores CSV or --pipeline-output\n")
    served_scores, newer_scores = rng.beta(2, 5, 800), rng.beta(5, 2, 800)
    for name, scores in (("served", served_scores), ("newer", newer_scores), ("same", newer_scores)):
        (tmp_path / name).mkdir()
        (tmp_path / name / reference.EVAL_SCORES_FILE).write_text(reference.eval_scores_csv(scores))
    # version 3 pushed by the first run; a later run found it already pushed; a newer run pushed version 4
    _record_runs(output, [("new", 3, tmp_path / "served"), ("same", 3, tmp_path / "same"),
                          ("new", 4, tmp_path / "newer")])
    expected = tmp_path / "served" / reference.EVAL_SCORES_FILE
    assert drift.served_eval_scores(output, 3) == expected
    assert drift.served_eval_scores(output, 4) == tmp_path / "newer" / reference.EVAL_SCORES_FILE
    code, out, _ = run(capsys, *args)
    psi = batch_metrics.population_stability_index(np.round(served_scores, 6), served)
    assert code == exit_codes.OK, out
    assert (f"Served scores of model version 3 against the eval split's: PSI {psi:.3f} (above "
            f"{batch_metrics.PSI_ALERT}: a significant shift; eval scores: {expected})") in out
    # An explicit CSV still wins over the pipeline's.
    code, out, _ = run(capsys, *args, str(tmp_path / "newer" / reference.EVAL_SCORES_FILE))
    newer_psi = batch_metrics.population_stability_index(np.round(newer_scores, 6), served)
    assert code == exit_codes.OK and f"PSI {newer_psi:.3f}" in out and str(tmp_path / "newer") in out
    expected.unlink()
    code, _, err = run(capsys, *args)
    assert code == exit_codes.USAGE
    assert (f"the ReferenceModels output of the run that pushed model version 3 ({tmp_path / 'served'}) has no "
            f"{reference.EVAL_SCORES_FILE}") in err
    code, _, err = run(capsys, "--request-log", str(log), "--pipeline-output", str(tmp_path), "--eval-scores")
    assert code == exit_codes.USAGE and "has no metadata.sqlite: is it a pipeline --output folder?" in err


def test_the_pushgateway_comes_from_the_environment_without_the_flag(
        tmp_path: Path, training_statistics: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = pushgateway()
    address = next(gateway)
    try:
        monkeypatch.setenv(batch_metrics.PUSHGATEWAY_ENV, address)
        log = write_log(tmp_path / "requests.jsonl", traffic(SERVING_ROWS, seed=2))
        code, out, _ = run(capsys, "--request-log", str(log), "--statistics", str(training_statistics),
                           "--period", "2026-06", "--driver", "Age")
        got = samples(address, batch_metrics.DRIFT_DISTANCE + "{")
    finally:
        gateway.close()
    assert code == exit_codes.OK and f"Pushed to {address} (period 2026-06" in out
    assert any('feature="Age"' in key and 'period="2026-06"' in key for key in got)
