"""monitoring/kubernetes/prometheus.yml: the main config's job, metrics path, intervals and rules, with one
target per model-server pod; checked with promtool, against the main config and against the pods."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from common.facts import ALERTMANAGER_PORT, METRICS_PATH, PROJECT_ROOT, PUSHGATEWAY_PORT, REST_PORT
from monitoring import alerting
from monitoring import prometheus as prom
from tests.k8s import (
    ALERTMANAGER,
    PROMETHEUS_CONFIG,
    PUSHGATEWAY,
    RBAC,
    file_sd_variant,
    load_all,
    pod_targets,
    prometheus_config,
    resources,
)
from tests.monitoring.pushgateway import require_package_binary
from tests.monitoring.test_config import promtool


def test_config_passes_promtool_with_pod_discovery_played_by_file_sd(tmp_path: Path) -> None:
    # Debian's Prometheus is built without Kubernetes discovery, so promtool reads the committed config
    # with only the kubernetes_sd_configs block swapped for file_sd: relabelling and rules as committed.
    (tmp_path / "pods.json").write_text("[]")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(file_sd_variant(tmp_path / "pods.json"), sort_keys=False))
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(prom.load_config()['rule_files'])} rule files found" in result.stdout


def test_same_job_and_rules_as_the_main_config_with_pod_discovery_in_its_namespace() -> None:
    config, main = prometheus_config(), prom.load_config()
    job = prom.scrape_job(config)
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"own_namespace": True}}]
    main_job = prom.scrape_job(main)
    assert (job["job_name"], job["metrics_path"]) == (main_job["job_name"], main_job["metrics_path"])
    assert job["metrics_path"] == METRICS_PATH
    assert config["global"] == main["global"]
    assert [(PROMETHEUS_CONFIG.parent / p).resolve() for p in config["rule_files"]] == \
        [(prom.MONITORING_DIR / p).resolve() for p in main["rule_files"]]


def test_pod_annotations_agree_with_the_job_and_the_server() -> None:
    annotations = resources()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT),
                           "prometheus.io/path": METRICS_PATH}
    job = prom.scrape_job(prometheus_config())
    keep = job["relabel_configs"][0]
    pods = {"pod": {"grpc": "127.0.0.1:1", "http": "127.0.0.1:2"}}
    labels = pod_targets(resources()["Deployment"], pods)[0]["labels"]
    assert keep["action"] == "keep"
    assert re.fullmatch(keep["regex"], ";".join(labels[name] for name in keep["source_labels"]))


def test_rbac_lets_the_prometheus_account_watch_pods_in_its_namespace() -> None:
    objects = {doc["kind"]: doc for doc in load_all(RBAC)}
    assert set(objects) == {"ServiceAccount", "Role", "RoleBinding"}  # namespaced: no cluster-wide access
    (rule,) = objects["Role"]["rules"]
    assert rule["apiGroups"] == [""] and rule["resources"] == ["pods"] and {"list", "watch"} <= set(rule["verbs"])
    binding = objects["RoleBinding"]
    assert binding["roleRef"]["name"] == objects["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": objects["ServiceAccount"]["metadata"]["name"]}]


def deployment_and_service(path: Path) -> tuple[dict, dict]:
    objects = {doc["kind"]: doc for doc in load_all(path)}
    assert set(objects) == {"Deployment", "Service"}, path
    return objects["Deployment"], objects["Service"]


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_pushgateway_and_alertmanager_manifests_match_the_kubernetes_schema(version: str) -> None:
    for path in (PUSHGATEWAY, ALERTMANAGER):
        for doc in load_all(path):
            kubernetes_validate.validate(doc, version, strict=True)  # raises on any error or unknown field


@pytest.mark.parametrize("path, port, service", [(PUSHGATEWAY, PUSHGATEWAY_PORT, "pushgateway"),
                                                 (ALERTMANAGER, ALERTMANAGER_PORT, "alertmanager")])
def test_each_alerting_service_reaches_its_pod_on_the_shared_port_with_the_compose_image(
        path: Path, port: int, service: str) -> None:
    deployment, svc = deployment_and_service(path)
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    (container,) = template["spec"]["containers"]
    (container_port,) = container["ports"]
    (service_port,) = svc["spec"]["ports"]
    assert container_port["containerPort"] == service_port["port"] == port
    assert service_port["targetPort"] == container_port["name"] == container["readinessProbe"]["httpGet"]["port"]
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]
    assert container["image"] == compose[service]["image"]  # one pinned version per component
    # No model-server labels: the churn-model job's pod discovery must not pick these pods.
    assert labels.get("app.kubernetes.io/component") != "model-server"


def test_prometheus_scrapes_the_pushgateway_service_and_alerts_the_alertmanager_service_like_make_serve() -> None:
    config = prometheus_config()
    (_, pushgateway), (_, alertmanager) = deployment_and_service(PUSHGATEWAY), deployment_and_service(ALERTMANAGER)
    pushgateway_target = f"{pushgateway['metadata']['name']}:{pushgateway['spec']['ports'][0]['port']}"
    alertmanager_target = f"{alertmanager['metadata']['name']}:{alertmanager['spec']['ports'][0]['port']}"
    expected = alerting.with_alerting(config | {"scrape_configs": [prom.scrape_job(config)]}, pushgateway_target,
                                      alertmanager_target)
    assert config["scrape_configs"] == expected["scrape_configs"]  # honor_labels, job churn-batch
    assert config["alerting"] == expected["alerting"]
    assert any(Path(p).name == alerting.QUALITY_RULES.name for p in config["rule_files"])


def test_alertmanager_runs_the_committed_routes_from_its_configmap() -> None:
    deployment, _ = deployment_and_service(ALERTMANAGER)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config_flag = next(a for a in container["args"] if a.startswith("--config.file="))
    config_path = Path(config_flag.split("=", 1)[1])
    assert config_path.name == alerting.ALERTMANAGER_CONFIG.name  # the ConfigMap key `--from-file` gives
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = volumes[mounts[str(config_path.parent)]]["configMap"]["name"]
    command = f"kubectl create configmap {config_map} --from-file=monitoring/{config_path.name}"
    assert command in ALERTMANAGER.read_text()
    storage = next(a for a in container["args"] if a.startswith("--storage.path=")).split("=", 1)[1]
    assert "emptyDir" in volumes[mounts[storage]]
    checked = subprocess.run([require_package_binary("amtool"), "check-config", str(alerting.ALERTMANAGER_CONFIG)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
