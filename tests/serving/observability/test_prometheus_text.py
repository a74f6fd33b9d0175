"""`serving/observability/prometheus_text.py`: the exposition format TF Serving writes."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from serving.observability.metrics import ServingMetrics
from serving.observability.prometheus_text import render


def test_exposition_format() -> None:
    metrics = ServingMetrics(CollectorRegistry())
    metrics.record_request("m", "OK")
    metrics.record_request("m", "OK")
    metrics.record_request_latency("m", "predict", "REST", 18.0)  # equal to a bound -> next bucket
    metrics.record_load("/models/m/1", True, 1500.0)
    text = render(metrics.registry, metrics.tf_names).decode()
    lines = text.splitlines()
    assert text.endswith("\n") and not any(line.startswith("# HELP") for line in lines)
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2' in lines
    bucket = ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",'
    assert bucket + 'le="18"} 0' in lines
    assert bucket + 'le="32.4"} 1' in lines
    assert bucket + 'le="+Inf"} 1' in lines
    assert ':tensorflow:serving:request_latency_count{model_name="m",API="predict",entrypoint="REST"} 1' in lines
    assert ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/m/1",status="success"} 1' in lines
    assert "# TYPE :tensorflow:serving:runtime_latency histogram" in lines
    bucket_lines = [x for x in lines if x.startswith(":tensorflow:serving:request_latency_bucket")]
    assert len(bucket_lines) == 34
    types = [x.split()[2] for x in lines if x.startswith("# TYPE")]
    assert types == sorted(types, key=lambda n: n.replace(":", "/"))
