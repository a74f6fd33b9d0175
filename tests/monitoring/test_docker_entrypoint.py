"""monitoring/docker-entrypoint.sh (the Railway / docker-compose image's entry point), run with the real
Prometheus on a copy of the image's /etc/prometheus: the target comes from MODEL_SERVER_TARGET."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Dict

import pytest

from monitoring import prometheus as prom
from serving.constants import METRICS_PATH
from tests.monitoring.conftest import free_port, require

pytestmark = pytest.mark.e2e

ENTRYPOINT = prom.MONITORING_DIR / "docker-entrypoint.sh"


def image_config_dir(tmp_path: Path) -> Path:
    """What monitoring/Dockerfile copies to /etc/prometheus."""
    root = tmp_path / "etc-prometheus"
    root.mkdir()
    shutil.copy(prom.CONFIG_FILE, root / "prometheus.yml")
    for folder in ("rules", "targets", "consoles", "console_libraries"):
        shutil.copytree(prom.MONITORING_DIR / folder, root / folder)
    return root


def run_entrypoint(tmp_path: Path, env: Dict[str, str]) -> subprocess.Popen:
    require("prometheus")
    config_dir = image_config_dir(tmp_path)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_SERVER_")}
    full_env = {**inherited, "PROMETHEUS_CONFIG_DIR": str(config_dir),
                "PROMETHEUS_STORAGE": str(tmp_path / "data"), **env}
    return subprocess.Popen(["/bin/sh", str(ENTRYPOINT)], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_target_and_scheme_come_from_the_variables(tmp_path: Path) -> None:
    port = free_port()
    process = run_entrypoint(tmp_path, {"MODEL_SERVER_TARGET": "model.internal:8501", "MODEL_SERVER_SCHEME": "https",
                                        "PORT": str(port)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5) as response:
                    active = json.load(response)["data"]["activeTargets"]
                if active:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus found no target: {process.stdout.read() if process.stdout else ''}")
            time.sleep(0.25)
        assert [t["scrapeUrl"] for t in active] == [f"https://model.internal:8501{METRICS_PATH}"]
        assert {t["labels"]["job"] for t in active} == {prom.job_name()}
        assert (tmp_path / "etc-prometheus" / "targets" / "model-server.json").read_text() != \
            (prom.MONITORING_DIR / "targets" / "model-server.json").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("env, message", [
    ({}, "set MODEL_SERVER_TARGET to the model server host:port"),
    ({"MODEL_SERVER_TARGET": "m:8501", "MODEL_SERVER_SCHEME": "ftp"}, "MODEL_SERVER_SCHEME must be http or https"),
])
def test_bad_variables_stop_the_container_with_a_message(tmp_path: Path, env: Dict[str, str], message: str) -> None:
    process = run_entrypoint(tmp_path, env)
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0 and message in output
