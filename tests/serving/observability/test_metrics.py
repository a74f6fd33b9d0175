"""`serving/observability/metrics.py`: TF Serving's exported metric names and latency bucket bounds."""
from __future__ import annotations

from serving.observability.metrics import LATENCY_BUCKETS, exported_name


def test_exported_names() -> None:
    assert exported_name("/tensorflow/serving/request_count") == ":tensorflow:serving:request_count"
    assert exported_name("0/path-total_count") == "_0:path:total_count"


def test_latency_buckets_match_tf_bounds() -> None:
    texts = [f"{b:g}" for b in LATENCY_BUCKETS]
    assert len(texts) == 33 and texts[:9] == ["10", "18", "32.4", "58.32", "104.976", "188.957", "340.122",
                                              "612.22", "1102"]
    assert texts[-1] == "1.47476e+09"
