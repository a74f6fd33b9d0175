"""gRPC with the official stubs, and request metrics that equal exactly what was sent."""
from __future__ import annotations

import re
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.core.manager import ModelConfig
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import call, get, post


@pytest.fixture(scope="module")
def stubs(served):  # type: ignore[no-untyped-def]
    channel = grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}")
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


def test_grpc_predict(stubs) -> None:  # type: ignore[no-untyped-def]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0], np.float32)))
    response = stubs[0].Predict(request, timeout=10)
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.5, 3.0]
    assert response.model_spec.version.value == 123 and response.model_spec.signature_name == "serving_default"


def test_grpc_predict_errors(stubs) -> None:  # type: ignore[no-untyped-def]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].Predict(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "Servable not found for request: Latest(nope)"
    request.model_spec.name = "half"
    request.inputs["zz"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].Predict(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_classify_regress(stubs) -> None:  # type: ignore[no-untyped-def]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(20.0)
    response = stubs[0].Classify(request, timeout=10)
    assert response.result.classifications[0].classes[0].score == 12.0
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(80.0)
    assert stubs[0].Regress(request, timeout=10).result.regressions[0].value == 42.0


def test_grpc_metadata_and_status(stubs) -> None:  # type: ignore[no-untyped-def]
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half"
    response = stubs[0].GetModelMetadata(request, timeout=10)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sig_map)
    assert "serving_default" in sig_map.signature_def and response.model_spec.version.value == 123
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "half"
    status = stubs[1].GetModelStatus(status_request, timeout=10)
    assert status.model_version_status[0].version == 123
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def _count(text: str, model: str, status: str) -> int:
    pattern = rf':tensorflow:serving:request_count\{{model_name="{re.escape(model)}",status="{status}"\}} (\d+)'
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def test_request_counts_equal_requests_sent(tmp_path: Path, model_store: Path,
                                            server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),), CollectorRegistry())
    port = server.rest_port
    for _ in range(7):
        assert post(port, "/v1/models/m:predict", {"instances": [1.0]})[0] == 200
    for _ in range(3):
        assert post(port, "/v1/models/m:predict", b"{")[0] == 400
    for _ in range(2):
        assert post(port, "/v1/models/x:predict", {"instances": [1.0]})[0] == 404
    assert get(port, "/v1/models/m")[0] == 200
    assert call(port, "DELETE", "/v1/foo")[0] == 400
    status, headers, body = get(port, "/monitoring/prometheus/metrics")
    assert status == 200 and headers["content-type"] == "text/plain"
    text = body.decode()
    assert _count(text, "m", "OK") == 8
    assert _count(text, "m", "INVALID_ARGUMENT") == 3
    assert _count(text, "x", "NOT_FOUND") == 2
    assert _count(text, "", "INVALID_ARGUMENT") == 1
    assert ':tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} 7' in text
    assert ':tensorflow:serving:request_latency_count{model_name="m",API="",entrypoint="REST"} 1' in text
    assert ':tensorflow:serving:runtime_latency_count{model_name="m",API="Predict",runtime="TF1"} 7' in text
    assert f':tensorflow:cc:saved_model:load_attempt_count{{model_path="{base / "1"}",status="success"}} 1' in text
    for stage in ("restore_graph", "init_graph"):  # TF loader.cc's two timed stages, 34 buckets each
        labels = f'model_path="{base / "1"}",stage="{stage}"'
        assert f":tensorflow:cc:saved_model:load_latency_by_stage_count{{{labels}}} 1" in text
        assert text.count(f":tensorflow:cc:saved_model:load_latency_by_stage_bucket{{{labels},le=") == 34
    assert get(port, "/monitoring/prometheus/metrics?x=1")[0] == 400
