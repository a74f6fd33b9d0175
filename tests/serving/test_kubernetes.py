"""serving/kubernetes/ (and the Prometheus RBAC beside monitoring/kubernetes/prometheus.yml): checked offline
against the upstream Kubernetes JSON schemas that `kubernetes-validate` bundles, strictly (unknown fields
fail), and against the files they repeat: the Docker image's flags, the shipped configs, railway.json."""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common.facts import CONTAINER_MODEL_ROOT, GRPC_PORT, MODEL_NAME, PROJECT_ROOT, REST_PORT
from tests.k8s import KUSTOMIZATION, MANIFEST_DIR, RBAC, load_all, model_container, resources

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"
# An older minor (every API used here went GA well before it) and the newest one the package bundles.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def manifest_files() -> list[Path]:
    return [MANIFEST_DIR / name for name in yaml.safe_load(KUSTOMIZATION.read_text())["resources"]] + [RBAC]


def docker_flags() -> list[str]:
    """The tensorflow_model_server flags of the root Dockerfile's ENTRYPOINT, with $PORT at its default."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, flags=re.MULTILINE)
    shell = json.loads(entrypoint)[2]
    return [flag.replace("${PORT:-8501}", str(REST_PORT)) for flag in re.findall(r'--\w+=[^\s"]+', shell)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_matches_the_kubernetes_schema(version: str) -> None:
    checked = []
    for path in manifest_files():
        for doc in load_all(path):
            kubernetes_validate.validate(doc, version, strict=True)  # raises on any error or unknown kind
            checked.append(f"{path.name}:{doc['kind']}")
    assert len(checked) == 8, checked  # ConfigMap, Deployment, PDB, PVC, Service; ServiceAccount, Role, RoleBinding


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value
    return change


@pytest.mark.parametrize("change", [
    _set("spec.replicas", "three"),
    _set("spec.template.spec.containers.0.ports.0.containerPort", "8500"),
    _set("spec.template.spec.containers.0.imagePullPolcy", "Always"),  # a typo: unknown field
    _set("spec.template.spec.containers.0.readinessProbe.httpget", {"path": "/"}),
    _set("spec.strategy.rollingUpdate", [0]),
    lambda doc: doc["spec"].pop("selector"),
], ids=["replicas-string", "port-string", "unknown-field", "probe-typo", "rolling-update-list", "no-selector"])
def test_a_broken_deployment_is_rejected(change: Callable[[dict[str, Any]], None]) -> None:
    broken = copy.deepcopy(resources()["Deployment"])
    change(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load(KUSTOMIZATION.read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in MANIFEST_DIR.glob("*.yaml") if p != KUSTOMIZATION)
    assert set(resources()) == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Service"}


def test_configmap_carries_the_shipped_configs_and_is_mounted_where_the_flags_say() -> None:
    objects = resources()
    data = objects["ConfigMap"]["data"]
    assert data == {name: (CONFIG_DIR / name).read_text() for name in ("models.config", "monitoring.config")}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    mounts = {m["name"]: m for m in model_container(objects["Deployment"])["volumeMounts"]}
    flags = dict(flag.split("=", 1) for flag in model_container(objects["Deployment"])["args"])
    for flag, name in (("--model_config_file", "models.config"), ("--monitoring_config_file", "monitoring.config")):
        assert flags[flag] == f"{mounts[volume['name']]['mountPath']}/{name}"


def test_deployment_runs_the_docker_image_server_with_the_same_flags() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    container = model_container(resources()["Deployment"])
    assert f"FROM {container['image']}" in dockerfile.splitlines()
    assert container["command"] == ["tensorflow_model_server"]
    assert container["args"] == docker_flags()
    flags = dict(flag.split("=", 1) for flag in container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": int(flags["--port"]), "http": int(flags["--rest_api_port"])} == \
        {"grpc": GRPC_PORT, "http": REST_PORT}


def test_probes_use_the_railway_health_check_on_the_rest_port() -> None:
    container = model_container(resources()["Deployment"])
    health = json.loads((PROJECT_ROOT / "railway.json").read_text())["deploy"]["healthcheckPath"]
    assert health == f"/v1/models/{MODEL_NAME}"
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": health, "port": "http"}, probe
    assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def test_replicas_roll_out_without_losing_capacity() -> None:
    objects = resources()
    deployment, service, pdb = objects["Deployment"], objects["Service"], objects["PodDisruptionBudget"]
    assert deployment["spec"]["replicas"] > 1
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector == pdb["spec"]["selector"]["matchLabels"]
    assert 0 < pdb["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]
    container_ports = {p["name"]: p["containerPort"] for p in model_container(deployment)["ports"]}
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        name: (number, name) for name, number in container_ports.items()}


def test_model_store_is_one_shared_read_only_volume_holding_the_config_base_path() -> None:
    objects = resources()
    claim = objects["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"], "readOnly": True}
    (mount,) = [m for m in model_container(objects["Deployment"])["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": CONTAINER_MODEL_ROOT, "readOnly": True}
    config = text_format.Parse(objects["ConfigMap"]["data"]["models.config"],
                               model_server_config_pb2.ModelServerConfig())
    assert [m.base_path for m in config.model_config_list.config] == [f"{CONTAINER_MODEL_ROOT}/{MODEL_NAME}"]
