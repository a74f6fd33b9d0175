"""End to end: outcome metrics pushed to a real Pushgateway, scraped by a real Prometheus with the quality
rules, sent to a real Alertmanager, delivered to a small local webhook receiver; then resolved."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from monitoring import alerting
from monitoring import prometheus as prom
from monitoring.outcomes import Row, outcome_metrics, push_metrics, quality
from tests.helpers import free_port
from tests.monitoring.conftest import running_prometheus
from tests.monitoring.pushgateway import pushgateway, require_package_binary

pytestmark = pytest.mark.e2e
TIMEOUT = 60.0


class Receiver:
    """A webhook receiver: keeps every Alertmanager notification (JSON body)."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, accept: Callable[[dict], bool], what: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for note in list(self.received):
                if accept(note):
                    return note
            time.sleep(0.2)
        pytest.fail(f"no {what} notification within {TIMEOUT:.0f} s; received: {self.received}")


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("alerting")
    receiver = Receiver()
    gateway = pushgateway()
    gateway_address = next(gateway)
    am_port = free_port()
    am_config = tmp / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alerting.alertmanager_config(receiver.url, "1s", "1s")))
    am_binary = require_package_binary(alerting.ALERTMANAGER_BINARY)
    manager = _start(alerting.alertmanager_command(am_binary, am_config, tmp / "am", port=am_port),
                     tmp / "alertmanager.log")
    # The model-server job points at a closed port: only the quality rules matter here.
    config = alerting.with_alerting(prom.runtime_config(f"127.0.0.1:{free_port()}", "/metrics", "1s"),
                                    gateway_address, f"127.0.0.1:{am_port}")
    try:
        with running_prometheus(config, tmp):
            yield receiver, gateway_address, tmp
    finally:
        manager.terminate()
        manager.wait(timeout=30)
        gateway.close()
        receiver.server.shutdown()


def _rows(auc_like_noise: float, period: str) -> list[Row]:
    """One version-7 row whose scores separate churners with the given noise."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 + (0.3 * (2 * y - 1)) * (1 - auc_like_noise) + rng.normal(0, 0.2, 2000), 0, 1)
    return [Row(7, period, None, quality(y, p, (p >= 0.5).astype(int)))]


def _alert(note: dict, status: str, period: str) -> dict | None:
    for alert in note["alerts"]:
        labels = alert["labels"]
        if (alert["status"] == status and labels["alertname"] == "ChurnModelOutcomeQualityDown"
                and labels.get("period") == period):
            return alert
    return None


def test_quality_drop_reaches_the_webhook_and_resolves_after_a_good_period(stack) -> None:
    receiver, gateway, tmp = stack
    bad = _rows(1.0, "2026-05")   # no signal: AUC about 0.5
    assert bad[0].quality.auc_high < 0.9 - 0.05
    push_metrics(outcome_metrics(bad, {7: 0.9}, 0.6), gateway)
    note = receiver.wait(lambda n: _alert(n, "firing", "2026-05") is not None, "firing")
    alert = _alert(note, "firing", "2026-05")
    assert alert["labels"]["model_version"] == "7" and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"].startswith("Churn model 7: outcome AUC in 2026-05 at most 0.")
    good = _rows(0.0, "2026-06")  # the retrained model's period
    assert good[0].quality.auc_high > 0.9 - 0.05
    push_metrics(outcome_metrics(good, {7: 0.9}, 0.6), gateway)
    receiver.wait(lambda n: _alert(n, "resolved", "2026-05") is not None, "resolved")
    assert not any(_alert(n, "firing", "2026-06") for n in receiver.received)

