"""End to end, with real processes on free ports: `python -m monitoring.serve` (what `make serve` runs)
starts the model server, Prometheus, a Pushgateway and an Alertmanager; known numbers of OK, NOT_FOUND and
INVALID_ARGUMENT requests must come back from Prometheus' HTTP API, quality metrics pushed to that
Pushgateway must be scraped and their alert reach that Alertmanager, the rules and dashboard queries must
answer, the console page (serving and model-quality rows) must show them in headless Chromium, and Ctrl-C
must stop all four processes."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from common.facts import METRICS_PATH, MODEL_NAME, PROJECT_ROOT
from monitoring import alerting, batch_metrics, outcomes
from monitoring import prometheus as prom
from tests.browser import artifacts_dir, dump_dom, screenshot
from tests.helpers import free_port
from tests.monitoring.conftest import MODEL_VERSION, dashboard_exprs, query_prometheus, require
from tests.monitoring.models import instances
from tests.monitoring.pushgateway import require_package_binary
from tests.serving.http_util import get, post

pytestmark = pytest.mark.e2e

MONITORING_CONFIG = PROJECT_ROOT / "serving" / "config" / "monitoring.config"
ROWS_PER_REQUEST = 3
# Sent in two rounds with a scrape in between, so every status' series exists before the second
# round and rate() sees its increase (a series' first sample has no rate).
FIRST = {"OK": 1, "NOT_FOUND": 1, "INVALID_ARGUMENT": 1}
SECOND = {"OK": 6, "NOT_FOUND": 3, "INVALID_ARGUMENT": 4}
SENT = {status: FIRST[status] + SECOND[status] for status in FIRST}
T = TypeVar("T")


@dataclass
class Stack:
    launcher: subprocess.Popen
    rest_port: int
    prometheus_port: int
    pushgateway_port: int
    alertmanager_port: int
    storage: Path
    request_log: Path
    output: Path

    def log_tail(self) -> str:
        return self.output.read_text(errors="replace")[-3000:]


def wait_for(probe: Callable[[], T | None], what: str, stack: Stack, timeout: float = 60) -> T:
    """Polls until `probe` returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if stack.launcher.poll() is not None:
            pytest.fail(f"monitoring.serve exited ({stack.launcher.returncode}) waiting for {what}:\n"
                        f"{stack.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{stack.log_tail()}")
        time.sleep(0.25)


def query(stack: Stack, expr: str) -> list[dict]:
    """Prometheus' instant query API; fails the test on an API error."""
    return query_prometheus(stack.prometheus_port, expr)


def by_label(result: list[dict], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_base: Path) -> Iterator[Stack]:
    require("prometheus")
    for binary in (alerting.PUSHGATEWAY_BINARY, alerting.ALERTMANAGER_BINARY):
        require_package_binary(binary)
    tmp = tmp_path_factory.mktemp("stack")
    rest_port, grpc_port, prometheus_port = free_port(), free_port(), free_port()
    pushgateway_port, alertmanager_port = free_port(), free_port()
    output = tmp / "monitoring-serve.log"
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "monitoring.serve", "--prometheus-port", str(prometheus_port),
             "--prometheus-storage", str(tmp / "prometheus"), "--scrape-interval", "1s",
             "--pushgateway-port", str(pushgateway_port), "--pushgateway-storage", str(tmp / "pushgateway"),
             "--alertmanager-port", str(alertmanager_port), "--alertmanager-storage", str(tmp / "alertmanager"),
             f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}", f"--port={grpc_port}",
             f"--rest_api_port={rest_port}", f"--monitoring_config_file={MONITORING_CONFIG}",
             f"--request_log_file={tmp / 'requests.jsonl'}"],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    stack = Stack(launcher, rest_port, prometheus_port, pushgateway_port, alertmanager_port, tmp / "prometheus",
                  tmp / "requests.jsonl", output)
    try:
        ready = f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 1'
        wait_for(lambda: True if _metrics_text(rest_port).find(ready) >= 0 else None, "the model server", stack,
                 timeout=120)
        wait_for(lambda: query(stack, "up == 1") or None, "Prometheus to scrape the server", stack)
        wait_for(lambda: query(stack, f'up{{job="{alerting.PUSHGATEWAY_JOB}"}} == 1') or None,
                 "Prometheus to scrape the Pushgateway", stack)
        yield stack
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
            for child in _children(launcher.pid):
                subprocess.run(["kill", "-9", str(child)], check=False)


def _metrics_text(port: int) -> str:
    try:
        return get(port, METRICS_PATH)[2].decode()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _send(port: int, counts: dict[str, int], seed: int) -> None:
    for i in range(counts["OK"]):
        body = {"instances": instances(ROWS_PER_REQUEST, seed=seed + i)}
        assert post(port, f"/v1/models/{MODEL_NAME}:predict", body)[0] == 200
    for _ in range(counts["NOT_FOUND"]):
        assert post(port, "/v1/models/no-such-model:predict", {"instances": [{"Age": 30}]})[0] == 404
    for _ in range(counts["INVALID_ARGUMENT"]):
        assert post(port, f"/v1/models/{MODEL_NAME}:predict", {"instances": [{"Age": "thirty"}]})[0] == 400


def _counts(stack: Stack) -> dict[str, float]:
    return by_label(query(stack, "sum by (status) (:tensorflow:serving:request_count)"), "status")


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> dict[str, int]:
    _send(stack.rest_port, FIRST, seed=100)
    wait_for(lambda: True if _counts(stack) == FIRST else None, "the first round in Prometheus", stack)
    _send(stack.rest_port, SECOND, seed=200)
    return SENT


QUALITY_PERIODS = {"2026-04": 0.0, "2026-05": 1.0}
"""Period -> noise of the pushed outcomes: 2026-04 separates churners well, 2026-05 not at all."""
EVAL_AUC = 0.9
DRIFT = {"Satisfaction_Score": 0.3, "Age": 0.02}


def _outcome_rows() -> list[outcomes.Row]:
    rng = np.random.default_rng(5)
    rows = []
    for period, noise in QUALITY_PERIODS.items():
        y = rng.integers(0, 2, 2000)
        p = np.clip(0.5 + 0.3 * (2 * y - 1) * (1 - noise) + rng.normal(0, 0.2, 2000), 0, 1)
        rows.append(outcomes.Row(MODEL_VERSION, period, None, outcomes.quality(y, p, (p >= 0.5).astype(int))))
    return rows


@pytest.fixture(scope="module")
def quality(stack: Stack) -> dict:
    """Outcomes, drift and the served-score shift pushed to the launcher's Pushgateway, as the batch jobs do."""
    gateway = f"127.0.0.1:{stack.pushgateway_port}"
    rows = _outcome_rows()
    outcomes.push_metrics(outcomes.outcome_metrics(rows, {MODEL_VERSION: EVAL_AUC}, 0.6), gateway)
    batch_metrics.publish_drift(DRIFT, "2026-05", gateway, "JENSEN_SHANNON_DIVERGENCE",
                                thresholds={f: 0.1 for f in DRIFT}, drivers=["Satisfaction_Score"])
    rng = np.random.default_rng(6)
    eval_scores, served = rng.beta(2, 5, 4000), rng.beta(4, 4, 4000)
    psi = batch_metrics.publish_score_shift(eval_scores, served, MODEL_VERSION, "2026-05", gateway)
    wait_for(lambda: query(stack, "churn_score_bin_share") or None, "the pushed metrics in Prometheus", stack)
    return {"rows": {r.period: r.quality for r in rows}, "psi": psi,
            "served_top_bin": float(np.mean(served >= 0.9)), "eval_top_bin": float(np.mean(eval_scores >= 0.9))}


def test_pushed_quality_keeps_its_period_and_its_alert_reaches_the_alertmanager(stack: Stack, quality: dict) -> None:
    upper = query(stack, "churn_outcome_auc_upper")
    assert {r["metric"]["job"] for r in upper} == {outcomes.PUSH_JOB}  # honor_labels: the pushed job, not the scrape's
    auc = {(r["metric"]["model_version"], r["metric"]["period"]): float(r["value"][1]) for r in upper}
    assert auc == {(str(MODEL_VERSION), p): pytest.approx(q.auc_high) for p, q in quality["rows"].items()}
    assert quality["rows"]["2026-05"].auc_high < EVAL_AUC - 0.05 < quality["rows"]["2026-04"].auc_high
    printed = stack.output.read_text()
    assert f"Pushgateway:  http://127.0.0.1:{stack.pushgateway_port} (batch jobs: --pushgateway" in printed
    assert f"Alertmanager: http://127.0.0.1:{stack.alertmanager_port} (receives Prometheus' alerts" in printed
    (manager,) = _api(stack.prometheus_port, "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert manager["url"].startswith(f"http://127.0.0.1:{stack.alertmanager_port}/")

    def received() -> list[dict] | None:
        alerts = [a for a in _api(stack.alertmanager_port, "/api/v2/alerts")
                  if a["labels"]["alertname"] == "ChurnModelOutcomeQualityDown"]
        return alerts or None
    (alert,) = wait_for(received, "the quality alert at the Alertmanager", stack)
    assert alert["labels"]["period"] == "2026-05" and alert["labels"]["model_version"] == str(MODEL_VERSION)
    assert alert["annotations"]["summary"].startswith(f"Churn model {MODEL_VERSION}: outcome AUC in 2026-05")
    firing = {a["labels"]["alertname"] for a in _api(stack.prometheus_port, "/api/v1/alerts")["data"]["alerts"]}
    assert {"ChurnModelDriverFeatureDrift", "ChurnModelServedScoreShift"} <= firing


def _api(port: int, path: str) -> dict | list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def test_prometheus_counts_equal_the_requests_sent(stack: Stack, traffic: dict[str, int]) -> None:
    wait_for(lambda: True if _counts(stack) == traffic else None, "every request in Prometheus", stack, timeout=30)
    assert _counts(stack) == {"OK": 7, "NOT_FOUND": 4, "INVALID_ARGUMENT": 5}
    per_model = query(stack, "sum by (model_name, status) (:tensorflow:serving:request_count)")
    assert {(r["metric"]["model_name"], r["metric"]["status"]) for r in per_model} == {
        (MODEL_NAME, "OK"), ("no-such-model", "NOT_FOUND"), (MODEL_NAME, "INVALID_ARGUMENT")}


def test_recording_rules_and_model_metrics_answer(stack: Stack, traffic: dict[str, int]) -> None:
    rates = wait_for(lambda: (lambda r: r if len(r) == 3 and min(r.values()) > 0 else None)(
        by_label(query(stack, "model_name_status:tf_serving_requests:rate1m"), "status")),
        "per-status rates", stack, timeout=30)
    assert set(rates) == set(traffic)
    ratio = query(stack, f"model_name:tf_serving_request_errors:ratio_rate5m{{model_name='{MODEL_NAME}'}}")
    assert 0 < float(ratio[0]["value"][1]) < 1
    quantiles = [float(query(stack, f"model_name_API:tf_serving_request_latency_microseconds:{q}_5m"
                                    "{API='predict'}")[0]["value"][1]) for q in ("p50", "p95", "p99")]
    assert 0 < quantiles[0] <= quantiles[1] <= quantiles[2], quantiles
    rows = traffic["OK"] * ROWS_PER_REQUEST
    count = query(stack, "sum(churn_model_prediction_probability_count)")
    assert float(count[0]["value"][1]) == rows
    versions = query(stack, "churn_model_version_available")
    assert [(v["metric"]["model_name"], v["metric"]["version"]) for v in versions] == [(MODEL_NAME, str(MODEL_VERSION))]
    mean = wait_for(lambda: query(stack, "model_name_version:churn_model_prediction_probability:mean_5m >= 0") or None,
                    "the mean probability", stack, timeout=30)
    assert 0 < float(mean[0]["value"][1]) < 1
    assert not query(stack, 'ALERTS{alertname=~"ChurnModelNoVersionAvailable|ChurnModelTargetDown"}')
    logged = wait_for(lambda: (lambda n: n if n == rows else None)(
        len(stack.request_log.read_text().splitlines()) if stack.request_log.exists() else 0),
        "the request log", stack, timeout=15)
    assert logged == rows


def test_every_dashboard_query_answers(stack: Stack, traffic: dict[str, int], quality: dict) -> None:
    wait_for(lambda: True if _counts(stack) == traffic else None, "every request in Prometheus", stack, timeout=30)
    empty = [expr for expr in dashboard_exprs() if not query(stack, expr)]
    assert not empty, f"dashboard queries with no data: {empty}"


class _Panels(HTMLParser):
    """Rows (cell texts) of the `churn-table` in each `<div class="churn-panel" id=...>` of the console
    (the graphs' own layout tables are skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self._panel: str | None = None
        self._depth = 0
        self._in_table = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div":
            if self._panel:
                self._depth += 1
            elif "churn-panel" in classes:
                self._panel, self._depth = dict(attrs)["id"], 0
                self.rows[self._panel] = []
        elif tag == "table":
            self._in_table = bool(self._panel) and "churn-table" in classes
        elif tag == "tr" and self._in_table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._panel:
            if self._depth == 0:
                self._panel = None
            self._depth -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._panel:
            self.rows[self._panel].append(self._row)
            self._row = None
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_console_page_shows_the_status_and_model_quality_panels(stack: Stack, traffic: dict[str, int],
                                                                 quality: dict) -> None:
    require("chromium")
    wait_for(lambda: True if _counts(stack) == traffic else None, "every request in Prometheus", stack, timeout=30)
    wait_for(lambda: query(stack, "model_name_API:tf_serving_request_latency_microseconds:p99_5m >= 0") or None,
             "latency quantiles", stack, timeout=30)
    url = f"http://127.0.0.1:{stack.prometheus_port}{prom.CONSOLE_PATH}?range=300&refresh=0"
    panels = _Panels()
    dom = dump_dom(url)
    panels.feed(dom)
    totals = {(r[0], r[1]): r[2] for r in panels.rows["requests-total"][1:]}
    assert totals == {(MODEL_NAME, "INVALID_ARGUMENT"): "5", ("no-such-model", "NOT_FOUND"): "4",
                      (MODEL_NAME, "OK"): "7"}
    assert {r[1] for r in panels.rows["requests-rate"][1:]} == set(traffic)
    assert [r[:2] for r in panels.rows["latency"][1:]] == [[MODEL_NAME, "predict"]]
    assert all(float(x) > 0 for x in panels.rows["latency"][1][2:]), panels.rows["latency"]
    assert [r[:2] for r in panels.rows["versions"][1:]] == [[MODEL_NAME, str(MODEL_VERSION)]]
    assert [r[1] for r in panels.rows["targets"][1:]] == ["up"]
    # Model quality: outcome AUC per period and version, drift per feature, served scores against the eval split.
    auc = {r[1]: r for r in panels.rows["outcome-auc"][1:]}
    assert set(auc) == set(QUALITY_PERIODS) and {r[0] for r in auc.values()} == {str(MODEL_VERSION)}
    for period, q in quality["rows"].items():
        assert auc[period][2:5] == [f"{q.auc:.3f}", f"{q.auc_low:.3f}–{q.auc_high:.3f}", f"{EVAL_AUC:.3f}"]
        assert auc[period][7] == str(q.labelled)
    drift = {r[0]: r for r in panels.rows["drift"][1:]}
    assert drift["Satisfaction_Score"][1:] == ["2026-05", "JENSEN_SHANNON_DIVERGENCE", "0.300", "0.100", "yes"]
    assert drift["Age"][3:] == ["0.020", "0.100", "no"]
    assert f"PSI <strong>{quality['psi']:.3f}</strong>" in dom
    shares = {r[2]: r for r in panels.rows["score-histogram"][1:]}
    assert len(shares) == batch_metrics.PSI_BINS
    top = shares["0.9-1.0"]
    assert [float(top[3].rstrip("%")) / 100, float(top[4].rstrip("%")) / 100] == pytest.approx(
        [quality["eval_top_bin"], quality["served_top_bin"]], abs=1e-4)
    shot = screenshot(url, artifacts_dir() / "monitoring-console.png", height=2200)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_ctrl_c_stops_the_server_prometheus_pushgateway_and_alertmanager(stack: Stack) -> None:
    children = _children(stack.launcher.pid)
    assert len(children) == 4, children
    stack.launcher.send_signal(signal.SIGINT)
    assert stack.launcher.wait(timeout=40) == 0, stack.log_tail()
    assert not [child for child in children if Path(f"/proc/{child}").exists()]  # both reaped
    assert "See you next time" in (stack.storage / "prometheus.log").read_text()
    assert "Shutting down" in stack.log_tail()
