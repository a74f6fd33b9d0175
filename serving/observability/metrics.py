"""Every metric the server records, built in one `ServingMetrics(registry)` (injected registry).

Names, labels and bucket bounds are TF Serving's (`servables/tensorflow/util.cc`, TF's
`saved_model/loader.cc`); prometheus_client holds the data and `prometheus_text` renders it in
TF Serving's exposition format. TF histograms count a value in the first bucket whose bound is
*strictly greater*; observing `nextafter(v, +inf)` gives that with Prometheus' `<=` buckets.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram


def exponential_buckets(scale: float, growth: float, count: int) -> list[float]:
    """TF `Buckets::Exponential`: bound *= growth, `count` times (+Inf is implicit)."""
    bounds, bound = [], scale
    for _ in range(count):
        bounds.append(bound)
        bound *= growth
    return bounds


LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)
QUEUING_BUCKETS = exponential_buckets(100, 1.2, 52)

REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_LATENCY = "/tensorflow/serving/request_latency"
RUNTIME_LATENCY = "/tensorflow/serving/runtime_latency"
LOAD_ATTEMPT_COUNT = "/tensorflow/cc/saved_model/load_attempt_count"
LOAD_LATENCY = "/tensorflow/cc/saved_model/load_latency"
LOAD_LATENCY_BY_STAGE = "/tensorflow/cc/saved_model/load_latency_by_stage"
QUEUING_LATENCY = "/tensorflow/serving/batching_session/queuing_latency"
PROCESSED_BATCH_SIZE = "/tensorflow/serving/batching_session/processed_batch_size"
WARMUP_LATENCY = "/tensorflow/serving/model_warmup_latency"
"""`saved_model_warmup_util.cc`: wall time of one version's warmup replay, labels model_path, status."""

MODEL_NAME_LABEL = "model_name"
STATUS_LABEL = "status"
API_LABEL = "API"
ENTRYPOINT_LABEL = "entrypoint"
RUNTIME_LABEL = "runtime"
MODEL_PATH_LABEL = "model_path"
STAGE_LABEL = "stage"
RUNTIME_TF1 = "TF1"

DEFAULT_MAX_UNKNOWN_MODEL_NAMES = 100
"""Distinct `model_name` values recorded for names the server does not serve (`--max_unknown_model_names`)."""
OVERFLOW_MODEL_NAME = "__overflow__"
"""The `model_name` under which requests for further unknown models are counted once the cap is reached."""


def exported_name(tf_name: str) -> str:
    """TF's Prometheus name sanitising: chars outside [a-zA-Z0-9_] -> ':'."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else ":" for c in tf_name)
    return "_" + name if name[:1].isdigit() else name


class ServingMetrics:
    """Live metrics; request handlers call the `record_*` methods."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.tf_names: dict[str, str] = {}
        self._request_count = self._counter(REQUEST_COUNT, (MODEL_NAME_LABEL, STATUS_LABEL))
        self._request_latency = self._histogram(
            REQUEST_LATENCY, (MODEL_NAME_LABEL, API_LABEL, ENTRYPOINT_LABEL), LATENCY_BUCKETS)
        self._runtime_latency = self._histogram(
            RUNTIME_LATENCY, (MODEL_NAME_LABEL, API_LABEL, RUNTIME_LABEL), LATENCY_BUCKETS)
        self._load_attempts = self._counter(LOAD_ATTEMPT_COUNT, (MODEL_PATH_LABEL, STATUS_LABEL))
        self._load_latency = self._counter(LOAD_LATENCY, (MODEL_PATH_LABEL,))
        self._load_stages = self._histogram(LOAD_LATENCY_BY_STAGE, (MODEL_PATH_LABEL, STAGE_LABEL), LATENCY_BUCKETS)
        self._queuing = self._histogram(QUEUING_LATENCY, ("thread_pool_name",), QUEUING_BUCKETS)
        self._batch_size = self._histogram(PROCESSED_BATCH_SIZE, (), BATCH_SIZE_BUCKETS)
        self._warmup_latency = self._histogram(WARMUP_LATENCY, (MODEL_PATH_LABEL, STATUS_LABEL), LATENCY_BUCKETS)
        self._cells: dict[tuple[object, ...], object] = {}
        self._is_served: Callable[[str], bool] = lambda name: True
        self._max_unknown = DEFAULT_MAX_UNKNOWN_MODEL_NAMES
        self._unknown: set[str] = set()
        self._labels: dict[str, str] = {}
        self._labels_lock = threading.Lock()

    def limit_unknown_model_names(self, is_served: Callable[[str], bool], max_unknown: int) -> None:
        """Caps the `model_name` values a client can create: a name `is_served` rejects is kept as
        itself for the first `max_unknown` distinct such names, later ones are recorded as
        `OVERFLOW_MODEL_NAME`. Our deviation from TF Serving, which records every name sent (so any
        client could grow the exposition without bound)."""
        self._is_served, self._max_unknown = is_served, max_unknown

    def model_label(self, model_name: str) -> str:
        """The `model_name` label value to record for a request naming `model_name`."""
        label = self._labels.get(model_name)
        if label is not None:
            return label
        if not model_name or self._is_served(model_name):
            label = model_name
        else:
            with self._labels_lock:
                if model_name not in self._unknown and len(self._unknown) >= self._max_unknown:
                    return OVERFLOW_MODEL_NAME  # not cached: the cache stays bounded
                self._unknown.add(model_name)
            label = model_name
        self._labels[model_name] = label
        return label

    def _counter(self, tf_name: str, labels: tuple[str, ...]) -> Counter:
        name = exported_name(tf_name)
        self.tf_names[name] = tf_name
        return Counter(name, tf_name, labels, registry=self.registry)

    def _histogram(self, tf_name: str, labels: tuple[str, ...], buckets: list[float]) -> Histogram:
        name = exported_name(tf_name)
        self.tf_names[name] = tf_name
        return Histogram(name, tf_name, labels, buckets=buckets, registry=self.registry)

    def _cell(self, metric: object, *labels: str) -> object:
        key = (id(metric),) + labels
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = metric.labels(*labels)  # type: ignore[attr-defined]
        return cell

    def record_request(self, model_name: str, status: str) -> None:
        self._cell(self._request_count, self.model_label(model_name), status).inc()  # type: ignore[attr-defined]

    def record_request_latency(self, model_name: str, api: str, entrypoint: str, micros: float) -> None:
        cell = self._cell(self._request_latency, self.model_label(model_name), api, entrypoint)
        cell.observe(math.nextafter(micros, math.inf))  # type: ignore[attr-defined]

    def record_runtime_latency(self, model_name: str, api: str, micros: float) -> None:
        cell = self._cell(self._runtime_latency, self.model_label(model_name), api, RUNTIME_TF1)
        cell.observe(math.nextafter(micros, math.inf))  # type: ignore[attr-defined]

    def record_load(self, model_path: str, succeeded: bool, micros: float) -> None:
        self._load_attempts.labels(model_path, "success" if succeeded else "fail").inc()
        if succeeded:
            self._load_latency.labels(model_path).inc(int(micros))

    def record_load_stages(self, model_path: str, stage_micros: dict[str, float]) -> None:
        """A successful load's per-stage wall time (`restore_graph`, `init_graph`), as TF's loader."""
        for stage, micros in stage_micros.items():
            self._load_stages.labels(model_path, stage).observe(math.nextafter(micros, math.inf))

    def record_batch(self, thread_pool_name: str, size: int, queued_micros: list[float]) -> None:
        self._batch_size.observe(math.nextafter(size, math.inf))
        cell = self._cell(self._queuing, thread_pool_name)
        for micros in queued_micros:
            cell.observe(math.nextafter(micros, math.inf))  # type: ignore[attr-defined]

    def record_warmup(self, model_path: str, status: str, micros: float) -> None:
        """One warmup replay (`status` is absl's `Status::ToString()`: `OK` or `CODE: message`)."""
        self._warmup_latency.labels(model_path, status).observe(math.nextafter(micros, math.inf))
