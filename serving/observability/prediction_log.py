"""Optional prediction recording (`--prediction_store_url`, our extension; TF Serving keeps no predictions).

Each predicted row of a signature that carries ids is appended to the prediction store
(`monitoring/prediction_store.py`, any SQLAlchemy URL): customer id, model version, signature, period
(UTC month), timestamp, probability, decision at the version's threshold, source (`rest` or `grpc`).

Which signature carries ids, and what is the probability, is not known to the server: the probability is
the observed output (`--observed_output`, named by the launcher), and the id is the output named by
`--prediction_id_output`, or else the one output that echoes an input of the same name (what a
`serving_with_ids` signature does: it takes the id column and returns it with the prediction). A
signature with neither is not recorded. The decision threshold is read once per version from the
version folder (`PredictionStore`'s `model_threshold`: the churn model's `assets.extra/threshold.json`).

As the request log (serving/observability/request_log.py): the request path only puts references on a
bounded queue; a background thread builds the rows and writes them, several requests per transaction.
When the queue is full rows are dropped and counted; a store that cannot be opened or written costs
rows (counted `failed`, logged once per run of failures), never a request. The store is opened by the
writer thread, so a database that is down at start-up delays recording, not serving.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.core.servable import Signature
from serving.core.types import ServableId, TensorMap

LOG = logging.getLogger(__name__)
DEFAULT_MAX_PENDING = 10_000
"""Requests waiting to be written; beyond this, rows are dropped rather than held in memory."""
MAX_REQUESTS_PER_WRITE = 512
"""Queued requests written together in one transaction (a commit per request cannot keep up with SQLite)."""
RowsObserver = Callable[[str, str, int], None]
"""(model name, outcome: written | dropped | failed, rows)."""


@dataclass(frozen=True)
class _Entry:
    scored_at: float
    servable_id: ServableId
    model_dir: Path
    signature: str
    source: str
    ids: npt.NDArray[Any]
    probabilities: npt.NDArray[Any]

    @property
    def rows(self) -> int:
        return int(self.probabilities.size)


def id_output(signature: Signature, named: str | None) -> str | None:
    """The output of `signature` holding the customer id, or None when it carries none.

    `named` (`--prediction_id_output`) when the signature has that output; without a name, the single
    output whose alias is also an input alias (an id passed through). Several such outputs are ambiguous:
    None (the launcher must name one).
    """
    if named is not None:
        return named if named in signature.outputs else None
    echoed = [alias for alias in signature.outputs if alias in signature.inputs]
    return echoed[0] if len(echoed) == 1 else None


def _id_text(values: npt.NDArray[Any]) -> list[str]:
    """One id per row as text: bytes decoded as UTF-8 (invalid bytes escaped), numbers as `str(int)`."""
    flat = values.reshape(-1)
    if flat.dtype.kind in "iu":
        return [str(v) for v in flat.tolist()]
    if flat.dtype.kind == "f":
        return [str(int(v)) if float(v).is_integer() else str(v) for v in flat.tolist()]
    return [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]


class PredictionLog:
    """Appends predictions to a prediction store from a background thread; `close()` drains the queue first.

    Args:
      url: the store's SQLAlchemy URL (`sqlite:///...`, `postgresql+psycopg2://...`).
      probability_output: the observed output holding a probability in [0, 1] per row.
      id_output_name: the output holding the customer id (None: the echoed input, see `id_output`).
      max_pending: queued requests beyond which rows are dropped (counted).
    """

    def __init__(self, url: str, probability_output: str, id_output_name: str | None = None,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.url = url
        self.probability_output = probability_output
        self.id_output_name = id_output_name
        self.on_rows: RowsObserver | None = None
        self._ids: weakref.WeakKeyDictionary[Signature, str | None] = weakref.WeakKeyDictionary()
        """Each served signature's id output, worked out once (forgotten with its unloaded version)."""
        self._store: Any = None
        self._thresholds: dict[Path, float] = {}
        self._failing = False
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _id_output(self, signature: Signature) -> str | None:
        try:
            return self._ids[signature]
        except KeyError:
            found = self._ids[signature] = id_output(signature, self.id_output_name)
            return found

    def submit(self, servable_id: ServableId, model_dir: Path, signature: Signature, outputs: TensorMap,
               source: str) -> None:
        """Queues one answered request's rows when `signature` carries ids and the probability; never
        blocks and never raises."""
        try:
            name = self._id_output(signature)
            probabilities = outputs.get(self.probability_output)
            if name is None or probabilities is None or name not in outputs:
                return
            entry = _Entry(time.time(), servable_id, model_dir, signature.name, source, outputs[name],
                           probabilities)
        except Exception:  # never a request's failure
            LOG.exception("Prediction log: could not queue a request's rows")
            return
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._count(servable_id.name, "dropped", entry.rows)

    def _count(self, model_name: str, outcome: str, rows: int) -> None:
        if self.on_rows is not None and rows:
            self.on_rows(model_name, outcome, rows)

    def _run(self) -> None:
        done = False
        while not done:
            entries = [self._queue.get()]
            while len(entries) < MAX_REQUESTS_PER_WRITE and not self._queue.empty():
                entries.append(self._queue.get_nowait())
            done = any(e is None for e in entries)
            batch = [e for e in entries if e is not None]
            if batch:
                self._write(batch)
        if self._store is not None:
            self._store.close()

    def _write(self, entries: list[_Entry]) -> None:
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.servable_id.name] = counts.get(entry.servable_id.name, 0) + entry.rows
        try:
            frame, invalid = self._frame(entries)
            if len(frame):
                self._open().append_frame(frame, chunk_rows=max(len(frame), 1))
        except Exception as err:  # a bad row, a full disk or a database that is down costs rows, never requests
            for model_name, rows in counts.items():
                self._count(model_name, "failed", rows)
            if not self._failing:
                LOG.error("Prediction store %s: write failed (%s); failed rows are counted in the metrics",
                          self._safe_url(), err)
            self._failing = True
            return
        self._failing = False
        for model_name, rows in counts.items():
            self._count(model_name, "failed", invalid.get(model_name, 0))
            self._count(model_name, "written", rows - invalid.get(model_name, 0))

    def _open(self) -> Any:
        if self._store is None:
            from monitoring.prediction_store import PredictionStore  # SQLAlchemy only when recording

            self._store = PredictionStore(self.url)
        return self._store

    def _threshold(self, model_dir: Path) -> float:
        if model_dir not in self._thresholds:
            from monitoring.prediction_store import model_threshold

            self._thresholds[model_dir] = model_threshold(model_dir)
        return self._thresholds[model_dir]

    def _frame(self, entries: list[_Entry]) -> tuple[Any, dict[str, int]]:
        """The rows of `entries` as the store's DataFrame, and per model the rows left out (no usable id)."""
        import pandas as pd

        from monitoring.prediction_store import MAX_ID_LENGTH

        parts: list[Any] = []
        invalid: dict[str, int] = {}
        for entry in entries:
            ids = _id_text(entry.ids)
            probabilities = np.asarray(entry.probabilities, dtype=np.float64).reshape(-1)
            if len(ids) != len(probabilities):  # not one id per row: nothing to keep of this request
                invalid[entry.servable_id.name] = invalid.get(entry.servable_id.name, 0) + entry.rows
                continue
            keep = np.array([0 < len(i) <= MAX_ID_LENGTH for i in ids], dtype=bool) \
                & (probabilities >= 0) & (probabilities <= 1)
            if not keep.all():
                invalid[entry.servable_id.name] = invalid.get(entry.servable_id.name, 0) + int((~keep).sum())
            scored_at = datetime.fromtimestamp(entry.scored_at, timezone.utc).replace(tzinfo=None)
            parts.append(pd.DataFrame({
                "customer_id": np.asarray(ids, dtype=object)[keep], "model_version": entry.servable_id.version,
                "signature": entry.signature, "scored_at": scored_at, "probability": probabilities[keep],
                "threshold": self._threshold(entry.model_dir), "source": entry.source}))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if len(frame):
            frame["scored_at"] = pd.to_datetime(frame["scored_at"])
        return frame, invalid

    def _safe_url(self) -> str:
        """The URL without its password, for log lines."""
        try:
            import sqlalchemy as sa

            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return "(unparsable URL)"

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, then closes the store."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            LOG.error("Prediction store: could not drain the queue in %.0f s", timeout)
            return
        self._thread.join(timeout=timeout)
