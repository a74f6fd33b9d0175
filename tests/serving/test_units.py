"""Pure units: float formatting, pretty writer, version policy, exposition format."""
from __future__ import annotations

import struct

import pytest
from prometheus_client import CollectorRegistry

from serving.codec.json_write import debug_string, format_decimal
from serving.core.source import parse_version
from serving.core.types import ModelState
from serving.core.version_policy import (
    Action,
    ActionKind,
    PolicyKind,
    VersionPolicy,
    VersionSnapshot,
    aspired_versions,
    next_action,
)
from serving.observability.metrics import LATENCY_BUCKETS, ServingMetrics, exported_name
from serving.observability.prometheus_text import render


def f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


@pytest.mark.parametrize("value, is_f32, text", [
    (3.0, True, "3.0"), (9000000.0, True, "9e+06"), (0.00003, False, "3e-05"),
    (f32(1 / 3), True, "0.333333343"), (2.5, True, "2.5"), (float("nan"), True, "NaN"),
    (float("-inf"), False, "-Infinity"), (0.1, False, "0.1"), (1 / 3, False, "0.33333333333333331"),
    (f32(6e-7), True, "6e-07"),
])
def test_format_decimal_matches_write_decimal(value: float, is_f32: bool, text: str) -> None:
    assert format_decimal(value, is_f32) == text


def test_debug_string_is_pretty_with_single_line_arrays_and_truncated() -> None:
    assert debug_string({"a": [1, 2], "b": {"c": "x"}}) == '{\n    "a": [1, 2],\n    "b": {\n        "c": "x"\n    }\n}'
    assert debug_string(1.0) == "1.0"
    assert len(debug_string(["x" * 50] * 20)) == 256


@pytest.mark.parametrize("name, version", [("1", 1), ("00000123", 123), ("abc", None), ("1a", None),
                                           ("99999999999999999999", None)])
def test_parse_version(name: str, version: object) -> None:
    assert parse_version(name) == version


def test_aspired_versions_per_policy() -> None:
    disk = {1, 2, 3}
    assert aspired_versions(disk, VersionPolicy()) == {3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.LATEST, 2)) == {2, 3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.ALL)) == {1, 2, 3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.SPECIFIC, versions=frozenset({1, 7}))) == {1}


A, L, S, E = ModelState.AVAILABLE, ModelState.LOADING, ModelState.START, ModelState.END


@pytest.mark.parametrize("snapshots, action", [
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, S, True, True)], Action(ActionKind.LOAD, 2)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, L, True)], None),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, A, True)], Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, E, True)], None),
    ([VersionSnapshot(1, A, False)], Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, A, False), VersionSnapshot(3, E, True)],
     Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, S, True, True), VersionSnapshot(2, S, True, True)], Action(ActionKind.LOAD, 2)),
])
def test_availability_preserving_policy(snapshots: list, action: object) -> None:
    assert next_action(snapshots) == action


def test_exported_names() -> None:
    assert exported_name("/tensorflow/serving/request_count") == ":tensorflow:serving:request_count"
    assert exported_name("0/path-total_count") == "_0:path:total_count"


def test_latency_buckets_match_tf_bounds() -> None:
    texts = [f"{b:g}" for b in LATENCY_BUCKETS]
    assert len(texts) == 33 and texts[:9] == ["10", "18", "32.4", "58.32", "104.976", "188.957", "340.122",
                                              "612.22", "1102"]
    assert texts[-1] == "1.47476e+09"


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
