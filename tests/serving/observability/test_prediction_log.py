"""`serving/observability/prediction_log.py`: `--prediction_store_url` appends each predicted row of a signature
carrying ids to a real prediction store (SQLite, and PostgreSQL), from a real server over REST and gRPC; a full
queue drops and counts, a store that cannot be written costs rows, never requests."""
from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from common.facts import GRPC_SOURCE, PROJECT_ROOT, REST_SOURCE
from modules.features import CLASS_OUTPUT, ID_KEYS, PROBABILITY_OUTPUT
from modules.signatures import WITH_IDS_SIGNATURE
from monitoring.prediction_store import PredictionStore, period_of
from serving.core.manager import ModelConfig
from serving.core.servable import Servable
from serving.core.types import ServableId
from serving.observability.model_metrics import PREDICTION_STORE_ROWS
from serving.observability.prediction_log import PredictionLog, id_output
from tests.helpers import free_port
from tests.monitoring.postgres import postgres_server
from tests.serving.conftest import ServerFactory
from tests.serving.http_util import get, post, wait_for
from tests.serving.models import CHURN_FEATURES, WITH_IDS_THRESHOLD, build_churn_with_ids_model

MODEL = "m"
VERSION = 4
ID = ID_KEYS[0]
CUSTOMERS = [{"Age": 30, "Gender": "Male", "Annual_Income": 50.0, "Total_Spend": 900.0},
             {"Age": 70, "Gender": "Female", "Annual_Income": 20.0, "Total_Spend": 100.0}]
FLAGS = (f"--observed_output={PROBABILITY_OUTPUT}",)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<tmp>/m/4/`: the churn-like model with `serving_with_ids` and a stored threshold of 0.3."""
    root = tmp_path_factory.mktemp("with-ids") / MODEL
    build_churn_with_ids_model(root / str(VERSION))
    return root


def with_ids(ids: list[int]) -> dict:
    rows = [dict(c, **{ID: i}) for c, i in zip(CUSTOMERS[:len(ids)], ids, strict=True)]
    return {"signature_name": WITH_IDS_SIGNATURE, "instances": rows}


def grpc_predict(port: int, ids: list[int]) -> dict[str, list]:
    """`serving_with_ids` through the official TF Serving stubs."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, WITH_IDS_SIGNATURE
    for key, dtype in CHURN_FEATURES.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto([c[key] for c in CUSTOMERS[:len(ids)]], dtype=dtype))
    request.inputs[ID].CopyFrom(tf.make_tensor_proto(np.array(ids, np.int64)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    return {k: tf.make_ndarray(v).tolist() for k, v in reply.outputs.items()}


def stored(url: str) -> list[dict]:
    with PredictionStore(url) as store:
        return sorted(store.read().to_dict("records"), key=lambda r: r["customer_id"])


def store_rows_metric(port: int, outcome: str) -> float:
    body = get(port, "/monitoring/prometheus/metrics")[2].decode()
    found = re.search(rf'^{PREDICTION_STORE_ROWS}\{{model_name="{MODEL}",outcome="{outcome}"\}} (\S+)$',
                      body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_server_process_records_rest_and_grpc_predictions_with_their_ids(base: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    rest, grpc_port = free_port(), free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving", f"--model_base_path={base}", f"--model_name={MODEL}",
             f"--port={grpc_port}", f"--rest_api_port={rest}", *FLAGS, f"--prediction_store_url={url}",
             f"--monitoring_config_file={PROJECT_ROOT / 'serving' / 'config' / 'monitoring.config'}"],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "Exporting HTTP/REST API" in log_path.read_text() or process.poll() is not None, 120)
        assert process.poll() is None, log_path.read_text()
        before = datetime.now(timezone.utc).replace(tzinfo=None)
        status, _, body = post(rest, f"/v1/models/{MODEL}:predict", with_ids([101, 102]))
        assert status == 200, body
        assert post(rest, f"/v1/models/{MODEL}:predict", {"instances": CUSTOMERS})[0] == 200  # no ids: not kept
        assert grpc_predict(grpc_port, [201])[ID] == [201]
        wait_for(lambda: store_rows_metric(rest, "written") == 3, 30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log_path.read_text()
    rows = stored(url)
    assert [(r["customer_id"], r["source"], r["signature"], r["model_version"]) for r in rows] == [
        ("101", REST_SOURCE, WITH_IDS_SIGNATURE, VERSION), ("102", REST_SOURCE, WITH_IDS_SIGNATURE, VERSION),
        ("201", GRPC_SOURCE, WITH_IDS_SIGNATURE, VERSION)]
    probabilities = [1 / (1 + np.exp(-(c["Age"] - 44.0) / 8.0)) for c in CUSTOMERS]
    np.testing.assert_allclose([r["probability"] for r in rows], [*probabilities, probabilities[0]], rtol=1e-6)
    assert {r["threshold"] for r in rows} == {WITH_IDS_THRESHOLD}  # read from the version's threshold.json
    assert [r["decision"] for r in rows] == [int(p >= WITH_IDS_THRESHOLD) for p in [*probabilities, probabilities[0]]]
    assert all(before - timedelta(seconds=1) <= r["scored_at"] <= datetime.now(timezone.utc).replace(tzinfo=None)
               for r in rows)
    assert {r["period"] for r in rows} == {period_of(before)}


def test_rest_answer_carries_the_ids_back_with_the_prediction(base: Path, tmp_path: Path,
                                                              server_factory: ServerFactory) -> None:
    server = server_factory((ModelConfig(MODEL, base),), observed_output=PROBABILITY_OUTPUT)
    status, _, body = post(server.rest_port, f"/v1/models/{MODEL}:predict", with_ids([7, 8]))
    assert status == 200
    rows = json.loads(body)["predictions"]
    assert [r[ID] for r in rows] == [7, 8] and all({PROBABILITY_OUTPUT, CLASS_OUTPUT, ID} == set(r) for r in rows)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from postgres_server()


def test_replicas_share_a_postgresql_store(base: Path, postgres_url: str, server_factory: ServerFactory) -> None:
    servers = [server_factory((ModelConfig(MODEL, base),), CollectorRegistry(), observed_output=PROBABILITY_OUTPUT,
                              prediction_store_url=postgres_url) for _ in range(2)]
    assert post(servers[0].rest_port, f"/v1/models/{MODEL}:predict", with_ids([1, 2]))[0] == 200
    assert grpc_predict(servers[1].grpc_port, [3])[ID] == [3]
    wait_for(lambda: [store_rows_metric(s.rest_port, "written") for s in servers] == [2, 1], 30)
    rows = stored(postgres_url)
    assert [(r["customer_id"], r["source"]) for r in rows] == [("1", REST_SOURCE), ("2", REST_SOURCE),
                                                              ("3", GRPC_SOURCE)]


def test_a_store_that_cannot_be_written_costs_rows_never_requests(base: Path, tmp_path: Path,
                                                                  server_factory: ServerFactory) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    server = server_factory((ModelConfig(MODEL, base),), observed_output=PROBABILITY_OUTPUT,
                            prediction_store_url=f"sqlite:///{blocker / 'predictions.sqlite'}")
    for ids in ([1, 2], [3, 4]):
        assert post(server.rest_port, f"/v1/models/{MODEL}:predict", with_ids(ids))[0] == 200
    wait_for(lambda: store_rows_metric(server.rest_port, "failed") == 4, 30)
    assert store_rows_metric(server.rest_port, "written") == 0


def test_a_full_queue_drops_and_counts_while_the_store_is_locked(base: Path, tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    PredictionStore(f"sqlite:///{path}").close()  # the table exists
    servable = Servable.load(ServableId(MODEL, VERSION), base / str(VERSION))
    signature = servable.signatures[WITH_IDS_SIGNATURE]
    outputs = {PROBABILITY_OUTPUT: np.array([0.2, 0.9], np.float32), ID: np.array([5, 6])}
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database: inserts wait, then fail
    log = PredictionLog(f"sqlite:///{path}", PROBABILITY_OUTPUT, max_pending=1)
    counted: list[tuple[str, str, int]] = []
    log.on_rows = lambda *row: counted.append(row)
    try:
        started = time.monotonic()
        for source in (REST_SOURCE, GRPC_SOURCE, REST_SOURCE):  # the writer waits on the lock: one queued at most
            log.submit(ServableId(MODEL, VERSION), servable.path, signature, outputs, source)
        assert time.monotonic() - started < 0.5  # never waits for the store
        assert [(m, outcome) for m, outcome, _ in counted][:1] == [(MODEL, "dropped")]
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.close(timeout=30)
    written = sum(n for _, outcome, n in counted if outcome == "written")
    failed = sum(n for _, outcome, n in counted if outcome == "failed")
    dropped = sum(n for _, outcome, n in counted if outcome == "dropped")
    assert dropped in (2, 4) and written + failed + dropped == 6 and len(stored(f"sqlite:///{path}")) == written
    servable.retire()


def test_id_output_is_the_named_output_or_the_one_echoed_input(base: Path) -> None:
    servable = Servable.load(ServableId(MODEL, VERSION), base / str(VERSION))
    try:
        assert id_output(servable.signatures[WITH_IDS_SIGNATURE], None) == ID
        assert id_output(servable.signatures["serving_default"], None) is None
        assert id_output(servable.signatures[WITH_IDS_SIGNATURE], CLASS_OUTPUT) == CLASS_OUTPUT
        assert id_output(servable.signatures["serving_default"], ID) is None
    finally:
        servable.retire()
