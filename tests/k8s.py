"""The Kubernetes manifests (serving/kubernetes/) and the Prometheus config that scrapes their pods
(monitoring/kubernetes/prometheus.yml), read for tests.

No cluster runs here, so pod discovery is played by file_sd: `pod_targets` writes, for each pod, one
target per declared container port with the `__meta_kubernetes_*` labels Prometheus' pod discovery
gives it, taken from the Deployment's pod template. The job's own relabelling then has to pick the
REST port of each model-server pod, exactly as in a cluster.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from common.facts import PROJECT_ROOT
from monitoring.prometheus import MONITORING_DIR, scrape_job

MANIFEST_DIR = PROJECT_ROOT / "serving" / "kubernetes"
KUSTOMIZATION = MANIFEST_DIR / "kustomization.yaml"
PROMETHEUS_CONFIG = MONITORING_DIR / "kubernetes" / "prometheus.yml"
RBAC = MONITORING_DIR / "kubernetes" / "rbac.yaml"
PUSHGATEWAY = MONITORING_DIR / "kubernetes" / "pushgateway.yaml"
ALERTMANAGER = MONITORING_DIR / "kubernetes" / "alertmanager.yaml"


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources() -> dict[str, dict[str, Any]]:
    """Kind -> the one object of that kind, over every file kustomization.yaml lists."""
    found: dict[str, dict[str, Any]] = {}
    for name in yaml.safe_load(KUSTOMIZATION.read_text())["resources"]:
        for doc in load_all(MANIFEST_DIR / name):
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


def model_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _meta_name(name: str) -> str:
    """A Kubernetes label or annotation name as Prometheus spells it in meta labels."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_targets(deployment: Mapping[str, Any], pods: Mapping[str, Mapping[str, str]],
                namespace: str = "default", phase: str = "Running") -> list[dict[str, Any]]:
    """file_sd target groups for pods of `deployment`'s template: pod name -> {port name: host:port}."""
    template = deployment["spec"]["template"]
    container = model_container(deployment)
    pod_labels = {f"__meta_kubernetes_pod_label_{_meta_name(k)}": v for k, v in template["metadata"]["labels"].items()}
    pod_labels.update({f"__meta_kubernetes_pod_annotation_{_meta_name(k)}": v
                       for k, v in template["metadata"].get("annotations", {}).items()})
    groups = []
    for pod, addresses in pods.items():
        for port in container["ports"]:
            groups.append({"targets": [addresses[port["name"]]], "labels": {
                **pod_labels,
                "__meta_kubernetes_namespace": namespace,
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_phase": phase,
                "__meta_kubernetes_pod_ready": "true",
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_port_name": port["name"],
                "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP"),
            }})
    return groups


def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_CONFIG.read_text())


def file_sd_variant(targets_file: Path, scrape_interval: str | None = None, alerting: bool = True) -> dict[str, Any]:
    """The Kubernetes Prometheus config with pod discovery replaced by `targets_file` (file_sd) and
    absolute rule paths: everything else, relabelling included, unchanged. `alerting` False: without the
    Pushgateway job and the Alertmanager (whose Service names resolve only in the cluster)."""
    config = prometheus_config()
    job = scrape_job(config)
    if not alerting:
        config["scrape_configs"] = [job]
        config.pop("alerting", None)
    job.pop("kubernetes_sd_configs")
    job["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "1s"}]
    config["rule_files"] = [str((PROMETHEUS_CONFIG.parent / path).resolve()) for path in config["rule_files"]]
    if scrape_interval:
        config["global"] = {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
    return config
