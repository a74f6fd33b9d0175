"""Client CLI, property-based fuzzing of request bodies, and dynamic batching."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from client.tf_serving import main as client_main
from common.facts import PROJECT_ROOT
from serving.core.batching import QUEUE_FULL_MESSAGE, BatchingOptions, BatchScheduler
from serving.core.errors import UnavailableError
from serving.core.manager import ModelConfig
from serving.core.servable import Servable
from serving.core.types import ServableId
from serving.observability.metrics import PROCESSED_BATCH_SIZE, ServingMetrics, exported_name
from tests.helpers import free_port
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import call, error_of, get, post


def test_client_server_down_is_clear_error(capsys: pytest.CaptureFixture) -> None:
    assert client_main(["--port", str(free_port()), "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot reach the model server") and "Traceback" not in err
    assert client_main(["--grpc", "--port", str(free_port()), "--timeout", "2", "status"]) == 1
    assert "Cannot reach the model server" in capsys.readouterr().err


def test_client_predict_csv_and_json(tmp_path: Path, model_store: Path, server_factory: ServerFactory,
                                     capsys: pytest.CaptureFixture) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),))
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("Customer_ID,x,Target_Churn\n7,2.0,1\n8,4,0\n")
    args = ["--model", "m", "--port", str(server.rest_port), "predict", "--csv", str(csv_path)]
    assert client_main(args) == 0
    assert capsys.readouterr().out.splitlines() == ["customer 7: churn probability 3.0",
                                                    "customer 8: churn probability 4.0"]
    grpc_args = ["--grpc", "--model", "m", "--port", str(server.grpc_port), "predict", "--json", '{"x": 2}']
    assert client_main(grpc_args) == 0
    assert capsys.readouterr().out.strip() == "customer 1: churn probability 3.0"
    assert client_main(["--model", "zz", "--port", str(server.rest_port), "status"]) == 1
    assert "HTTP 404: Could not find any versions of model zz" in capsys.readouterr().err


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={
        "instances": json_values, "inputs": json_values, "signature_name": st.sampled_from(
            ["serving_default", "churn", "bytes", "nope", 3]), "examples": json_values,
        "context": json_values}).map(lambda v: json.dumps(v).encode()),
)
PATHS = ["/v1/models/half:predict", "/v1/models/tf1:predict", "/v1/models/tf1:classify",
         "/v1/models/tf1:regress", "/v1/models/half/versions/123:predict", "/v1/models/half/labels/stable:predict"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(PATHS))
def test_fuzzed_bodies_never_get_5xx(served, body: bytes, path: str) -> None:  # type: ignore[no-untyped-def]
    status, headers, reply = post(served.rest_port, path, body)
    assert status < 500 or status == 501, (status, reply)
    if status != 200:
        error_of((status, headers, reply))
    assert get(served.rest_port, "/v1/models/half")[0] == 200


@pytest.mark.e2e
def test_fuzz_counts_stay_right(tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),), CollectorRegistry())
    sent: dict = {}

    @settings(max_examples=60, deadline=None)
    @given(body=bodies)
    def send(body: bytes) -> None:
        status = post(server.rest_port, "/v1/models/m:predict", body)[0]
        sent[status] = sent.get(status, 0) + 1

    send()
    text = get(server.rest_port, "/monitoring/prometheus/metrics")[2].decode()
    counted = sum(int(n) for n in re.findall(r'request_count\{model_name="m",status="\w+"\} (\d+)', text))
    assert counted == sum(sent.values())
    assert f'status="OK"}} {sent.get(200, 0)}' in text or 200 not in sent


def test_batching_gives_same_answers_under_concurrency(tmp_path: Path, model_store: Path,
                                                       server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    options = BatchingOptions(max_batch_size=16, batch_timeout_micros=2000, num_batch_threads=1)
    server = server_factory((ModelConfig("m", base),), batching=options)
    errors: list = []

    def worker(value: float) -> None:
        for _ in range(20):
            status, _, body = post(server.rest_port, "/v1/models/m:predict", {"instances": [value, value]})
            if status != 200 or json.loads(body)["predictions"] != [value / 2 + 2] * 2:
                errors.append((status, body))

    threads = [threading.Thread(target=worker, args=(float(i),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    text = get(server.rest_port, "/monitoring/prometheus/metrics")[2].decode()
    assert "batching_session:processed_batch_size_count" in text
    reply = post(server.rest_port, "/v1/models/m:predict", {"instances": [1.0] * 17})
    assert error_of(reply) == "Task size 17 is larger than maximum input batch size 16"


def test_batching_queue_full_is_503(tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> None:
    install(model_store, "tf1", tmp_path / "m", 1)
    options = BatchingOptions(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1)
    server = server_factory((ModelConfig("m", tmp_path / "m"),), batching=options, rest_timeout_ms=1500)
    blocking = {"signature_name": "blocking", "instances": [[1.0]]}
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(post(server.rest_port, "/v1/models/m:predict",
                                                                   blocking))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert 503 in statuses
    assert any(error_of(r) == QUEUE_FULL_MESSAGE for r in results if r[0] == 503)


@pytest.mark.e2e
def test_python_m_serving_end_to_end(tmp_path: Path, model_store: Path) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
    rest, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving", f"--model_base_path={tmp_path / 'm'}", "--model_name=m",
         f"--port={grpc_port}", f"--rest_api_port={rest}", f"--monitoring_config_file={monitoring}"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "Exporting HTTP/REST API at" in line:
                break
        reply = post(rest, "/v1/models/m:predict", {"instances": [1.0, 2.0, 5.0]})
        assert reply[2] == b'{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}'
        assert call(rest, "GET", "/metrics")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def _scheduler_and_signature(model_store: Path, options: BatchingOptions):  # type: ignore[no-untyped-def]
    """A real `BatchScheduler` and the tf1 model's `serving_default` (x [-1, 1] -> y = 0.5 x + 2)."""
    servable = Servable.load(ServableId("m", 1), model_store / "tf1")
    metrics = ServingMetrics(CollectorRegistry())
    return BatchScheduler(options, metrics), servable, metrics


def _submit_in_one_loop_turn(scheduler: BatchScheduler, signature, count: int,  # type: ignore[no-untyped-def]
                             pause_after_first: float = 0.0) -> list:
    """Submits `count` one-row requests from one event-loop callback; their (outputs, error)."""
    async def run() -> list:
        loop = asyncio.get_running_loop()
        results: list = []
        finished = loop.create_future()

        def done(outputs, error) -> None:  # type: ignore[no-untyped-def]
            results.append((outputs, error))
            if len(results) == count:
                loop.call_soon_threadsafe(finished.set_result, None)

        def turn() -> None:
            for i in range(count):
                scheduler.submit(signature, {"x": np.array([[float(i)]], np.float32)}, 5000, done)
                if i == 0 and pause_after_first:
                    time.sleep(pause_after_first)  # lets a batch thread run, as a socket call would

        loop.call_soon(turn)
        await asyncio.wait_for(finished, 30)
        return results

    return asyncio.run(run())


def test_one_loop_turn_is_one_batch(model_store: Path) -> None:
    """Requests submitted in one event-loop turn reach the batch thread together (issue 14:
    batches no smaller than the loop's turns), even when the loop lets the thread run mid-turn."""
    scheduler, servable, metrics = _scheduler_and_signature(
        model_store, BatchingOptions(max_batch_size=64, num_batch_threads=1))
    try:
        results = _submit_in_one_loop_turn(scheduler, servable.signatures["serving_default"], 8,
                                           pause_after_first=0.2)
    finally:
        scheduler.shutdown()
    assert all(error is None for _, error in results)
    assert sorted(float(out["y"][0, 0]) for out, _ in results) == [0.5 * i + 2.0 for i in range(8)]
    name = exported_name(PROCESSED_BATCH_SIZE)
    assert metrics.registry.get_sample_value(f"{name}_count") == 1
    assert metrics.registry.get_sample_value(f"{name}_sum") == pytest.approx(8)


def test_queue_full_in_a_loop_turn_answers_that_request(model_store: Path) -> None:
    """On the event loop a full queue is the refused request's own UNAVAILABLE answer (TF
    Serving's message), not an exception from `submit`; the accepted request is answered."""
    scheduler, servable, _ = _scheduler_and_signature(
        model_store, BatchingOptions(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1))
    try:
        results = _submit_in_one_loop_turn(scheduler, servable.signatures["serving_default"], 3)
    finally:
        scheduler.shutdown()
    errors = [error for _, error in results if error is not None]
    assert len(errors) == 2
    assert all(isinstance(e, UnavailableError) and e.message == QUEUE_FULL_MESSAGE for e in errors)
    assert [float(out["y"][0, 0]) for out, error in results if error is None] == [2.0]
