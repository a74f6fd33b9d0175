"""monitoring/docker-entrypoint.sh (the Railway / docker-compose image's entry point), run with the real
Prometheus on a copy of the image's /etc/prometheus: the target comes from MODEL_SERVER_TARGET, as one
static target or, with MODEL_SERVER_DISCOVERY=dns, as every address its host name resolves to."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.facts import METRICS_PATH
from monitoring import prometheus as prom
from tests.helpers import free_port
from tests.monitoring.conftest import require

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


def run_entrypoint(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
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


def test_dns_discovery_scrapes_every_address_of_the_name_with_the_same_job_and_rules(tmp_path: Path) -> None:
    port = free_port()
    process = run_entrypoint(tmp_path, {"MODEL_SERVER_TARGET": "customer-model.railway.internal:8501",
                                        "MODEL_SERVER_DISCOVERY": "dns", "PORT": str(port)})
    try:
        rules = wait_for_api(process, port, "rules", lambda data: data["groups"] or None)
        loaded = yaml.safe_load(wait_for_api(process, port, "status/config", lambda data: data)["yaml"])
    finally:
        process.terminate()
        process.wait(timeout=30)
    (job,) = loaded["scrape_configs"]
    assert job["dns_sd_configs"] == [{"names": ["customer-model.railway.internal"], "type": "AAAA", "port": 8501,
                                      "refresh_interval": "30s"}]
    assert "file_sd_configs" not in job and job["scheme"] == "http"
    committed = prom.load_config()
    assert (job["job_name"], job["metrics_path"]) == (prom.job_name(), METRICS_PATH)
    assert {g["name"] for g in rules} == {g["name"] for path in committed["rule_files"]
                                          for g in yaml.safe_load((prom.MONITORING_DIR / path).read_text())["groups"]}
    generated = tmp_path / "etc-prometheus" / "targets" / "prometheus-dns.yml"
    result = subprocess.run([require("promtool"), "check", "config", str(generated)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    written = yaml.safe_load(generated.read_text())
    written["scrape_configs"][0].pop("dns_sd_configs")
    written["scrape_configs"][0].pop("scheme")
    prom.scrape_job(committed).pop("file_sd_configs")
    committed["rule_files"] = [f"../{path}" for path in committed["rule_files"]]
    assert written == committed  # only discovery (and rule paths, one folder down) differ


def wait_for_api(process: subprocess.Popen, port: int, endpoint: str, probe: Callable[[dict], Any]) -> Any:
    """`probe` of Prometheus' /api/v1/<endpoint> data, once it is not None."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{endpoint}", timeout=5) as response:
                value = probe(json.load(response)["data"])
            if value is not None:
                return value
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no answer from /api/v1/{endpoint}: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.25)


@pytest.mark.parametrize("env, message", [
    ({}, "set MODEL_SERVER_TARGET to the model server host:port"),
    ({"MODEL_SERVER_TARGET": "m:8501", "MODEL_SERVER_SCHEME": "ftp"}, "MODEL_SERVER_SCHEME must be http or https"),
    ({"MODEL_SERVER_TARGET": "m:8501", "MODEL_SERVER_DISCOVERY": "consul"},
     "MODEL_SERVER_DISCOVERY must be static or dns"),
    ({"MODEL_SERVER_TARGET": "m", "MODEL_SERVER_DISCOVERY": "dns"}, "MODEL_SERVER_TARGET must be host:port"),
    ({"MODEL_SERVER_TARGET": "m:http", "MODEL_SERVER_DISCOVERY": "dns"}, "MODEL_SERVER_TARGET must be host:port"),
])
def test_bad_variables_stop_the_container_with_a_message(tmp_path: Path, env: dict[str, str], message: str) -> None:
    process = run_entrypoint(tmp_path, env)
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0 and message in output


def test_pushgateway_and_alertmanager_variables_make_prometheus_scrape_and_alert_like_make_serve(
        tmp_path: Path) -> None:
    """Docker Compose / Railway: a real Pushgateway is scraped as job churn-batch with the pushed labels kept, and
    Prometheus knows the Alertmanager of ALERTMANAGER_TARGET."""
    from monitoring import alerting
    from tests.monitoring.pushgateway import pushgateway

    gateway = pushgateway()
    address = next(gateway)
    try:
        body = b'churn_outcome_auc{model_version="3",period="2026-05"} 0.71\n'
        request = urllib.request.Request(f"http://{address}/metrics/job/churn_outcomes", data=body, method="PUT")
        urllib.request.urlopen(request, timeout=5).read()
        port, alertmanager = free_port(), f"127.0.0.1:{free_port()}"
        process = run_entrypoint(tmp_path, {"MODEL_SERVER_TARGET": "127.0.0.1:1", "PUSHGATEWAY_TARGET": address,
                                            "ALERTMANAGER_TARGET": alertmanager, "PORT": str(port)})
        try:
            found = wait_for_api(process, port, "query?query=churn_outcome_auc",
                                 lambda data: data["result"] or None)
            managers = wait_for_api(process, port, "alertmanagers", lambda data: data["activeAlertmanagers"] or None)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        gateway.close()
    (sample,) = found
    assert sample["metric"]["job"] == "churn_outcomes" and sample["metric"]["period"] == "2026-05"  # honor_labels
    assert [m["url"] for m in managers] == [f"http://{alertmanager}/api/v2/alerts"]
    generated = yaml.safe_load((tmp_path / "etc-prometheus" / "targets" / "prometheus-alerting.yml").read_text())
    assert alerting.PUSHGATEWAY_JOB in {job["job_name"] for job in generated["scrape_configs"]}
