"""`python -m insights score` on the model the real pipeline pushed (the shared `bundled_style` run).

The scored file is checked against the model server: `python -m serving` answers the same customers
over REST with the same probabilities (serving_default), segments (segment) and factors (explain).
"""
from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from client.tf_serving import to_instances
from common import exit_codes
from common.facts import BATCH_SOURCE
from data.generate import generate
from insights.recommend import load_rules
from insights.risk import risk_band
from insights.scoring import OUTPUT_COLUMNS, TOP_FACTORS
from modules import features, segments, threshold
from monitoring.prediction_store import PredictionStore
from pipeline.config import PROJECT_ROOT
from tests.helpers import free_port
from tests.insights.test_scoring import exit_code

pytestmark = pytest.mark.e2e
MODEL = "customer-model"
ID = features.ID_KEYS[0]
CUSTOMERS = generate(2_500, seed=13)  # more rows than one model batch (1,024)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m insights ...` as a user runs it: TF's log level is the CLI's own default, not the tests'."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "insights", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def pushed(bundled_style) -> Path:
    tmp, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(summary["pushed_model_dir"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("insights") / "customers.csv"
    CUSTOMERS.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def scored(pushed: Path, data: Path) -> tuple[subprocess.CompletedProcess[str], pd.DataFrame]:
    """The CLI as a user runs it, on the base path (newest version), with the default output path."""
    proc = run_cli("score", "--data", str(data), "--model", str(pushed.parent))
    out = data.with_name("customers_scored.csv")
    return proc, pd.read_csv(out, dtype={"churn_probability": str}, keep_default_na=False) if out.exists() else None


def test_every_customer_is_ranked_by_probability_with_band_factors_segment_and_action(scored, pushed: Path) -> None:
    proc, result = scored
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{len(CUSTOMERS):,} customers ranked by churn probability: ")
    assert f"model {pushed}" in proc.stdout and "scoring: 100%" in proc.stderr  # the progress bar
    assert list(result.columns) == [ID, *OUTPUT_COLUMNS]
    assert sorted(result[ID]) == sorted(CUSTOMERS[ID])
    probability = result["churn_probability"].astype(np.float32).to_numpy()
    assert np.all(np.diff(probability) <= 0) and np.all((probability > 0) & (probability < 1))
    assert result["risk_band"].tolist() == risk_band(probability, threshold.read(pushed)).tolist()
    profiles = json.loads((pushed / segments.ASSETS_EXTRA / segments.SEGMENTS_FILE).read_text())["segments"]
    assert set(result["segment"]) <= {p["name"] for p in profiles}
    rules = load_rules()
    assert set(result["recommended_action"]) <= {r.action for r in rules.rules} | {rules.default_action}
    assert len(set(result["recommended_action"])) >= 4  # the rules tell customers apart
    for text in result["top_factors"]:
        factors = [f for f in text.split("; ") if f]
        assert len(factors) <= TOP_FACTORS and all(f.endswith(")") and " (+" in f for f in factors)


def test_small_chunks_give_exactly_the_same_file(scored, pushed: Path, data: Path, tmp_path: Path) -> None:
    whole = data.with_name("customers_scored.csv").read_bytes()
    out = tmp_path / "chunked.csv"
    assert exit_code(["score", "--data", str(data), "--model", str(pushed), "--out", str(out),
                      "--chunk-rows", "97", "--no-progress"]) == 0
    assert out.read_bytes() == whole
    assert not list(tmp_path.glob(".scoring-*"))  # the sorted runs are cleaned up


def test_top_n_is_the_head_of_the_full_ranking(scored, pushed: Path, data: Path, tmp_path: Path) -> None:
    whole = data.with_name("customers_scored.csv").read_text().splitlines()
    out = tmp_path / "top.csv"
    assert exit_code(["score", "--data", str(data), "--model", str(pushed), "--out", str(out), "--top", "25",
                      "--chunk-rows", "300", "--no-progress"]) == 0
    assert out.read_text().splitlines() == whole[:26]


def test_bad_input_is_one_line_on_stderr_and_exit_code_2(pushed: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    no_age = tmp_path / "no_age.csv"
    CUSTOMERS.head(5).drop(columns=["Age"]).to_csv(no_age, index=False)
    proc = run_cli("score", "--data", str(no_age), "--model", str(pushed))
    assert proc.returncode == exit_codes.USAGE and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"python -m insights: error: {no_age}: missing column(s) Age; the model "
                                        f"needs {', '.join(sorted(CUSTOMERS.columns[1:-1]))} and the id column "
                                        f"'{ID}' (--id-column)"]
    wrong_type = tmp_path / "wrong_type.csv"
    CUSTOMERS.head(5).astype({"Age": str}).replace({"Age": {CUSTOMERS["Age"][3].astype(str): "old"}}).to_csv(
        wrong_type, index=False)
    cases = {
        str(wrong_type): "line 5: Age 'old' is not a whole number",
        str(tmp_path / "missing.csv"): f"data not found: {tmp_path / 'missing.csv'}",
    }
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases[str(empty)] = "is empty: expected a CSV with a header row"
    for path, message in cases.items():
        assert exit_code(["score", "--data", path, "--model", str(pushed), "--out", str(tmp_path / "o.csv"),
                          "--no-progress", "--strict"]) == exit_codes.USAGE
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob("*.partial"))


def test_bad_cells_are_all_reported_in_file_order_and_the_other_rows_scored(
        pushed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    customers = CUSTOMERS.head(40).astype(str)
    customers.loc[3, "Age"] = "old"
    customers.loc[7, ["Annual_Income", "Age"]] = ["", "1e30"]
    customers.loc[9, "Age"] = "41.0"  # a whole number written as a float is that number
    path = tmp_path / "bad_cells.csv"
    customers.to_csv(path, sep=";", index=False)  # and read with the pipeline's reader: ';' is detected
    out = tmp_path / "scored.csv"
    assert exit_code(["score", "--data", str(path), "--model", str(pushed), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"python -m insights: bad cell: {path}: line 5, column 'Age': Age 'old' is not a whole number",
                   f"python -m insights: bad cell: {path}: line 9, column 'Age': Age '1e30' does not fit a "
                   "64-bit integer",
                   f"python -m insights: bad cell: {path}: line 9, column 'Annual_Income': Annual_Income is empty; "
                   "every numeric feature needs a value",
                   "python -m insights: warning: 2 row(s) with bad cells not scored (listed above; fix them or use "
                   "--strict to stop at the first)"]
    scored = pd.read_csv(out, dtype=str)
    assert len(scored) == 38 and not set(customers.loc[[3, 7], ID]) & set(scored[ID])


# The same customers through the model server's REST API.


@pytest.fixture(scope="module")
def rest_port(pushed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    rest, grpc = free_port(), free_port()
    log_path = tmp_path_factory.mktemp("insights_server") / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving", f"--model_base_path={pushed.parent}", f"--model_name={MODEL}",
             f"--port={grpc}", f"--rest_api_port={rest}"], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Exporting HTTP/REST API at" not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield rest
    finally:
        process.terminate()
        process.wait(timeout=30)


def rest(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, f"/v1/models/{MODEL}{path}", body=None if body is None else json.dumps(body))
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def rest_predict(port: int, body: dict[str, Any]) -> Any:
    return rest(port, "POST", ":predict", body)["predictions"]


def test_the_scored_file_agrees_with_the_rest_api(scored, rest_port: int, pushed: Path) -> None:
    _, result = scored
    sample = CUSTOMERS.sample(200, random_state=0)
    metadata = rest(rest_port, "GET", "/metadata")["metadata"]["signature_def"]["signature_def"]
    dtypes = {name: spec["dtype"] for name, spec in metadata["serving_default"]["inputs"].items()}
    instances = to_instances(sample.to_dict("records"), dtypes)
    by_id = result.set_index(ID).loc[sample[ID]]
    probabilities = [p["churn_probability"] for p in rest_predict(rest_port, {"instances": instances})]
    np.testing.assert_allclose(by_id["churn_probability"].astype(float), probabilities, rtol=0, atol=1e-6)
    profiles = json.loads((pushed / segments.ASSETS_EXTRA / segments.SEGMENTS_FILE).read_text())["segments"]
    segment_ids = rest_predict(rest_port, {"signature_name": "segment", "instances": instances})
    assert by_id["segment"].tolist() == [profiles[s]["name"] for s in segment_ids]
    explained = rest_predict(rest_port, {"signature_name": "explain", "instances": instances})
    for text, attributions in zip(by_id["top_factors"], explained, strict=True):
        pushing = sorted(((v, k.removesuffix("_attribution")) for k, v in attributions.items()
                          if k.endswith("_attribution") and v > 0), reverse=True)[:TOP_FACTORS]
        assert [f.split("=")[0] for f in text.split("; ") if f] == [name for _, name in pushing]


def test_store_keeps_every_scored_customer_with_version_period_segment_and_action(
        scored, pushed: Path, data: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    out = tmp_path / "stored.csv"
    proc = run_cli("score", "--data", str(data), "--model", str(pushed.parent), "--out", str(out), "--store", url,
                   "--period", "2026-10", "--chunk-rows", "1000", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{len(CUSTOMERS):,} predictions kept in the prediction store {url}"
    assert out.read_bytes() == data.with_name("customers_scored.csv").read_bytes()  # the store changes no output
    with PredictionStore(url) as store:
        rows = store.read()
    ranked = pd.read_csv(out, dtype={ID: str}).set_index(ID)
    rows = rows.set_index("customer_id").loc[ranked.index]
    assert len(rows) == len(CUSTOMERS) and set(rows["source"]) == {BATCH_SOURCE}
    assert set(rows["model_version"]) == {int(pushed.name)} and set(rows["period"]) == {"2026-10"}
    assert set(rows["signature"]) == {"serving_default"} and rows["scored_at"].nunique() == 1
    np.testing.assert_allclose(rows["probability"], ranked["churn_probability"], rtol=1e-6)
    chosen = threshold.read(pushed)
    assert set(rows["threshold"]) == {chosen}
    assert rows["decision"].tolist() == (ranked["churn_probability"] >= chosen).astype(int).tolist()
    assert rows["segment"].tolist() == ranked["segment"].tolist()
    assert rows["action"].tolist() == ranked["recommended_action"].tolist()


def test_a_failed_store_write_fails_the_command_and_keeps_the_chunks_written(pushed: Path, data: Path,
                                                                            tmp_path: Path) -> None:
    path = tmp_path / "refusing.sqlite"
    url = f"sqlite:///{path}"
    PredictionStore(url).close()
    with sqlite3.connect(path) as db:  # the database itself refuses rows beyond the first chunk
        db.execute("CREATE TRIGGER full BEFORE INSERT ON predictions WHEN (SELECT count(*) FROM predictions) >= 1000 "
                   "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    out = tmp_path / "never.csv"
    proc = run_cli("score", "--data", str(data), "--model", str(pushed), "--out", str(out), "--store", url,
                   "--chunk-rows", "1000", "--no-progress")
    assert proc.returncode == exit_codes.FAILED and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "python -m insights: error: prediction store: writing 1000 prediction(s) to the store failed: database or "
        f"disk is full (rows written before this failure are kept; {out} was not written)"]
    assert not out.exists()
    with PredictionStore(url) as store:
        assert len(store.read()) == 1000  # the first chunk, whole; nothing of the failed one


def test_an_unreachable_store_fails_before_scoring(pushed: Path, data: Path, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    proc = run_cli("score", "--data", str(data), "--model", str(pushed), "--out", str(tmp_path / "o.csv"),
                   "--no-progress", "--store", f"postgresql+psycopg2://churn@127.0.0.1:{port}/churn")
    assert proc.returncode == exit_codes.FAILED and "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("python -m insights: error: prediction store: cannot open the prediction store at ")
    assert not (tmp_path / "o.csv").exists()
