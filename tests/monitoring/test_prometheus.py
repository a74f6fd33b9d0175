"""`monitoring/prometheus.py`: the local Prometheus config it generates and the command line that runs it."""
from __future__ import annotations

from pathlib import Path

import yaml

from monitoring import prometheus as prom
from tests.monitoring.test_config import promtool


def test_local_config_differs_only_in_target_interval_and_paths(tmp_path: Path) -> None:
    path = prom.prepare(tmp_path, "127.0.0.1:1234", "/metrics-here", "1s")
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    generated, committed = yaml.safe_load(path.read_text()), prom.load_config()
    job = prom.scrape_job(generated)
    assert job["static_configs"] == [{"targets": ["127.0.0.1:1234"]}] and "file_sd_configs" not in job
    assert job["metrics_path"] == "/metrics-here" and job["job_name"] == prom.job_name()
    assert generated["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    assert [Path(p) for p in generated["rule_files"]] == [prom.MONITORING_DIR / p for p in committed["rule_files"]]


def test_without_an_interval_the_committed_intervals_stay() -> None:
    assert prom.runtime_config("127.0.0.1:1", "/m")["global"] == prom.load_config()["global"]


def test_command_runs_local_storage_on_the_given_address_with_the_churn_console(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    assert prom.command("/bin/prometheus", config, tmp_path, "0.0.0.0", 9999) == [
        "/bin/prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
        "--web.listen-address=0.0.0.0:9999", f"--web.console.templates={prom.CONSOLES_DIR}",
        f"--web.console.libraries={prom.CONSOLE_LIBRARIES_DIR}"]
    assert f"--web.listen-address={prom.PROMETHEUS_HOST}:{prom.PROMETHEUS_PORT}" in prom.command("p", config, tmp_path)
