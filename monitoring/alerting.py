"""Pushgateway and Alertmanager next to Prometheus: their command lines and the configs that wire them.

- Pushgateway (Debian `prometheus-pushgateway`, port 9091): where batch jobs push (`monitoring/outcomes.py`,
  `monitoring/batch_metrics.py`); Prometheus scrapes it with `honor_labels` so pushed `job`/`period` labels stay.
- Alertmanager (Debian `prometheus-alertmanager`, port 9093): `alertmanager.yml` routes every alert to a
  webhook; e-mail and Slack receivers are documented there and in docs/monitoring.md ("Alertmanager").
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from common.facts import ALERTMANAGER_PORT, PROJECT_ROOT, PUSHGATEWAY_PORT
from monitoring.prometheus import MONITORING_DIR, PROMETHEUS_HOST, RULES_DIR

PUSHGATEWAY_BINARY = "prometheus-pushgateway"
ALERTMANAGER_BINARY = "prometheus-alertmanager"
PUSHGATEWAY_PACKAGE = "prometheus-pushgateway"
ALERTMANAGER_PACKAGE = "prometheus-alertmanager"
"""Debian packages of the binaries above (the Alertmanager package also brings `amtool`)."""
PUSHGATEWAY_STORAGE = PROJECT_ROOT / ".pushgateway"
"""`make serve`'s folder for the Pushgateway's persistence file and log (project-local, gitignored)."""
ALERTMANAGER_STORAGE = PROJECT_ROOT / ".alertmanager"
"""`make serve`'s folder for Alertmanager's silences, notification log and log file (project-local, gitignored)."""
ALERTMANAGER_CONFIG = MONITORING_DIR / "alertmanager.yml"
QUALITY_RULES = RULES_DIR / "quality.yml"
PUSHGATEWAY_JOB = "churn-batch"
"""Prometheus' scrape job of the Pushgateway (the pushed series keep their own `job` label)."""


def pushgateway_command(binary: str, host: str = PROMETHEUS_HOST, port: int = PUSHGATEWAY_PORT,
                        persistence_file: Path | None = None) -> list[str]:
    """Pushgateway keeping pushed metrics in `persistence_file` (kept across restarts), or in memory when None.

    Never the Debian default, which persists to /var/lib/prometheus (shared, root-owned)."""
    return [binary, f"--web.listen-address={host}:{port}", f"--persistence.file={persistence_file or ''}"]


def alertmanager_command(binary: str, config_path: Path, storage: Path, host: str = PROMETHEUS_HOST,
                         port: int = ALERTMANAGER_PORT) -> list[str]:
    """Alertmanager with its silences/notification log in `storage` and clustering off (one instance)."""
    return [binary, f"--config.file={config_path}", f"--storage.path={storage}",
            f"--web.listen-address={host}:{port}", "--cluster.listen-address="]


def alertmanager_config(webhook_url: str | None = None, group_wait: str | None = None,
                        group_interval: str | None = None) -> dict[str, Any]:
    """`alertmanager.yml`, optionally with another webhook URL and shorter grouping intervals (tests)."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    if webhook_url:
        (receiver,) = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
        receiver["webhook_configs"][0]["url"] = webhook_url
    if group_wait:
        config["route"]["group_wait"] = group_wait
    if group_interval:
        config["route"]["group_interval"] = group_interval
    return config


def with_alerting(prometheus_config: dict[str, Any], pushgateway: str | None,
                  alertmanager: str | None) -> dict[str, Any]:
    """A Prometheus config plus the Pushgateway scrape job (when `pushgateway`, `host:port`; with the quality
    rules when the config does not load them yet) and the Alertmanager to send alerts to (when `alertmanager`,
    `host:port`)."""
    config = copy.deepcopy(prometheus_config)
    if pushgateway:
        config["scrape_configs"].append({"job_name": PUSHGATEWAY_JOB, "honor_labels": True,
                                         "static_configs": [{"targets": [pushgateway]}]})
        rules = config.get("rule_files", [])
        if not any(Path(path).name == QUALITY_RULES.name for path in rules):
            config["rule_files"] = [*rules, str(QUALITY_RULES)]
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config
