"""A real alerting stack for end-to-end tests: a Pushgateway, an Alertmanager routing the webhook to a local
receiver (1 s grouping), and a Prometheus running the committed rules (1 s scrape and evaluation)."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from monitoring import alerting
from monitoring import prometheus as prom
from monitoring.webhook import WebhookReceiver
from tests.helpers import free_port
from tests.monitoring.conftest import running_prometheus
from tests.monitoring.pushgateway import pushgateway, require_package_binary

TIMEOUT = 60.0
"""Seconds a test waits for a notification."""


class Receiver(WebhookReceiver):
    """monitoring/webhook.py's receiver (every Alertmanager notification kept in `received`), waiting for one."""

    def wait(self, accept: Callable[[dict], bool], what: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for note in list(self.received):
                if accept(note):
                    return note
            time.sleep(0.2)
        pytest.fail(f"no {what} notification within {TIMEOUT:.0f} s; received: {self.received}")


@contextmanager
def alerting_stack(tmp: Path) -> Iterator[tuple[Receiver, str, int]]:
    """Starts the stack with its files under `tmp`; yields (receiver, Pushgateway host:port, Prometheus port) and
    stops everything on exit. The model-server scrape job points at a closed port: only the rules matter here."""
    receiver = Receiver()
    gateway = pushgateway()
    gateway_address = next(gateway)
    am_port = free_port()
    am_config = tmp / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alerting.alertmanager_config(receiver.url, "1s", "1s")))
    am_binary = require_package_binary(alerting.ALERTMANAGER_BINARY)
    with (tmp / "alertmanager.log").open("wb") as log:
        manager = subprocess.Popen(alerting.alertmanager_command(am_binary, am_config, tmp / "am", port=am_port),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    config = alerting.with_alerting(prom.runtime_config(f"127.0.0.1:{free_port()}", "/metrics", "1s"),
                                    gateway_address, f"127.0.0.1:{am_port}")
    try:
        with running_prometheus(config, tmp) as port:
            yield receiver, gateway_address, port
    finally:
        manager.terminate()
        manager.wait(timeout=30)
        gateway.close()
        receiver.close()
