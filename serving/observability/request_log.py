"""Optional request log (`--request_log_file`, our extension; TF Serving has no such flag).

Each predicted row becomes one JSON line:
`{"time": <unix s>, "model_name": ..., "version": ..., "inputs": {<input>: <value>}, <output>: p}`, where <output>
is the observed output's name (`--observed_output`, e.g. `churn_probability`: the launcher names it; the server
knows no model's outputs).
Bytes are written as text when they are UTF-8, else as `{"b64": ...}` (TF Serving's JSON convention).
`python -m monitoring.drift` compares these inputs with the training statistics.

The request path only puts references on a bounded queue (no copy, no JSON); a background
thread formats and writes. When the queue is full rows are dropped and counted, and a write
error is logged and counted: logging never fails or slows a request.
"""
from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.core.types import ServableId, TensorMap

LOG = logging.getLogger(__name__)
DEFAULT_MAX_PENDING = 10_000
"""Requests waiting to be written; beyond this, rows are dropped rather than held in memory."""
RowsObserver = Callable[[str, str, int], None]
"""(model name, outcome: written | dropped | failed, rows)."""
_Entry = tuple[float, ServableId, TensorMap, npt.NDArray[Any] | None]


def _json_value(value: Any) -> Any:
    """`json.dumps` default: bytes as text, or base64 when they are not UTF-8."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _columns(inputs: TensorMap, rows: int) -> dict[str, list[Any]]:
    """Per input, one Python value per row; a [batch, 1] column becomes scalars."""
    columns = {}
    for name, array in inputs.items():
        if array.ndim == 0 or array.shape[0] != rows:  # not batched along dim 0: repeat as-is
            columns[name] = [array.tolist()] * rows
            continue
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.dtype == np.float32 and array.ndim == 1:  # shortest float32 text: 74.94, not 74.94000244
            columns[name] = [float(text) for text in array.astype(str)]
            continue
        columns[name] = array.tolist()
    return columns


def _row_count(entry: _Entry) -> int:
    probabilities, inputs = entry[3], entry[2]
    if probabilities is not None:
        return len(probabilities)
    return max((a.shape[0] for a in inputs.values() if a.ndim), default=1)


def format_lines(entry: _Entry, output_name: str) -> Iterator[str]:
    """The JSON lines of one request; each row's observed value under the key `output_name`."""
    logged_at, servable_id, inputs, probabilities = entry
    rows = _row_count(entry)
    columns = _columns(inputs, rows)
    scores = probabilities.reshape(rows, -1)[:, 0].tolist() if probabilities is not None else [None] * rows
    for row in range(rows):
        record = {"time": round(logged_at, 3), "model_name": servable_id.name, "version": servable_id.version,
                  "inputs": {name: values[row] for name, values in columns.items()},
                  output_name: scores[row]}
        yield json.dumps(record, default=_json_value, allow_nan=True) + "\n"


class RequestLog:
    """Appends rows to `path` from a background thread; `close()` drains the queue first."""

    def __init__(self, path: Path, output_name: str, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.path = path
        self.output_name = output_name
        """The key each row's observed value is written under (ServerConfig.observed_output)."""
        self.on_rows: RowsObserver | None = None
        self._failing = False
        self._file = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115 (closed in close())
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def submit(self, servable_id: ServableId, inputs: TensorMap, probabilities: npt.NDArray[Any] | None) -> None:
        """Queues one request's rows; never blocks and never raises."""
        try:
            self._queue.put_nowait((time.time(), servable_id, inputs, probabilities))
        except queue.Full:
            self._count(servable_id.name, "dropped", _row_count((0.0, servable_id, inputs, probabilities)))

    def _count(self, model_name: str, outcome: str, rows: int) -> None:
        if self.on_rows is not None:
            self.on_rows(model_name, outcome, rows)

    def _run(self) -> None:
        buffered: dict[str, int] = {}
        """Rows per model written to the file buffer since the last flush: counted once flushed."""
        while True:
            entry = self._queue.get()
            if entry is None:
                break
            try:
                lines = list(format_lines(entry, self.output_name))
                self._file.writelines(lines)
            except Exception as err:  # a bad row or a full disk costs log rows, never requests
                self._failed(entry[1].name, _row_count(entry), err)
                continue
            buffered[entry[1].name] = buffered.get(entry[1].name, 0) + len(lines)
            if self._queue.empty():  # flush when idle, so readers see rows within moments
                self._flush(buffered)
        self._flush(buffered)
        try:
            self._file.close()
        except OSError as err:
            LOG.error("Request log %s: closing failed (%s)", self.path, err)

    def _flush(self, buffered: dict[str, int]) -> None:
        try:
            self._file.flush()
        except OSError as err:
            for model_name, rows in buffered.items():
                self._failed(model_name, rows, err)
        else:
            for model_name, rows in buffered.items():
                self._count(model_name, "written", rows)
            self._failing = False
        buffered.clear()

    def _failed(self, model_name: str, rows: int, err: Exception) -> None:
        self._count(model_name, "failed", rows)
        if not self._failing:  # once per run of failures, not once per row
            LOG.error("Request log %s: write failed (%s); failed rows are counted in the metrics", self.path, err)
        self._failing = True

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, then closes the file."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            LOG.error("Request log %s: could not drain the queue in %.0f s", self.path, timeout)
            return
        self._thread.join(timeout=timeout)
