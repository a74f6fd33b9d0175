"""Prometheus config, rules, dashboards and Docker files: checked with promtool and against the code."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from common.facts import ALERTMANAGER_PORT, DEFAULT_HOST, METRICS_PATH, PROJECT_ROOT, PUSHGATEWAY_PORT, REST_PORT
from monitoring import alerting, batch_metrics, outcomes
from monitoring import prometheus as prom
from serving.observability import metrics as tf_metrics
from serving.observability import model_metrics
from tests.monitoring.conftest import dashboard_exprs, require
from tests.monitoring.pushgateway import require_package_binary

_METRIC_TOKEN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("promtool"), *args], capture_output=True, text=True, timeout=60)


def rules() -> dict[str, list[dict]]:
    """'record' and 'alert' -> rule dicts, from every rule file prometheus.yml loads."""
    found: dict[str, list[dict]] = {"record": [], "alert": []}
    for path in prom.load_config()["rule_files"]:
        for group in yaml.safe_load((prom.MONITORING_DIR / path).read_text())["groups"]:
            for rule in group["rules"]:
                found["record" if "record" in rule else "alert"].append(rule)
    return found


def pushed_series() -> set[str]:
    """Every series name the batch jobs push to the Pushgateway (outcomes, drift, score shift)."""
    registries = [outcomes.outcome_metrics([], {1: 0.9}, 0.6),
                  batch_metrics.drift_registry({"Age": 0.1}, "2026-01", "L_INFTY", {"Age": 0.1}),
                  batch_metrics.score_shift_registry([0.1, 0.9], [0.2, 0.8], 1, "2026-01")]
    return {metric.name for registry in registries for metric in registry.collect()}


def known_series() -> set[str]:
    """Every series name a query may use: the servers' metrics, what batch jobs push, the recording rules."""
    names = {tf_metrics.exported_name(n) for n in (
        tf_metrics.REQUEST_COUNT, tf_metrics.REQUEST_LATENCY, tf_metrics.RUNTIME_LATENCY,
        tf_metrics.LOAD_ATTEMPT_COUNT, tf_metrics.LOAD_LATENCY)}
    names |= {model_metrics.AVAILABLE_VERSIONS, model_metrics.VERSION_AVAILABLE, model_metrics.REQUEST_LOG_ROWS}
    histograms = {tf_metrics.exported_name(tf_metrics.REQUEST_LATENCY), tf_metrics.exported_name(
        tf_metrics.RUNTIME_LATENCY), model_metrics.PROBABILITY}
    names |= {h + suffix for h in histograms for suffix in ("_bucket", "_sum", "_count")}
    return names | pushed_series() | {r["record"] for r in rules()["record"]} | {"up"}


def series_in(expr: str) -> set[str]:
    """Names in `expr` that look like series (TF Serving's `:a:b`, `level:metric:op`, `churn_*`)."""
    without_strings = re.sub(r"'[^']*'|\"[^\"]*\"", "", expr)
    return {t for t in _METRIC_TOKEN.findall(without_strings) if ":" in t or t.startswith("churn_")}


def test_committed_config_and_rules_are_valid() -> None:
    result = promtool("check", "config", str(prom.CONFIG_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *map(str, prom.RULES_TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_unit_tests_and_every_alert_fires_and_stays_quiet() -> None:
    tested_files = {prom.RULES_DIR / name for path in prom.RULES_TEST_FILES
                    for name in yaml.safe_load(path.read_text())["rule_files"]}
    assert {prom.MONITORING_DIR / p for p in prom.load_config()["rule_files"]} == tested_files
    tests = [t for path in prom.RULES_TEST_FILES for t in yaml.safe_load(path.read_text())["tests"]]
    tested_exprs = " ".join(e["expr"] for t in tests for e in t.get("promql_expr_test", []))
    alert_cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    for rule in rules()["record"]:
        assert rule["record"] in series_in(tested_exprs), f"recording rule {rule['record']} has no test"
    for rule in rules()["alert"]:
        cases = [c for c in alert_cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in cases), f"{rule['alert']}: no test where it fires"
        assert any(not c["exp_alerts"] for c in cases), f"{rule['alert']}: no test where it stays quiet"


def test_rules_and_dashboards_only_use_existing_series(tmp_path: Path) -> None:
    exprs = [r["expr"] for kind in rules().values() for r in kind] + dashboard_exprs()
    actions = re.findall(r"{{(.*?)}}", (prom.CONSOLES_DIR / "churn.html").read_text(), flags=re.DOTALL)
    console_strings = [q for action in actions for q in re.findall(r'"([^"]*)"', action)]
    templates = set(re.findall(r'define "([^"]+)"', (prom.CONSOLE_LIBRARIES_DIR / "churn.lib").read_text()))
    unknown = {name for expr in exprs + console_strings for name in series_in(expr)} - known_series() - templates
    assert not unknown, f"queries use series nothing produces: {sorted(unknown)}"
    # Every dashboard query parses: promtool checks them as recording rules.
    check = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query:{i}", "expr": expr} for i, expr in enumerate(dashboard_exprs())]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(check))
    result = promtool("check", "rules", str(tmp_path / "dashboard.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_job_matches_the_model_server() -> None:
    job = prom.scrape_job(prom.load_config())
    assert job["metrics_path"] == METRICS_PATH
    (sd,) = job["file_sd_configs"]
    (targets_file,) = sd["files"]
    (group,) = json.loads((prom.MONITORING_DIR / targets_file).read_text())
    assert group["targets"] == [f"{DEFAULT_HOST}:{REST_PORT}"]
    alerts = (prom.RULES_DIR / "alerts.yml").read_text()
    assert set(re.findall(r'job="([^"]+)"', alerts)) == {job["job_name"]}


def test_docker_files_use_the_committed_files() -> None:
    dockerfile = (prom.MONITORING_DIR / "Dockerfile").read_text()
    sources = re.findall(r"^COPY (?:--\S+ )?(\S+)", dockerfile, flags=re.MULTILINE)
    assert sources and all((prom.MONITORING_DIR / s).exists() for s in sources), sources  # context: monitoring/
    assert re.search(r"^FROM prom/prometheus:v\d+\.\d+\.\d+$", dockerfile, flags=re.MULTILINE)
    railway = json.loads((prom.MONITORING_DIR / "railway.json").read_text())
    assert (prom.MONITORING_DIR / railway["build"]["dockerfilePath"]).is_file()
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    assert (PROJECT_ROOT / compose["services"]["prometheus"]["build"]).resolve() == prom.MONITORING_DIR
    target = compose["services"]["prometheus"]["environment"]["MODEL_SERVER_TARGET"]
    assert target == f"tf-serving:{REST_PORT}"
    serving = compose["services"]["tf-serving"]
    host_of = {container: host for host, container in (v.rsplit(":", 1)[0].split(":") for v in serving["volumes"])}
    config_flag = next(f for f in serving["command"] if f.startswith("--model_config_file="))
    config_file = Path(config_flag.split("=", 1)[1])
    base_path = re.search(r'base_path: "([^"]+)"',
                          (PROJECT_ROOT / host_of[str(config_file.parent)] / config_file.name).read_text()).group(1)
    assert host_of[str(Path(base_path).parent)] == "./serving_model"  # the Pusher's folder, mounted
    grafana_mounts = dict(v.rsplit(":", 1)[0].split(":") for v in compose["services"]["grafana"]["volumes"])
    dashboards = yaml.safe_load((prom.MONITORING_DIR / "grafana/provisioning/dashboards/churn-model.yml").read_text())
    mounted_at = {container: host for host, container in grafana_mounts.items()}
    assert (PROJECT_ROOT / mounted_at[dashboards["providers"][0]["options"]["path"]]).resolve() == \
        prom.GRAFANA_DASHBOARD.parent
    for host in grafana_mounts:
        assert (PROJECT_ROOT / host).is_dir(), host


def test_grafana_dashboard_has_a_model_quality_row_on_the_pushed_metrics() -> None:
    panels = json.loads(prom.GRAFANA_DASHBOARD.read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = [(x, y) for p in panels for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells)), "panels overlap"
    (row,) = [p for p in panels if p["type"] == "row" and p["title"] == "Model quality"]
    below = [p for p in panels if p["gridPos"]["y"] > row["gridPos"]["y"]]
    queried = {name for p in below for t in p["targets"] for name in series_in(t["expr"])}
    assert {outcomes.METRIC_PREFIX + "auc", batch_metrics.DRIFT_DISTANCE, batch_metrics.SCORE_BIN_SHARE} <= queried
    assert queried <= pushed_series()


ENTRYPOINT = prom.MONITORING_DIR / "docker-entrypoint.sh"
PINNED_IMAGE = r"prom/{}:v\d+\.\d+\.\d+"


def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def entrypoint_config(tmp_path: Path, env: dict[str, str]) -> Path:
    """The Prometheus config monitoring/docker-entrypoint.sh writes for `env`, on a copy of the image's
    /etc/prometheus; the real Prometheus it then starts is asked for its version only, so it exits at once."""
    import os
    import shutil

    root = tmp_path / "etc-prometheus"
    root.mkdir()
    shutil.copy(prom.CONFIG_FILE, root / "prometheus.yml")
    for folder in ("rules", "targets"):
        shutil.copytree(prom.MONITORING_DIR / folder, root / folder)
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("MODEL_SERVER_", "PUSHGATEWAY_", "ALERTMANAGER_"))}
    result = subprocess.run(["/bin/sh", str(ENTRYPOINT), "--version"], capture_output=True, text=True, timeout=60,
                            env={**inherited, "PROMETHEUS_CONFIG_DIR": str(root), "PATH": os.environ["PATH"], **env})
    assert result.returncode == 0 and "prometheus, version" in result.stdout, result.stdout + result.stderr
    written = root / "targets" / "prometheus-alerting.yml"
    return written if written.exists() else root / "prometheus.yml"


def test_compose_runs_a_pushgateway_and_an_alertmanager_wired_like_make_serve(tmp_path: Path) -> None:
    services = compose()["services"]
    require("prometheus")
    assert re.fullmatch(PINNED_IMAGE.format("pushgateway"), services["pushgateway"]["image"])
    assert re.fullmatch(PINNED_IMAGE.format("alertmanager"), services["alertmanager"]["image"])
    assert services["pushgateway"]["ports"] == [f"{PUSHGATEWAY_PORT}:{PUSHGATEWAY_PORT}"]
    assert services["alertmanager"]["ports"] == [f"{ALERTMANAGER_PORT}:{ALERTMANAGER_PORT}"]
    prometheus = services["prometheus"]
    env = prometheus["environment"]
    assert env["PUSHGATEWAY_TARGET"] == f"pushgateway:{PUSHGATEWAY_PORT}"
    assert env["ALERTMANAGER_TARGET"] == f"alertmanager:{ALERTMANAGER_PORT}"
    assert {"pushgateway", "alertmanager"} <= set(prometheus["depends_on"])
    # Alertmanager runs the committed routes: the file its --config.file names is monitoring/alertmanager.yml.
    mounts = dict(v.rsplit(":", 1)[0].split(":") if v.endswith(":ro") else v.split(":")
                  for v in services["alertmanager"]["volumes"])
    config_flag = next(f for f in services["alertmanager"]["command"] if f.startswith("--config.file="))
    host_of = {container: host for host, container in mounts.items()}
    assert (PROJECT_ROOT / host_of[config_flag.split("=", 1)[1]]).resolve() == alerting.ALERTMANAGER_CONFIG
    checked = subprocess.run([require_package_binary("amtool"), "check-config", str(alerting.ALERTMANAGER_CONFIG)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The image's entry point turns the variables into what `make serve` adds (monitoring/alerting.py).
    written = entrypoint_config(tmp_path, {"MODEL_SERVER_TARGET": env["MODEL_SERVER_TARGET"],
                                           "PUSHGATEWAY_TARGET": env["PUSHGATEWAY_TARGET"],
                                           "ALERTMANAGER_TARGET": env["ALERTMANAGER_TARGET"]})
    result = promtool("check", "config", str(written))
    assert result.returncode == 0, result.stdout + result.stderr
    config, committed = yaml.safe_load(written.read_text()), prom.load_config()
    expected = alerting.with_alerting(committed, env["PUSHGATEWAY_TARGET"], env["ALERTMANAGER_TARGET"])
    assert config["scrape_configs"][1:] == expected["scrape_configs"][1:]
    assert config["alerting"] == expected["alerting"]
    assert config["rule_files"] == [f"../{path}" for path in committed["rule_files"]]  # quality.yml included
    assert alerting.QUALITY_RULES.name in {Path(path).name for path in config["rule_files"]}
    job = prom.scrape_job(config)
    assert job["file_sd_configs"][0]["files"] == ["model-server.json"]  # beside the generated config
    assert (written.parent / "model-server.json").is_file()


def test_entry_point_leaves_the_committed_config_without_the_alerting_variables(tmp_path: Path) -> None:
    require("prometheus")
    written = entrypoint_config(tmp_path, {"MODEL_SERVER_TARGET": f"tf-serving:{REST_PORT}"})
    assert written.read_text() == prom.CONFIG_FILE.read_text()
    (tmp_path / "only-pushgateway").mkdir()
    written = entrypoint_config(tmp_path / "only-pushgateway", {"MODEL_SERVER_TARGET": f"tf-serving:{REST_PORT}",
                                                                "PUSHGATEWAY_TARGET": "pg:1"})
    config = yaml.safe_load(written.read_text())
    assert [j["job_name"] for j in config["scrape_configs"]] == [prom.job_name(), alerting.PUSHGATEWAY_JOB]
    assert "alerting" not in config


@pytest.mark.parametrize("variable", ["PUSHGATEWAY_TARGET", "ALERTMANAGER_TARGET"])
def test_entry_point_refuses_a_target_that_is_not_host_port(tmp_path: Path, variable: str) -> None:
    import os

    result = subprocess.run(["/bin/sh", str(ENTRYPOINT)], capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], "PROMETHEUS_CONFIG_DIR": str(tmp_path),
                                 "MODEL_SERVER_TARGET": "m:8501", variable: "pushgateway"})
    assert result.returncode == 2
    assert result.stderr == f"{variable} must be host:port, not 'pushgateway'\n"


def test_railways_alertmanager_image_bakes_in_the_committed_routes_with_the_compose_version() -> None:
    dockerfile = (prom.MONITORING_DIR / "alertmanager.Dockerfile").read_text()
    (image,) = re.findall(r"^FROM (\S+)$", dockerfile, flags=re.MULTILINE)
    assert image == compose()["services"]["alertmanager"]["image"]
    (source, target) = re.findall(r"^COPY (\S+) (\S+)$", dockerfile, flags=re.MULTILINE)[0]
    assert (prom.MONITORING_DIR / source).resolve() == alerting.ALERTMANAGER_CONFIG  # build context: monitoring/
    (cmd,) = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    assert f"--config.file={target}" in json.loads(cmd)
    assert f"EXPOSE {ALERTMANAGER_PORT}" in dockerfile
