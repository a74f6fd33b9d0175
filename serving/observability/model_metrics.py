"""What an ML team watches beyond TF Serving's request counts: our extension, named `churn_model_*`.

TF Serving exports no model-level metrics. These share the server's registry (one scrape gets
both) but never a name with TF Serving's `:tensorflow:*` metrics:

- `churn_model_prediction_probability{model_name,version}` (histogram): every value of the observed
  output (`--observed_output`, a probability in [0, 1]; the launcher names it, e.g. `make serve` passes
  `churn_probability`), for predict signatures that have it (the others are ignored, by the request log
  too; without the flag nothing is observed). Counts are added per batch with numpy, so the
  cost per request does not grow with the number of rows.
- `churn_model_available_versions{model_name}` (gauge): versions in state AVAILABLE now; 0 means
  requests for the model get NOT_FOUND.
- `churn_model_version_available{model_name,version}` (gauge, 1): which versions those are.
- `churn_model_request_log_rows{model_name,outcome}` (counter): rows `written` to, `dropped` from
  (queue full) or `failed` by the optional request log (`--request_log_file`).
- `churn_model_prediction_store_rows{model_name,outcome}` (counter): the same for the optional prediction
  store (`--prediction_store_url`, serving/observability/prediction_log.py).

The version gauges are read from the model manager at scrape time, so they cost nothing per request.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from serving.core.errors import NotFoundError
from serving.core.manager import ModelManager
from serving.core.servable import Signature
from serving.core.types import ModelState, ServableId, TensorMap
from serving.observability.prediction_log import PredictionLog
from serving.observability.request_log import RequestLog

PROBABILITY = "churn_model_prediction_probability"
AVAILABLE_VERSIONS = "churn_model_available_versions"
VERSION_AVAILABLE = "churn_model_version_available"
REQUEST_LOG_ROWS = "churn_model_request_log_rows"
PREDICTION_STORE_ROWS = "churn_model_prediction_store_rows"
PROBABILITY_BUCKETS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
"""0.05, 0.10, ..., 1.0 (Prometheus `le` semantics: a value equal to a bound counts in it)."""


class ProbabilityHistogram:
    """Per (model, version) bucket counts as numpy arrays; exposed as a Prometheus histogram.

    prometheus_client's Histogram takes one value per call, and even one numpy bucketing per request
    costs more than a thousandth of a second's budget at thousands of requests per second. So a
    request only appends its output array to a deque (thread-safe, no lock); the arrays are bucketed
    together, one `searchsorted` for thousands of requests, when Prometheus scrapes or when
    `FOLD_EVERY` arrays have piled up (which bounds the memory between scrapes).
    """

    FOLD_EVERY = 4096

    def __init__(self, bounds: tuple[float, ...] = PROBABILITY_BUCKETS) -> None:
        self._bounds = np.asarray(bounds, dtype=np.float64)
        self._cells: dict[tuple[str, str], tuple[npt.NDArray[Any], list[float]]] = {}
        self._pending: deque[tuple[tuple[str, str], npt.NDArray[Any]]] = deque()
        self._lock = threading.Lock()

    def observe(self, model_name: str, version: str, values: npt.NDArray[Any]) -> None:
        """Counts every value (NaN is skipped: it belongs to no bucket and would poison the sum)."""
        self._pending.append(((model_name, version), values))
        if len(self._pending) >= self.FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            grouped: dict[tuple[str, str], list[npt.NDArray[Any]]] = {}
            for _ in range(len(self._pending)):  # what others append meanwhile waits for the next fold
                key, values = self._pending.popleft()
                grouped.setdefault(key, []).append(np.asarray(values, dtype=np.float64).reshape(-1))
            for key, arrays in grouped.items():
                flat = np.concatenate(arrays)
                flat = flat[~np.isnan(flat)]
                counts = np.bincount(np.searchsorted(self._bounds, flat, side="left"),
                                     minlength=len(self._bounds) + 1)
                cell = self._cells.get(key)
                if cell is None:
                    cell = self._cells[key] = (np.zeros(len(self._bounds) + 1, np.int64), [0.0])
                cell[0][:] += counts
                cell[1][0] += float(flat.sum())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(PROBABILITY, "Predicted probability (the observed output) per model version.",
                                       labels=("model_name", "version"))
        self._fold()
        with self._lock:
            snapshot = [(key, counts.copy(), total[0]) for key, (counts, total) in self._cells.items()]
        for (model_name, version), counts, total in sorted(snapshot):
            cumulative = np.cumsum(counts)
            buckets = [(repr(b), float(c)) for b, c in zip(self._bounds.tolist(), cumulative[:-1], strict=True)]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric([model_name, version], buckets, total)
        yield family


class VersionCollector:
    """Available versions per configured model, read from the manager when Prometheus scrapes."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily(AVAILABLE_VERSIONS, "Versions in state AVAILABLE.", labels=("model_name",))
        each = GaugeMetricFamily(VERSION_AVAILABLE, "1 for each AVAILABLE version.",
                                 labels=("model_name", "version"))
        for name in sorted(self._manager.model_names()):
            try:
                statuses = self._manager.status(name)
            except NotFoundError:  # nothing found on disk yet
                statuses = []
            available = sorted(s.version for s in statuses if s.state is ModelState.AVAILABLE)
            count.add_metric([name], len(available))
            for version in available:
                each.add_metric([name, str(version)], 1)
        yield count
        yield each


class ModelMetrics:
    """Registers the collectors above; `observe_predict` is the one hook in the predict path."""

    def __init__(self, registry: CollectorRegistry, manager: ModelManager,
                 request_log: RequestLog | None = None, observed_output: str | None = None,
                 prediction_log: PredictionLog | None = None) -> None:
        self.observed_output = observed_output
        """The predict output recorded (ServerConfig.observed_output); None: no values are recorded."""
        self.probabilities = ProbabilityHistogram()
        registry.register(self.probabilities)
        registry.register(VersionCollector(manager))
        self.request_log = request_log
        if request_log is not None:
            rows = Counter(REQUEST_LOG_ROWS, "Request log rows by outcome.", ("model_name", "outcome"),
                           registry=registry)
            request_log.on_rows = lambda model, outcome, n: rows.labels(model, outcome).inc(n)
        self.prediction_log = prediction_log
        if prediction_log is not None:
            stored = Counter(PREDICTION_STORE_ROWS, "Prediction store rows by outcome.", ("model_name", "outcome"),
                             registry=registry)
            prediction_log.on_rows = lambda model, outcome, n: stored.labels(model, outcome).inc(n)

    def observe_predict(self, servable_id: ServableId, signature: Signature, inputs: TensorMap,
                        outputs: TensorMap, source: str | None = None, model_dir: Path | None = None) -> None:
        """After a successful predict: histogram, request log and prediction store, for signatures with the
        observed output only (the store also needs an id output, and `source` `rest`/`grpc` and the
        version's folder `model_dir`: warmup and in-process calls pass neither and are not stored)."""
        name = self.observed_output
        probabilities = outputs.get(name) if name is not None else None
        if probabilities is None or name not in signature.outputs:
            return
        self.probabilities.observe(servable_id.name, str(servable_id.version), probabilities)
        if self.request_log is not None:
            self.request_log.submit(servable_id, inputs, probabilities)
        if self.prediction_log is not None and source is not None and model_dir is not None:
            self.prediction_log.submit(servable_id, model_dir, signature, outputs, source)
