"""simulation/simulate.py's logic without pipeline runs: the plan (arguments, bootstrap window, scoring time),
the per-month line, the chart and report, waiting for a hot swap, and bad input on the command line.
The end-to-end simulation is tests/e2e/test_simulate.py (the shared `simulated_months` fixture)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from common import exit_codes
from common.facts import DEFAULT_HOST, PROJECT_ROOT
from pipeline import config as cfg
from simulation import simulate


@pytest.mark.parametrize(("months", "shift_at", "customers", "window", "message"), [
    (4, 2, 2000, 3, "--months must be >= --window + 2 = 5"),
    (6, 0, 2000, 2, "--shift-at must be in 1..5"),
    (6, 6, 2000, 2, "--shift-at must be in 1..5"),
    (6, 3, cfg.DRIFT_MIN_ROWS - 1, 2, f"--customers must be >= {cfg.DRIFT_MIN_ROWS}"),
    (6, 3, 2000, 0, "--window must be >= 1"),
])
def test_check_args_refuses_a_plan_that_cannot_run(months: int, shift_at: int, customers: int, window: int,
                                                   message: str) -> None:
    with pytest.raises(simulate.UsageError, match=message.replace("+", r"\+")):
        simulate.check_args(months, shift_at, customers, window)


def test_check_args_accepts_the_smallest_plan() -> None:
    simulate.check_args(5, 4, cfg.DRIFT_MIN_ROWS, 3)


def test_bootstrap_window_grows_to_the_window_then_stays() -> None:
    assert [simulate.bootstrap_window(n, 3) for n in range(7)] == [None, None, 1, 2, 3, 3, 3]


def test_month_end_is_noon_utc_on_the_months_last_day() -> None:
    assert simulate.month_end("2026-02") == datetime(2026, 2, 28, 12, tzinfo=timezone.utc)
    assert simulate.month_end("2028-02") == datetime(2028, 2, 29, 12, tzinfo=timezone.utc)
    assert simulate.month_end("2026-12").strftime("%Y-%m") == "2026-12"


def test_check_port_gives_a_free_port_and_refuses_a_busy_one() -> None:
    port = simulate.check_port(DEFAULT_HOST, 0)
    assert 0 < port < 65536
    with socket.socket() as busy:
        busy.bind((DEFAULT_HOST, 0))
        busy.listen()
        with pytest.raises(simulate.UsageError, match=f"--rest-port {busy.getsockname()[1]} .* is not free"):
            simulate.check_port(DEFAULT_HOST, busy.getsockname()[1])


def _row(month: int, **fields: Any) -> simulate.MonthResult:
    return simulate.MonthResult(month, f"2026-{month + 1:02d}", month >= 3, 2000, 0.83, **fields)


def test_format_line_says_what_happened_in_the_month() -> None:
    assert "no served model  no candidate" in simulate.format_line(_row(0))
    judged = _row(3, served_version=2, served_auc=0.7812, candidate_auc=0.801, bayes_auc_eval=0.87,
                  drift_compared=True, drifted=[{"feature": "Email_Opt_In", "distance": 0.2134, "threshold": 0.1}],
                  blessed=True, pushed_version=4, status="pushed", seconds=61.25)
    line = simulate.format_line(judged)
    for part in ("month  3 2026-04 shift", "served v2 0.781", "candidate 0.801", "Bayes 0.830 (eval 0.870)",
                 "drift: Email_Opt_In 0.213", "blessed, pushed v4", "61.2 s"):
        assert part in line, line
    kept = simulate.format_line(_row(4, served_version=4, served_auc=0.8, candidate_auc=0.7, drift_compared=True,
                                     blessed=False, status="not_blessed"))
    assert "drift: none" in kept and "not blessed (not_blessed)" in kept


def test_chart_leaves_gaps_for_missing_months_and_marks_drift() -> None:
    rows = [_row(0), _row(1, candidate_auc=0.8), _row(2, served_auc=0.82, candidate_auc=0.81),
            _row(3, served_auc=0.78, candidate_auc=0.79, drift_compared=True,
                 drifted=[{"feature": "Email_Opt_In", "distance": 0.2, "threshold": 0.1}])]
    chart = simulate.chart(rows)
    served = next(s for s in chart["series"] if s["label"].startswith("served"))
    assert [p[2] for p in served["points"]] == ["0.820", "0.780"] and len(served["lines"]) == 1
    bayes = next(s for s in chart["series"] if s["label"].startswith("Bayes"))
    assert len(bayes["points"]) == 4
    assert [d[1] for d in chart["drift"]] == ["Email_Opt_In"]
    assert chart["drift"][0][0] == chart["x_ticks"][3][0] == chart["shift"]
    higher = min(p[1] for p in served["points"])  # SVG y grows downwards: 0.82 is drawn above 0.78
    assert higher == served["points"][0][1]
    assert chart["y_ticks"][0][1] <= "0.78" and chart["y_ticks"][-1][1] >= "0.83"


def test_report_and_json_hold_every_month_and_escape_text(tmp_path: Path) -> None:
    rows = [_row(0), _row(1, served_version=1, served_auc=0.8, drift_compared=True, status="pushed",
                          drifted=[{"feature": "<script>x</script>", "distance": 0.3, "threshold": 0.1}])]
    simulate.write_results(tmp_path, rows, {"months": 2, "shift_at": 1, "customers": 2000, "window": 1, "seed": 1})
    html = (tmp_path / simulate.REPORT_FILE).read_text()
    assert "<svg" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    data = json.loads((tmp_path / simulate.RESULT_FILE).read_text())
    assert [m["month"] for m in data["months"]] == [0, 1] and data["months"][1]["served_auc"] == 0.8
    assert not list(tmp_path.glob("*.partial"))


def test_wait_for_version_returns_once_the_version_is_available() -> None:
    answers = iter([{"model_version_status": [{"version": "1", "state": "AVAILABLE"}]},
                    {"model_version_status": [{"version": "2", "state": "LOADING"}]},
                    {"model_version_status": [{"version": "2", "state": "AVAILABLE"}]}])
    assert simulate.wait_for_version(lambda: next(answers), 2, timeout=10, poll=0) >= 0


def test_wait_for_version_times_out_with_what_the_server_reports() -> None:
    status = {"model_version_status": [{"version": "1", "state": "AVAILABLE"}]}
    with pytest.raises(simulate.SimulationError, match=r"version 2 was not AVAILABLE after 0.2 s .*v1 AVAILABLE"):
        simulate.wait_for_version(lambda: status, 2, timeout=0.2, poll=0.05)


def test_wait_for_version_stops_when_the_server_exits() -> None:
    with pytest.raises(simulate.SimulationError, match="exited"):
        simulate.wait_for_version(dict, 1, timeout=60, alive=lambda: False)


def test_the_server_loads_a_version_the_pusher_just_renamed_into_place_without_a_settle_wait(tmp_path: Path) -> None:
    from tests.serving.models import build_tf2_model

    base = tmp_path / "serving" / "customer-model"
    build_tf2_model(tmp_path / "export")
    base.mkdir(parents=True)
    (tmp_path / "export").rename(base / "1")  # as the Pusher does: complete, then renamed into place
    server = simulate.Server(base, simulate.check_port(DEFAULT_HOST, 0), tmp_path / "server.log")
    server.start()
    try:
        simulate.wait_for_version(server.client().status, 1, timeout=120, alive=server.alive)
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Successfully loaded servable version" in log
    assert "No versions of servable" not in log  # with a settle time the first poll finds no settled version


def test_prepare_output_replaces_only_an_earlier_simulation(tmp_path: Path) -> None:
    earlier = tmp_path / "sim"
    (earlier / simulate.GENERATED_DIR).mkdir(parents=True)
    (earlier / "old.txt").write_text("x")
    simulate.prepare_output(earlier)
    assert earlier.is_dir() and not any(earlier.iterdir())
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(simulate.UsageError, match="holds no earlier simulation"):
        simulate.prepare_output(other)
    assert (other / "keep.txt").exists()
    with pytest.raises(simulate.UsageError, match="does not exist"):
        simulate.prepare_output(tmp_path / "missing" / "sim")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulation", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=120)


@pytest.mark.parametrize("args", [("--months", "4"), ("--output", "/nonexistent-folder/sim"),
                                  ("--customers", "10"), ("--max-epochs", "0")])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    proc = _cli(*args)
    assert proc.returncode == exit_codes.USAGE
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_busy_rest_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((DEFAULT_HOST, 0))
        busy.listen()
        proc = _cli("--rest-port", str(busy.getsockname()[1]), "--output", str(tmp_path / "sim"))
    assert proc.returncode == exit_codes.USAGE, proc.stderr
    assert "is not free" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "sim").exists()


def test_help_lists_the_flags_with_their_defaults() -> None:
    proc = _cli("--help")
    assert proc.returncode == exit_codes.OK
    for flag in ("--months", "--shift-at", "--customers", "--window", "--output", "--rest-port", "--max-epochs"):
        assert flag in proc.stdout
    assert "(default: 12)" in proc.stdout and "(default: 3)" in proc.stdout


def test_eval_customer_ids_read_the_evaluated_span_s_artifact_from_ml_metadata(tmp_path: Path) -> None:
    import tensorflow as tf
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.spans import EVAL_EXAMPLE_GEN_ID, EXAMPLES_TYPE, SPAN_PROPERTY

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(tmp_path / cfg.METADATA_FILE)
    store = metadata_store.MetadataStore(connection)
    examples = store.put_artifact_type(metadata_store_pb2.ArtifactType(name=EXAMPLES_TYPE))

    def write(component: str, execution: int, span: int, split: str, ids: list[int]) -> None:
        artifact = tmp_path / "tfx" / component / "examples" / str(execution)
        folder = artifact / f"Split-{split}"
        folder.mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
            for customer in ids:
                example = tf.train.Example()
                example.features.feature["Customer_ID"].int64_list.value.append(customer)
                writer.write(example.SerializeToString())
        record = metadata_store_pb2.Artifact(type_id=examples, uri=str(artifact),
                                             state=metadata_store_pb2.Artifact.LIVE)
        record.custom_properties[SPAN_PROPERTY].int_value = span
        store.put_artifacts([record])

    assert simulate.eval_customer_ids(tmp_path, 1) == set()  # no run yet
    write(EVAL_EXAMPLE_GEN_ID, 9, 1, cfg.EVAL_SPLIT, [1, 2])
    write(EVAL_EXAMPLE_GEN_ID, 9, 1, cfg.TRAIN_SPLIT, [3, 4])
    write("CsvExampleGen.span_1", 10, 1, cfg.EVAL_SPLIT, [6])  # span 1 ingested for training: not the eval one
    # A later run evaluated span 3 in a folder numbered higher; a cached re-run judged on span 1 (the
    # --reuse-pipeline-root case) must still read span 1's eval split, not the newest folder on disk.
    write(EVAL_EXAMPLE_GEN_ID, 12, 3, cfg.EVAL_SPLIT, [5, 7, 8])
    assert simulate.eval_customer_ids(tmp_path, 1) == {1, 2}
    assert simulate.eval_customer_ids(tmp_path, 3) == {5, 7, 8}
    assert simulate.eval_customer_ids(tmp_path, 2) == set()


def test_prepare_output_can_keep_the_pipeline_root_for_a_cached_rerun(tmp_path: Path) -> None:
    earlier = tmp_path / "sim"
    for name in (simulate.GENERATED_DIR, simulate.PIPELINE_DIR, simulate.SERVING_DIR):
        (earlier / name).mkdir(parents=True)
    (earlier / simulate.PIPELINE_DIR / "metadata.sqlite").write_text("x")
    (earlier / simulate.RESULT_FILE).write_text("{}")
    simulate.prepare_output(earlier, reuse_pipeline_root=True)
    assert sorted(p.name for p in earlier.iterdir()) == [simulate.PIPELINE_DIR]
    assert (earlier / simulate.PIPELINE_DIR / "metadata.sqlite").exists()


def test_report_marks_the_alerts_the_webhook_received_on_their_month(tmp_path: Path) -> None:
    rows = [_row(0), _row(1, served_version=1, served_auc=0.6)]
    alert = {"labels": {"alertname": "ChurnModelOutcomeQualityDown", "model_version": "1", "period": rows[1].date},
             "annotations": {"summary": "Churn model 1: outcome AUC in <b>"},
             "received_at": "2026-11-30T10:00:00+00:00"}
    alerts = [{**alert, "status": "firing"},
              {**alert, "status": "resolved", "received_at": "2026-11-30T10:05:00+00:00"}]
    assert simulate.month_alerts(alerts, rows[1].date) == [
        "firing ChurnModelOutcomeQualityDown v1 at 2026-11-30T10:00:00+00:00",
        "resolved ChurnModelOutcomeQualityDown v1 at 2026-11-30T10:05:00+00:00"]
    assert simulate.month_alerts(alerts, rows[0].date) == []
    simulate.write_results(tmp_path, rows, {"months": 2, "shift_at": 1, "customers": 2000, "window": 1, "seed": 1},
                           alerts)
    html = (tmp_path / simulate.REPORT_FILE).read_text()
    row = next(line for line in html.splitlines() if 'class="text alerts"' in line and "firing" in line)
    assert "firing ChurnModelOutcomeQualityDown v1" in row and "resolved ChurnModelOutcomeQualityDown v1" in row
    assert "alert resolved: ChurnModelOutcomeQualityDown model_version=1 period=" in html
    assert "<b>" not in html and "&lt;b&gt;" in html
    simulate.write_results(tmp_path, rows, {"months": 2, "shift_at": 1, "customers": 2000, "window": 1, "seed": 1})
    assert "firing" not in (tmp_path / simulate.REPORT_FILE).read_text()
