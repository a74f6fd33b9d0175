"""Shared helpers: required binaries (fail, never skip, when missing), a real Prometheus, the test model."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.facts import MODEL_NAME
from monitoring import prometheus as prom
from monitoring.prometheus import GRAFANA_DASHBOARD, install_command
from tests.helpers import free_port
from tests.monitoring.models import build_churn_model

MODEL_VERSION = 1


def require(binary: str) -> str:
    """Path of `binary`; the test fails with the install command when it is missing."""
    path = shutil.which(binary)
    if path is None:
        command = install_command("chromium") if binary == "chromium" else install_command()
        pytest.fail(f"{binary} is not installed; install it with: {command} (or run `make system-deps`)")
    return path


@contextmanager
def running_prometheus(config: dict[str, Any] | Path, storage: Path) -> Iterator[int]:
    """A real Prometheus on a free 127.0.0.1 port with `config` (a dict is written to `<storage>/prometheus.yml`),
    TSDB in `<storage>/data`, output in `<storage>/prometheus.log`; yields the port and stops it on exit."""
    if isinstance(config, dict):
        path = storage / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        config = path
    port = free_port()
    with (storage / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(prom.command(require("prometheus"), config, storage, port=port), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def dashboard_exprs() -> list[str]:
    """Every query of the Grafana dashboard."""
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<tmp>/customer-model/1/`: the test churn model in TF Serving's layout."""
    base = tmp_path_factory.mktemp("models") / MODEL_NAME
    build_churn_model(base / str(MODEL_VERSION))
    return base


def query_prometheus(port: int, expr: str) -> list[dict]:
    """Prometheus' instant query API on 127.0.0.1:`port`; fails the test on an API error."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])
