"""Three replicas behind one Prometheus, as on Kubernetes, with real processes on free ports.

Each replica is `python -m serving` started with the Deployment's flags (serving/kubernetes/deployment.yaml)
on the same model folder and the ConfigMap's files, so nothing but the ports tells them apart. Prometheus
runs monitoring/kubernetes/prometheus.yml with pod discovery played by file_sd (tests/k8s.py): every pod's
gRPC and REST ports, plus pods the job must ignore. Known, different numbers of OK and INVALID_ARGUMENT
requests per replica must come back as one series per replica (its pod name in `instance` and `pod`),
and `sum by (status)` as the totals.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from common.facts import MODEL_NAME, PROJECT_ROOT
from deploy.local_config import localize
from monitoring import prometheus as prom
from tests.helpers import free_port
from tests.k8s import file_sd_variant, model_container, pod_targets, resources
from tests.monitoring.conftest import require
from tests.monitoring.models import instances
from tests.serving.http_util import get, post

pytestmark = pytest.mark.e2e

NAMESPACE = "churn"
# Pod name -> requests sent to that replica: different everywhere, and one replica with no errors.
SENT: dict[str, dict[str, int]] = {
    "customer-model-5f7d8c9b6-2xkqp": {"OK": 3, "INVALID_ARGUMENT": 1},
    "customer-model-5f7d8c9b6-9mzrt": {"OK": 1, "INVALID_ARGUMENT": 2},
    "customer-model-5f7d8c9b6-tw4hv": {"OK": 2, "INVALID_ARGUMENT": 0},
}
READINESS_OK = 1
"""The fixture's readiness check (the Deployment's probe, once per replica) is a status GET, which TF
Serving counts in request_count as OK, as it counts the kubelet's probes."""
T = TypeVar("T")


@dataclass
class Replica:
    pod: str
    process: subprocess.Popen
    grpc_port: int
    rest_port: int
    log: Path


@dataclass
class Cluster:
    replicas: list[Replica]
    prometheus: subprocess.Popen
    prometheus_port: int
    prometheus_log: Path

    def logs(self) -> str:
        tails = [f"--- {r.pod}:\n{r.log.read_text(errors='replace')[-1500:]}" for r in self.replicas]
        return "\n".join(tails + [f"--- prometheus:\n{self.prometheus_log.read_text(errors='replace')[-1500:]}"])

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]


def wait_for(probe: Callable[[], T | None], what: str, processes: list[subprocess.Popen],
             logs: Callable[[], str], timeout: float) -> T:
    """Polls until `probe` returns something other than None; fails early when a process exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if any(p.poll() is not None for p in processes):
            pytest.fail(f"a process exited waiting for {what}:\n{logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{logs()}")
        time.sleep(0.25)


def replica_args(args: list[str], config_mount: str, config_dir: Path, grpc_port: int, rest_port: int) -> list[str]:
    """The Deployment's container args with this replica's ports and the ConfigMap's local copy."""
    ports = {"--port": grpc_port, "--rest_api_port": rest_port}
    out = []
    for arg in args:
        name = arg.split("=", 1)[0]
        out.append(f"{name}={ports[name]}" if name in ports else arg.replace(config_mount, str(config_dir)))
    return out


def _ready(port: int, path: str) -> bool | None:
    try:
        return True if get(port, path)[0] == 200 else None
    except OSError:
        return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, model_base: Path) -> Iterator[Cluster]:
    binary = require("prometheus")
    tmp = tmp_path_factory.mktemp("replicas")
    objects = resources()
    deployment = objects["Deployment"]
    container = model_container(deployment)
    (config_mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config"]
    # The ConfigMap as the kubelet mounts it; /models (the shared volume) is the test model's folder.
    config_dir = tmp / "srv-config"
    config_dir.mkdir()
    for name, text in objects["ConfigMap"]["data"].items():
        (config_dir / name).write_text(localize(text, model_base.parent) if name == "models.config" else text)
    readiness = container["readinessProbe"]["httpGet"]["path"]

    replicas: list[Replica] = []
    processes: list[subprocess.Popen] = []
    prometheus_log = tmp / "prometheus.log"
    try:
        for pod in SENT:
            grpc_port, rest_port = free_port(), free_port()
            log = tmp / f"{pod}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "serving",
                     *replica_args(container["args"], config_mount, config_dir, grpc_port, rest_port)],
                    cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
            processes.append(process)
            replicas.append(Replica(pod, process, grpc_port, rest_port, log))

        # Pod discovery: the replicas' ports, plus a pod of another app and a finished model-server pod
        # (both pointing at a live replica), which the job's relabelling must drop.
        pods = {r.pod: {"grpc": f"127.0.0.1:{r.grpc_port}", "http": f"127.0.0.1:{r.rest_port}"} for r in replicas}
        targets = pod_targets(deployment, pods, NAMESPACE)
        other_app = copy.deepcopy(deployment)
        other_app["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "other-app"
        live = {"grpc": f"127.0.0.1:{replicas[0].grpc_port}", "http": f"127.0.0.1:{replicas[0].rest_port}"}
        targets += pod_targets(other_app, {"other-app-6c9d4f7b5-qq8zx": live}, NAMESPACE)
        targets += pod_targets(deployment, {"customer-model-5f7d8c9b6-done1": live}, NAMESPACE, phase="Succeeded")
        (tmp / "pods.json").write_text(json.dumps(targets, indent=1))
        config_path = tmp / "prometheus.yml"
        config = file_sd_variant(tmp / "pods.json", "1s", alerting=False)  # no Pushgateway/Alertmanager here
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        prometheus_port = free_port()
        with prometheus_log.open("wb") as out:
            prometheus = subprocess.Popen(prom.command(binary, config_path, tmp, port=prometheus_port),
                                          stdout=out, stderr=subprocess.STDOUT)
        processes.append(prometheus)
        cluster = Cluster(replicas, prometheus, prometheus_port, prometheus_log)

        for replica in replicas:
            wait_for(lambda replica=replica: _ready(replica.rest_port, readiness), f"{replica.pod} to be ready",
                     processes, cluster.logs, timeout=120)
        wait_for(lambda: True if len(cluster.query("up == 1")) == len(replicas) else None,
                 "Prometheus to scrape every replica", processes, cluster.logs, timeout=30)
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)


def _send(port: int, counts: dict[str, int], seed: int) -> None:
    for i in range(counts["OK"]):
        assert post(port, f"/v1/models/{MODEL_NAME}:predict", {"instances": instances(2, seed=seed + i)})[0] == 200
    for _ in range(counts["INVALID_ARGUMENT"]):
        assert post(port, f"/v1/models/{MODEL_NAME}:predict", {"instances": [{"Age": "thirty"}]})[0] == 400


def _per_replica(cluster: Cluster) -> dict[tuple[str, str], float]:
    return {(r["metric"]["instance"], r["metric"]["status"]): float(r["value"][1])
            for r in cluster.query(":tensorflow:serving:request_count")}


def test_every_replica_is_one_target_named_after_its_pod(cluster: Cluster) -> None:
    up = cluster.query("up")
    assert sorted((r["metric"]["instance"], r["metric"]["pod"], r["value"][1]) for r in up) == \
        sorted((pod, pod, "1") for pod in SENT)  # no gRPC port, no other app, no finished pod
    assert {(r["metric"]["job"], r["metric"]["namespace"]) for r in up} == {(prom.job_name(), NAMESPACE)}


def test_request_counts_are_per_replica_and_add_up(cluster: Cluster) -> None:
    for seed, replica in enumerate(cluster.replicas):
        _send(replica.rest_port, SENT[replica.pod], seed=100 * seed)
    expected = {(pod, status): float(n + (READINESS_OK if status == "OK" else 0))
                for pod, counts in SENT.items() for status, n in counts.items() if n}
    wait_for(lambda: True if _per_replica(cluster) == expected else None, "every request in Prometheus",
             [cluster.prometheus], cluster.logs, timeout=20)
    series = cluster.query(":tensorflow:serving:request_count")
    assert {r["metric"]["model_name"] for r in series} == {MODEL_NAME}
    assert all(r["metric"]["pod"] == r["metric"]["instance"] for r in series)
    totals = {r["metric"]["status"]: float(r["value"][1])
              for r in cluster.query("sum by (status) (:tensorflow:serving:request_count)")}
    assert totals == {"OK": 6.0 + READINESS_OK * len(SENT), "INVALID_ARGUMENT": 3.0}
