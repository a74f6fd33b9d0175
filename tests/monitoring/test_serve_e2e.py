"""End to end, with real processes on free ports: `python -m monitoring.serve` (what `make serve` runs)
starts the model server and Prometheus; known numbers of OK, NOT_FOUND and INVALID_ARGUMENT
requests must come back from Prometheus' HTTP API, the rules and dashboard queries must answer,
the console page must show them in headless Chromium, and Ctrl-C must stop both processes."""
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

import pytest

from common.facts import METRICS_PATH, MODEL_NAME, PROJECT_ROOT
from monitoring import prometheus as prom
from tests.browser import artifacts_dir, dump_dom, screenshot
from tests.helpers import free_port
from tests.monitoring.conftest import MODEL_VERSION, dashboard_exprs, require
from tests.monitoring.models import instances
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
    url = f"http://127.0.0.1:{stack.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def by_label(result: list[dict], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_base: Path) -> Iterator[Stack]:
    require("prometheus")
    tmp = tmp_path_factory.mktemp("stack")
    rest_port, grpc_port, prometheus_port = free_port(), free_port(), free_port()
    output = tmp / "monitoring-serve.log"
    with output.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "monitoring.serve", "--prometheus-port", str(prometheus_port),
             "--prometheus-storage", str(tmp / "prometheus"), "--scrape-interval", "1s",
             f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}", f"--port={grpc_port}",
             f"--rest_api_port={rest_port}", f"--monitoring_config_file={MONITORING_CONFIG}",
             f"--request_log_file={tmp / 'requests.jsonl'}"],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    stack = Stack(launcher, rest_port, prometheus_port, tmp / "prometheus", tmp / "requests.jsonl", output)
    try:
        ready = f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 1'
        wait_for(lambda: True if _metrics_text(rest_port).find(ready) >= 0 else None, "the model server", stack,
                 timeout=120)
        wait_for(lambda: query(stack, "up == 1") or None, "Prometheus to scrape the server", stack)
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


def test_every_dashboard_query_answers(stack: Stack, traffic: dict[str, int]) -> None:
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


def test_console_page_shows_the_status_panels(stack: Stack, traffic: dict[str, int]) -> None:
    require("chromium")
    wait_for(lambda: True if _counts(stack) == traffic else None, "every request in Prometheus", stack, timeout=30)
    wait_for(lambda: query(stack, "model_name_API:tf_serving_request_latency_microseconds:p99_5m >= 0") or None,
             "latency quantiles", stack, timeout=30)
    url = f"http://127.0.0.1:{stack.prometheus_port}{prom.CONSOLE_PATH}?range=300&refresh=0"
    panels = _Panels()
    panels.feed(dump_dom(url))
    totals = {(r[0], r[1]): r[2] for r in panels.rows["requests-total"][1:]}
    assert totals == {(MODEL_NAME, "INVALID_ARGUMENT"): "5", ("no-such-model", "NOT_FOUND"): "4",
                      (MODEL_NAME, "OK"): "7"}
    assert {r[1] for r in panels.rows["requests-rate"][1:]} == set(traffic)
    assert [r[:2] for r in panels.rows["latency"][1:]] == [[MODEL_NAME, "predict"]]
    assert all(float(x) > 0 for x in panels.rows["latency"][1][2:]), panels.rows["latency"]
    assert [r[:2] for r in panels.rows["versions"][1:]] == [[MODEL_NAME, str(MODEL_VERSION)]]
    assert [r[1] for r in panels.rows["targets"][1:]] == ["up"]
    shot = screenshot(url, artifacts_dir() / "monitoring-console.png", height=1400)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_ctrl_c_stops_the_server_and_prometheus(stack: Stack) -> None:
    children = _children(stack.launcher.pid)
    assert len(children) == 2, children
    stack.launcher.send_signal(signal.SIGINT)
    assert stack.launcher.wait(timeout=40) == 0, stack.log_tail()
    assert not [child for child in children if Path(f"/proc/{child}").exists()]  # both reaped
    assert "See you next time" in (stack.storage / "prometheus.log").read_text()
    assert "Shutting down" in stack.log_tail()
