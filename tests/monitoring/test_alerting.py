"""monitoring/alerting.py: the configs it generates are valid for promtool and amtool."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from monitoring import alerting
from monitoring import prometheus as prom
from tests.monitoring.conftest import require
from tests.monitoring.pushgateway import require_package_binary


def test_prometheus_config_with_pushgateway_and_alertmanager_is_valid(tmp_path: Path) -> None:
    base = prom.runtime_config("127.0.0.1:8501", "/metrics", "1s")
    config = alerting.with_alerting(base, "127.0.0.1:9091", "127.0.0.1:9093")
    job = config["scrape_configs"][-1]
    assert job == {"job_name": alerting.PUSHGATEWAY_JOB, "honor_labels": True,
                   "static_configs": [{"targets": ["127.0.0.1:9091"]}]}
    assert config["rule_files"][-1] == str(alerting.QUALITY_RULES)
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert alerting.with_alerting(base, None, None) == base and "alerting" not in base
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([require("promtool"), "check", "config", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_overrides_are_valid(tmp_path: Path) -> None:
    config = alerting.alertmanager_config("http://127.0.0.1:1234/hook", "1s", "2s")
    assert config["route"]["group_wait"] == "1s" and config["route"]["group_interval"] == "2s"
    assert config["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:1234/hook"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([require_package_binary("amtool"), "check-config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert alerting.alertmanager_command("am", path, tmp_path)[-1] == "--cluster.listen-address="
    assert alerting.pushgateway_command("pg")[-1] == "--persistence.file="


def test_committed_alertmanager_config_is_valid() -> None:
    result = subprocess.run([require_package_binary("amtool"), "check-config", str(alerting.ALERTMANAGER_CONFIG)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = alerting.alertmanager_config()
    (webhook,) = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    assert webhook["webhook_configs"][0]["send_resolved"] is True


def enabled_documented_receivers(text: str) -> str:
    """`alertmanager.yml` with its commented-out routes and receivers (`  # key: ...` lines) uncommented."""
    return "\n".join(re.sub(r"^(\s+)# (\s*(- )?[a-z_]+:.*)$", r"\1\2", line) for line in text.splitlines()) + "\n"


def test_documented_email_and_slack_receivers_are_valid_and_routed_when_enabled(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(enabled_documented_receivers(alerting.ALERTMANAGER_CONFIG.read_text()))
    result = subprocess.run([require_package_binary("amtool"), "check-config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"webhook", "email", "slack"}
    assert {r["receiver"] for r in config["route"]["routes"]} | {config["route"]["receiver"]} == set(receivers)
    assert all(r.get("continue") for r in config["route"]["routes"])  # the webhook keeps every alert
    (email,) = receivers["email"]["email_configs"]
    (slack,) = receivers["slack"]["slack_configs"]
    assert "auth_password_file" in email and "api_url_file" in slack  # secrets in files, not in the repository
    assert slack["title"] == "{{ .CommonAnnotations.summary }}"
