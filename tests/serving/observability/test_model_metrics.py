"""`serving/observability/model_metrics.py`: our `churn_model_*` metrics, as units, then through a real in-process
server (with the request log on)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from common.facts import METRICS_PATH, MODEL_NAME
from modules.features import PROBABILITY_OUTPUT
from serving.core.manager import ModelConfig, ModelManager
from serving.core.servable import Servable
from serving.core.types import ServableId
from serving.main import ModelServer
from serving.observability.model_metrics import ModelMetrics, ProbabilityHistogram, VersionCollector
from serving.observability.prometheus_text import render
from tests.monitoring.conftest import MODEL_VERSION
from tests.monitoring.models import instances
from tests.serving.conftest import make_config
from tests.serving.http_util import get, post
from tests.serving.observability.conftest import recording_log

PREDICT = f"/v1/models/{MODEL_NAME}:predict"


def exposition(*collectors: object) -> list[str]:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)  # type: ignore[arg-type]
    return render(registry, {}).decode().splitlines()


def test_probability_histogram_uses_prometheus_bounds_and_skips_nan() -> None:
    histogram = ProbabilityHistogram()
    histogram.observe("m", "7", np.array([0.05, 0.0500001, 0.5, 1.0, np.nan]))
    histogram.observe("m", "7", np.array([[0.2]], dtype=np.float32))
    lines = exposition(histogram)
    bucket = 'churn_model_prediction_probability_bucket{model_name="m",version="7",le="%s"} %d'
    assert bucket % ("0.05", 1) in lines  # a value equal to a bound counts in it (<=)
    assert bucket % ("0.1", 2) in lines
    assert bucket % ("0.2", 2) in lines  # float32 0.2 is slightly above 0.2
    assert bucket % ("0.25", 3) in lines
    assert bucket % ("0.5", 4) in lines
    assert bucket % ("1", 5) in lines and bucket % ("+Inf", 5) in lines
    assert 'churn_model_prediction_probability_count{model_name="m",version="7"} 5' in lines
    total = float(next(x for x in lines if x.startswith("churn_model_prediction_probability_sum")).split()[-1])
    assert total == pytest.approx(0.05 + 0.0500001 + 0.5 + 1.0 + 0.2, abs=1e-5)
    assert len([x for x in lines if "_bucket" in x]) == 21


def test_version_gauges_follow_the_manager(tmp_path: Path, model_base: Path) -> None:
    base = tmp_path / MODEL_NAME
    base.mkdir()
    manager = ModelManager([ModelConfig(MODEL_NAME, base)], lambda sid, path: Servable.load(sid, path),
                           settle_seconds=0)
    collector = VersionCollector(manager)
    manager.poll_once()
    lines = exposition(collector)
    assert f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 0' in lines
    assert not [x for x in lines if x.startswith("churn_model_version_available{")]
    shutil.copytree(model_base / str(MODEL_VERSION), base / "5")
    manager.poll_once()
    lines = exposition(collector)
    assert f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 1' in lines
    assert f'churn_model_version_available{{model_name="{MODEL_NAME}",version="5"}} 1' in lines
    manager.stop()


def start_server(model_base: Path, request_log_file: Path) -> ModelServer:
    config = make_config((ModelConfig(MODEL_NAME, model_base),), request_log_file=request_log_file,
                         observed_output=PROBABILITY_OUTPUT)  # as monitoring.serve (make serve) passes it
    server = ModelServer(config, CollectorRegistry())
    server.start()
    return server


def test_server_records_probabilities_versions_and_request_log(model_base: Path, tmp_path: Path) -> None:
    server = start_server(model_base, tmp_path / "requests.jsonl")
    try:
        port = server.rest_port
        sent = instances(5, seed=3)
        probabilities = []
        for chunk in (sent[:3], sent[3:]):
            status, _, body = post(port, PREDICT, {"instances": chunk})
            assert status == 200
            probabilities += [p[PROBABILITY_OUTPUT] for p in json.loads(body)["predictions"]]
        assert post(port, PREDICT, {"instances": [{"Age": "not a number"}]})[0] == 400
        assert post(port, PREDICT, {"instances": [{"x": 1}]})[0] == 400
    finally:
        server.stop()  # also drains the request log
    text = get_metrics(server)
    labels = f'model_name="{MODEL_NAME}",version="{MODEL_VERSION}"'
    assert f"churn_model_prediction_probability_count{{{labels}}} 5" in text
    total = float(next(x for x in text if x.startswith(f"churn_model_prediction_probability_sum{{{labels}}}"))
                  .split()[-1])
    assert total == pytest.approx(sum(probabilities), rel=1e-5)
    assert f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 1' in text
    assert f"churn_model_version_available{{{labels}}} 1" in text
    assert f'churn_model_request_log_rows{{model_name="{MODEL_NAME}",outcome="written"}} 5' in text
    logged = [json.loads(x) for x in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [r["inputs"] for r in logged] == sent
    assert [r[PROBABILITY_OUTPUT] for r in logged] == pytest.approx(probabilities, rel=1e-6)
    assert {(r["model_name"], r["version"]) for r in logged} == {(MODEL_NAME, MODEL_VERSION)}


def get_metrics(server: ModelServer) -> list[str]:
    """The exposition the server would serve (its REST port is closed after stop())."""
    return render(server.metrics.registry, server.metrics.tf_names).decode().splitlines()


def test_metrics_endpoint_serves_our_metrics_next_to_tf_serving_ones(model_base: Path, tmp_path: Path) -> None:
    server = start_server(model_base, tmp_path / "requests.jsonl")
    try:
        assert post(server.rest_port, PREDICT, {"instances": instances(2, seed=4)})[0] == 200
        status, _, body = get(server.rest_port, METRICS_PATH)
    finally:
        server.stop()
    text = body.decode()
    assert status == 200
    assert f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}} 1' in text
    assert "# TYPE churn_model_prediction_probability histogram" in text
    assert text.index("# TYPE :tensorflow:serving:request_count") < text.index("# TYPE churn_model_")


def test_signatures_without_the_probability_output_are_not_observed(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log, counted = recording_log(tmp_path / "r.jsonl")
    manager = ModelManager([], lambda sid, path: Servable.load(sid, path))
    metrics = ModelMetrics(registry, manager, log, PROBABILITY_OUTPUT)

    class Other:
        outputs = {"y": None}

    metrics.observe_predict(ServableId("m", 1), Other(), {"x": np.array([1.0])},  # type: ignore[arg-type]
                            {"y": np.array([0.5])})
    log.close()
    assert counted == [] and (tmp_path / "r.jsonl").read_text() == ""
    assert not [x for x in render(registry, {}).decode().splitlines() if x.startswith("churn_model_prediction")
                and not x.startswith("# TYPE")]


def test_without_an_observed_output_the_server_records_no_values(model_base: Path) -> None:
    """The server knows no model's outputs: only the launcher's --observed_output makes it record one."""
    server = ModelServer(make_config((ModelConfig(MODEL_NAME, model_base),)), CollectorRegistry())
    server.start()
    try:
        assert post(server.rest_port, PREDICT, {"instances": instances(3, seed=5)})[0] == 200
        lines = get_metrics(server)
        assert not [x for x in lines if x.startswith("churn_model_prediction_probability_count")]
        assert f'churn_model_available_versions{{model_name="{MODEL_NAME}"}} 1' in lines
    finally:
        server.stop()
