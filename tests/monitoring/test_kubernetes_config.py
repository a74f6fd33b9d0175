"""monitoring/kubernetes/prometheus.yml: the main config's job, metrics path, intervals and rules, with one
target per model-server pod; checked with promtool, against the main config and against the pods."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from common.facts import METRICS_PATH, REST_PORT
from monitoring import prometheus as prom
from tests.k8s import PROMETHEUS_CONFIG, RBAC, file_sd_variant, load_all, pod_targets, prometheus_config, resources
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
    (job,) = config["scrape_configs"]
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
    (job,) = prometheus_config()["scrape_configs"]
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
