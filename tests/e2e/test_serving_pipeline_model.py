"""The model the real pipeline pushes, served by `python -m serving`, checked over HTTP and gRPC.

One server process (free loopback ports, the project's monitoring config) serves the shared
`bundled_style` run's push. Its answers are compared with the same SavedModel called in-process,
and every request sent is tallied so the Prometheus `request_count` can be checked exactly.
"""
from __future__ import annotations

import collections
import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from client.tf_serving import to_instances
from data.generate import COLUMNS, generate
from modules import threshold
from modules.features import ID_KEYS, PROBABILITY_OUTPUT, attribution_name
from modules.signatures import WITH_IDS_SIGNATURE
from pipeline.config import PROJECT_ROOT
from tests.helpers import free_port

pytestmark = pytest.mark.e2e
MODEL = "customer-model"
SIGNATURES = {"serving_default", "serving_tf_example", "transform_features", "explain", WITH_IDS_SIGNATURE}
RAW_FEATURES = sorted(set(COLUMNS) - {"Customer_ID", "Target_Churn"})
OUTPUTS = {"churn", "churn_probability"}
HTTP_STATUS_CODES = {200: "OK", 400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}
CUSTOMERS = generate(5, seed=11)


@dataclass
class Server:
    rest_port: int
    grpc_port: int
    version: str
    pushed_dir: Path
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    """Requests sent that TF Serving counts in request_count, by status name."""

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=30)
        try:
            conn.request(method, path, body=data)
            response = conn.getresponse()
            reply = (response.status, response.getheader("Content-Type", ""), response.read())
        finally:
            conn.close()
        if path.startswith("/v1/"):
            self.sent[HTTP_STATUS_CODES.get(reply[0], str(reply[0]))] += 1
        return reply

    def predict(self, body: Any) -> tuple[int, Any]:
        status, _, data = self.http("POST", f"/v1/models/{MODEL}:predict", body)
        return status, json.loads(data)


@pytest.fixture(scope="module")
def server(bundled_style: tuple[Path, subprocess.CompletedProcess, dict],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pushed = Path(summary["pushed_model_dir"])
    assert pushed.parent == tmp / "serving" / MODEL and pushed.name.isdigit()
    yield from serve(pushed, tmp_path_factory.mktemp("server") / "server.log")


def serve(pushed: Path, log_path: Path) -> Iterator[Server]:
    """Our model server (`python -m serving`) on the base path of a pushed version, until the generator closes."""
    rest_port, grpc_port = free_port(), free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving", f"--model_base_path={pushed.parent}", f"--model_name={MODEL}",
             f"--port={grpc_port}", f"--rest_api_port={rest_port}",
             f"--monitoring_config_file={PROJECT_ROOT / 'serving' / 'config' / 'monitoring.config'}"],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Exporting HTTP/REST API at" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield Server(rest_port, grpc_port, pushed.name, pushed)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def input_dtypes(server: Server) -> dict[str, str]:
    status, _, body = server.http("GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    inputs = json.loads(body)["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    return {name: spec["dtype"] for name, spec in inputs.items()}


@pytest.fixture(scope="module")
def instances(input_dtypes: dict[str, str]) -> list[dict[str, Any]]:
    """The customers as REST rows: each feature in the dtype the signature declares."""
    return to_instances(CUSTOMERS.to_dict("records"), input_dtypes)


@pytest.fixture(scope="module")
def expected(server: Server, instances: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """What the pushed SavedModel's serving_default gives in-process for the same customers."""
    fn = tf.saved_model.load(str(server.pushed_dir)).signatures["serving_default"]
    specs = fn.structured_input_signature[1]
    outputs = fn(**{k: tf.constant([row[k] for row in instances], dtype=s.dtype) for k, s in specs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def assert_matches(predictions: dict[str, list[Any]], expected: dict[str, np.ndarray]) -> None:
    assert set(predictions) == OUTPUTS
    np.testing.assert_allclose(predictions["churn_probability"], expected["churn_probability"], rtol=0, atol=1e-6)
    assert list(predictions["churn"]) == expected["churn"].tolist()


def test_status_is_available_with_the_pushed_version(server: Server) -> None:
    status, content_type, body = server.http("GET", f"/v1/models/{MODEL}")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"model_version_status": [
        {"version": server.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = MODEL
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    (version_status,) = reply.model_version_status
    assert version_status.version == int(server.version)
    assert version_status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_metadata_lists_the_signatures_with_raw_features(server: Server,
                                                                input_dtypes: dict[str, str]) -> None:
    status, _, body = server.http("GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200
    metadata = json.loads(body)
    assert metadata["model_spec"] == {"name": MODEL, "signature_name": "", "version": server.version}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert SIGNATURES <= set(signatures)
    assert sorted(input_dtypes) == RAW_FEATURES
    assert input_dtypes["Age"] == "DT_INT64" and input_dtypes["Gender"] == "DT_STRING"
    assert input_dtypes["Annual_Income"] == "DT_FLOAT"
    assert set(signatures["serving_default"]["outputs"]) == OUTPUTS
    assert set(signatures["serving_tf_example"]["inputs"]) == {"examples"}
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = MODEL
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=30)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(sig_map)
    assert SIGNATURES <= set(sig_map.signature_def)
    assert sorted(sig_map.signature_def["serving_default"].inputs) == RAW_FEATURES


def test_rest_rows_match_the_saved_model_in_process(server: Server, instances: list[dict[str, Any]],
                                                    expected: dict[str, np.ndarray]) -> None:
    status, body = server.predict({"instances": instances})
    assert status == 200
    rows = body["predictions"]
    assert len(rows) == len(instances) and all(set(row) == OUTPUTS for row in rows)
    assert all(0.0 <= row["churn_probability"] <= 1.0 for row in rows)
    chosen = threshold.read(server.pushed_dir)  # stored with the model; the server serves it from the graph
    assert all(row["churn"] == int(row["churn_probability"] >= chosen) for row in rows)
    assert_matches({k: [row[k] for row in rows] for k in OUTPUTS}, expected)


def test_rest_columnar_gives_the_same_answer(server: Server, instances: list[dict[str, Any]],
                                             expected: dict[str, np.ndarray]) -> None:
    columns = {k: [row[k] for row in instances] for k in instances[0]}
    status, body = server.predict({"signature_name": "serving_default", "inputs": columns})
    assert status == 200
    assert_matches(body["outputs"], expected)


def test_rest_list_wrapped_values_get_tf_servings_answer(server: Server) -> None:
    """The field case: each value wrapped in a one-element list. TF Serving feeds the [1, 1]
    tensors to the graph, which reshapes every raw column to [-1]: the same answer as unwrapped."""
    wrapped = json.loads((PROJECT_ROOT.parent / "shared" / "field-cases" / "rest_list_wrapped_values.json").read_text())
    plain = {k: v[0] for k, v in wrapped["instances"][0].items()}
    status, body = server.predict(wrapped)
    assert status == 200, body
    assert server.predict({"instances": [plain]}) == (200, body)
    status, columnar = server.predict({"inputs": plain})  # scalar columnar inputs for [None] inputs
    assert status == 200 and columnar["outputs"] == {k: [v] for k, v in body["predictions"][0].items()}


def test_grpc_predict_gives_the_same_answer(server: Server, instances: list[dict[str, Any]],
                                            input_dtypes: dict[str, str], expected: dict[str, np.ndarray]) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    for name, dtype in input_dtypes.items():
        tf_dtype = tf.as_dtype(types_pb2.DataType.Value(dtype))
        request.inputs[name].CopyFrom(tf.make_tensor_proto([row[name] for row in instances], dtype=tf_dtype))
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    server.sent["OK"] += 1
    assert reply.model_spec.name == MODEL and reply.model_spec.version.value == int(server.version)
    assert_matches({k: tf.make_ndarray(v).tolist() for k, v in reply.outputs.items()}, expected)


def test_serving_with_ids_returns_each_customers_id_with_serving_defaults_answer(
        server: Server, instances: list[dict[str, Any]], expected: dict[str, np.ndarray]) -> None:
    """REST rows and gRPC (official stubs) through the pushed model's `serving_with_ids`: the ids come back
    with the same probability and decision as `serving_default`."""
    status, _, body = server.http("GET", f"/v1/models/{MODEL}/metadata")
    signature = json.loads(body)["metadata"]["signature_def"]["signature_def"][WITH_IDS_SIGNATURE]
    assert set(signature["inputs"]) == set(RAW_FEATURES) | set(ID_KEYS)
    assert set(signature["outputs"]) == OUTPUTS | set(ID_KEYS)
    ids = CUSTOMERS[ID_KEYS[0]].tolist()
    rows = [dict(row, **{ID_KEYS[0]: customer}) for row, customer in zip(instances, ids, strict=True)]
    status, answer = server.predict({"signature_name": WITH_IDS_SIGNATURE, "instances": rows})
    assert status == 200, answer
    assert [row[ID_KEYS[0]] for row in answer["predictions"]] == ids
    assert_matches({k: [row[k] for row in answer["predictions"]] for k in OUTPUTS}, expected)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, WITH_IDS_SIGNATURE
    for name, spec in signature["inputs"].items():
        tf_dtype = tf.as_dtype(types_pb2.DataType.Value(spec["dtype"]))
        request.inputs[name].CopyFrom(tf.make_tensor_proto([row[name] for row in rows], dtype=tf_dtype))
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    server.sent["OK"] += 1  # the gRPC predict (server.http counts the REST calls)
    outputs = {k: tf.make_ndarray(v).tolist() for k, v in reply.outputs.items()}
    assert outputs.pop(ID_KEYS[0]) == ids
    assert_matches(outputs, expected)


def test_rest_explain_gives_the_probability_and_the_saved_models_attributions(
        server: Server, instances: list[dict[str, Any]], expected: dict[str, np.ndarray]) -> None:
    status, body = server.predict({"signature_name": "explain", "instances": instances})
    assert status == 200
    rows = body["predictions"]
    assert len(rows) == len(instances)
    assert all(set(row) == {PROBABILITY_OUTPUT, *(attribution_name(k) for k in RAW_FEATURES)} for row in rows)
    np.testing.assert_allclose([row[PROBABILITY_OUTPUT] for row in rows], expected[PROBABILITY_OUTPUT],
                               rtol=0, atol=1e-6)
    fn = tf.saved_model.load(str(server.pushed_dir)).signatures["explain"]
    specs = fn.structured_input_signature[1]
    in_process = fn(**{k: tf.constant([row[k] for row in instances], dtype=s.dtype) for k, s in specs.items()})
    for key in RAW_FEATURES:
        np.testing.assert_allclose([row[attribution_name(key)] for row in rows],
                                   in_process[attribution_name(key)].numpy(), rtol=0, atol=1e-5)
    assert any(abs(row[attribution_name("Last_Purchase_Days_Ago")]) > 0.01 for row in rows)


def test_bad_requests_get_tf_serving_error_bodies(server: Server, instances: list[dict[str, Any]]) -> None:
    missing = {k: v for k, v in instances[0].items() if k != "Age"}
    status, content_type, body = server.http("POST", f"/v1/models/{MODEL}:predict", {"instances": [missing]})
    assert (status, content_type) == (400, "application/json")
    assert body.startswith(b'{\n    "error": "') and body.endswith(b'"\n}')
    message = json.loads(body)["error"]
    assert message.startswith("Failed to process element: 0 of 'instances' list. JSON object: ")
    assert message.endswith(" keys must be equal to: " + ",".join(RAW_FEATURES))
    wrong_type = dict(instances[0], Age="thirty")
    status, body_json = server.predict({"instances": [wrong_type]})
    assert status == 400
    assert body_json == {"error": "Failed to process element: 0 key: Age of 'instances' list. Error: "
                                  'INVALID_ARGUMENT: JSON Value: "thirty" Type: String is not of expected type: int64'}


def test_client_cli_prints_one_probability_per_customer(server: Server, tmp_path: Path,
                                                        expected: dict[str, np.ndarray]) -> None:
    csv_path = tmp_path / "customers.csv"
    CUSTOMERS.to_csv(csv_path, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "client.tf_serving", "--port", str(server.rest_port), "predict", "--csv", str(csv_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    server.sent["OK"] += 2  # the client reads the metadata, then predicts
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(CUSTOMERS)
    for line, customer_id, probability in zip(lines, CUSTOMERS["Customer_ID"], expected["churn_probability"],
                                              strict=True):
        match = re.fullmatch(r"customer (\d+): churn probability (\d\.\d{4})", line)
        assert match and int(match.group(1)) == customer_id, line
        assert match.group(2) == f"{probability:.4f}"


def test_prometheus_request_count_matches_what_was_sent(server: Server) -> None:
    server.http("POST", f"/v1/models/{MODEL}:predict", b"not json")
    status, content_type, body = server.http("GET", "/monitoring/prometheus/metrics")
    assert (status, content_type) == (200, "text/plain")
    counts = dict(re.findall(rf'^:tensorflow:serving:request_count\{{model_name="{MODEL}",status="(\w+)"\}} (\d+)$',
                             body.decode(), re.MULTILINE))
    assert {k: int(v) for k, v in counts.items()} == dict(server.sent)


def test_pushed_version_carries_warmup_requests_the_server_replayed(
        server: Server, bundled_style: tuple[Path, subprocess.CompletedProcess, dict]) -> None:
    from serving.api import warmup

    tmp, _, summary = bundled_style
    assert "ServingCheck" in summary["component_seconds"]  # the check ran before the push
    logs = list(warmup.read_warmup_records(warmup.warmup_path(server.pushed_dir)))  # TF Serving's rules
    served = set(warmup.signature_defs(server.pushed_dir)) - {"__saved_model_init_op"}
    assert sorted(log.predict_log.request.model_spec.signature_name for log in logs) == sorted(served)
    assert SIGNATURES <= served
    default = next(log for log in logs if log.predict_log.request.model_spec.signature_name == "serving_default")
    row = {k: tf.make_ndarray(v).tolist()[0] for k, v in default.predict_log.request.inputs.items()}
    assert set(row) == set(RAW_FEATURES)
    real = {tuple(str(r[k]) for k in RAW_FEATURES) for r in pd.read_csv(tmp / "customers.csv").to_dict("records")}
    synthetic = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in (row[k] for k in RAW_FEATURES))
    assert synthetic not in real  # medians and modes, not a customer
    _, _, metrics = server.http("GET", "/monitoring/prometheus/metrics")
    replayed = re.search(rf':tensorflow:serving:model_warmup_latency_count\{{'
                         rf'model_path="{re.escape(str(server.pushed_dir))}",status="OK"\}} (\d+)', metrics.decode())
    assert replayed and replayed.group(1) == "1"
