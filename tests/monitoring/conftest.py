"""Shared helpers: free ports, required binaries (fail, never skip, when missing), the test model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.facts import MODEL_NAME
from monitoring.prometheus import GRAFANA_DASHBOARD, install_command
from tests.monitoring.models import build_churn_model

MODEL_VERSION = 1


def require(binary: str) -> str:
    """Path of `binary`; the test fails with the install command when it is missing."""
    path = shutil.which(binary)
    if path is None:
        command = install_command("chromium") if binary == "chromium" else install_command()
        pytest.fail(f"{binary} is not installed; install it with: {command} (or run `make system-deps`)")
    return path


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
