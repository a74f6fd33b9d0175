"""Dynamic batching of signature runs (TF Serving's `BasicBatchScheduler` + batching session).

Requests for the same signature whose inputs share dtypes and inner shapes are concatenated on
dim 0 into one session run, and the outputs are split back. A batch closes when it is full
(`max_batch_size`), when `batch_timeout_micros` has passed since it opened, or when a newer
batch exists; with the default timeout of 0 a free thread takes whatever is waiting, so batches
grow only while all `num_batch_threads` are busy. When `max_enqueued_batches` batches are
already waiting, a request that needs a new batch is refused with UNAVAILABLE (HTTP 503).

Submitted from an asyncio event loop's thread (the REST server), a task waits in a per-loop-turn
list that one `loop.call_soon` callback hands to the queues under one lock, after every request
that loop turn read: a batch thread then sees a whole turn's requests at once, not whatever part
the loop had handed over when the thread got the GIL (docs/performance.md, issue 14). A full queue
then answers that request `done(None, UnavailableError)` instead of raising; other threads (gRPC)
enqueue at once, as before.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.core.errors import FailedPreconditionError, InvalidArgumentError, ServingError, UnavailableError
from serving.core.servable import Signature
from serving.core.types import Done, TensorMap
from serving.observability.metrics import ServingMetrics

LOG = logging.getLogger(__name__)

QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"


@dataclass(frozen=True)
class BatchingOptions:
    """`BatchingParameters` with TF Serving's defaults; validated on construction."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    thread_pool_name: str = "batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"Batching parameter {name} must be >= 1, got {getattr(self, name)}.")
        if self.batch_timeout_micros < 0:
            raise ValueError("Batching parameter batch_timeout_micros must be >= 0.")
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError("allowed_batch_sizes must be increasing and end with max_batch_size.")


_Key = tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...]


class _Task:
    __slots__ = ("inputs", "rows", "done", "enqueued")

    def __init__(self, inputs: TensorMap, rows: int, done: Done) -> None:
        self.inputs = inputs
        self.rows = rows
        self.done = done
        self.enqueued = time.perf_counter()

    def finish(self, result: Any, error: Exception | None) -> None:
        try:
            self.done(result, error)
        except Exception:  # a bug in one request's callback must not cost the batch its answers
            LOG.exception("Unhandled error delivering a batched result")


class _Batch:
    __slots__ = ("key", "tasks", "rows", "opened", "timeout_ms")

    def __init__(self, key: _Key, timeout_ms: int) -> None:
        self.key = key
        self.tasks: list[_Task] = []
        self.rows = 0
        self.opened = time.monotonic()
        self.timeout_ms = timeout_ms


def _task_key(inputs: TensorMap) -> tuple[_Key, int]:
    """What tasks must share to be concatenated (names, dtypes, inner shapes), and the rows."""
    rows = -1
    key = []
    for name in sorted(inputs):
        array = inputs[name]
        shape = array.shape
        if not shape:  # batching_session.cc ComputeInputSize
            raise InvalidArgumentError(
                "Batching session Run() input tensors must have at least one dimension")
        if rows not in (-1, shape[0]):
            rows = -2
            break
        rows = shape[0]
        key.append((name, array.dtype, shape[1:]))
    if rows < 0:
        raise InvalidArgumentError(
            "Batching session Run() input tensors must have equal 0th-dimension size")
    return tuple(key), rows


class BatchScheduler:
    """A `Runner` that batches; see module docstring."""

    def __init__(self, options: BatchingOptions, metrics: ServingMetrics) -> None:
        self.options = options
        self._metrics = metrics
        self._queues: dict[Signature, deque[_Batch]] = {}
        self._cond = threading.Condition()
        self._stopped = False
        self._turns: dict[asyncio.AbstractEventLoop, list[tuple[Signature, _Key, int, _Task]]] = {}
        """Per event loop, the tasks submitted in its current turn (touched on that loop's thread only)."""
        self._threads = [
            threading.Thread(target=self._work, name=f"{options.thread_pool_name}-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, signature: Signature, inputs: TensorMap, timeout_ms: int, done: Done) -> None:
        """Queues one request; `done(outputs, error)` is called on a batch thread.

        Raises:
          InvalidArgumentError: inputs without a dim 0, unequal dim 0, or more rows than
            `max_batch_size` (TF Serving's messages).
          UnavailableError: the queue is full (`max_enqueued_batches`), off an event loop; on a
            loop's thread this reaches `done` instead, when the loop turn's requests are queued.
        """
        key, rows = _task_key(inputs)
        limit = self.options.max_batch_size
        if rows > limit:
            raise InvalidArgumentError(f"Task size {rows} is larger than maximum input batch size {limit}")
        item = (signature, key, timeout_ms, _Task(inputs, rows, done))
        loop = asyncio._get_running_loop()  # the C-level getter: None off a loop's thread
        if loop is None:
            with self._cond:
                self._enqueue(*item)
            return
        turn = self._turns.get(loop)
        if turn is None:
            self._turns[loop] = turn = []
            loop.call_soon(self._flush, loop)
        turn.append(item)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queues one loop turn's tasks under one lock; refusals go to their own `done`."""
        turn = self._turns.pop(loop)
        refused: list[tuple[_Task, ServingError]] = []
        with self._cond:
            for signature, key, timeout_ms, task in turn:
                if self._stopped:
                    refused.append((task, UnavailableError("Server is shutting down")))
                    continue
                try:
                    self._enqueue(signature, key, timeout_ms, task)
                except UnavailableError as err:
                    refused.append((task, err))
        for task, refusal in refused:
            task.finish(None, refusal)

    def _enqueue(self, signature: Signature, key: _Key, timeout_ms: int, task: _Task) -> None:
        """Adds a task to its signature's newest batch or a new one; call with `_cond` held."""
        limit = self.options.max_batch_size
        rows = task.rows
        queue = self._queues.setdefault(signature, deque())
        batch = queue[-1] if queue else None
        opened = batch is None or batch.key != key or batch.rows + rows > limit
        if opened:
            if len(queue) >= self.options.max_enqueued_batches:
                raise UnavailableError(QUEUE_FULL_MESSAGE)
            batch = _Batch(key, timeout_ms)
            queue.append(batch)
        batch.tasks.append(task)  # type: ignore[union-attr]
        batch.rows += rows  # type: ignore[union-attr]
        # Only a new batch or a full one changes what a waiting thread would do; waking a
        # thread for every task cost a GIL hand-off each, only for it to wait again.
        if opened or batch.rows >= limit:  # type: ignore[union-attr]
            self._cond.notify()

    def _take(self) -> tuple[Signature | None, _Batch | None, float | None]:
        """The oldest closable batch, or the time to wait for the next one to close."""
        now = time.monotonic()
        timeout = self.options.batch_timeout_micros / 1e6
        best: tuple[Signature, _Batch] | None = None
        wait: float | None = None
        for signature, queue in self._queues.items():
            if not queue:
                continue
            head = queue[0]
            due = head.opened + timeout
            if head.rows >= self.options.max_batch_size or len(queue) > 1 or now >= due:
                if best is None or head.opened < best[1].opened:
                    best = (signature, head)
            else:
                wait = due - now if wait is None else min(wait, due - now)
        if best is None:
            return None, None, wait
        self._queues[best[0]].popleft()
        if not self._queues[best[0]]:
            del self._queues[best[0]]
        return best[0], best[1], None

    def _work(self) -> None:
        while True:
            with self._cond:
                signature, batch, wait = self._take()
                while batch is None:
                    if self._stopped:
                        return
                    self._cond.wait(wait)
                    signature, batch, wait = self._take()
            self._run(signature, batch)  # type: ignore[arg-type]

    def _run(self, signature: Signature, batch: _Batch) -> None:
        tasks = batch.tasks
        started = time.perf_counter()
        padded = next((s for s in self.options.allowed_batch_sizes if s >= batch.rows), batch.rows)
        inputs = {}
        for name in tasks[0].inputs:
            parts = [t.inputs[name] for t in tasks]
            if padded > batch.rows:
                parts.append(np.repeat(parts[0][:1], padded - batch.rows, axis=0))
            inputs[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        try:
            outputs = signature.run(inputs, batch.timeout_ms)
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise FailedPreconditionError(
                        f"Batched output tensor {name} has {value.shape[0] if value.ndim else 0} "
                        f"elements in 0th dimension, but expected {padded}")
        except ServingError as err:
            for task in tasks:
                task.finish(None, err)
            return
        self._metrics.record_batch(self.options.thread_pool_name, padded,
                                   [(started - t.enqueued) * 1e6 for t in tasks])
        offset = 0
        for task in tasks:
            task.finish({k: v[offset: offset + task.rows] for k, v in outputs.items()}, None)
            offset += task.rows

    def shutdown(self) -> None:
        with self._cond:
            self._stopped = True
            for queue in self._queues.values():
                for batch in queue:
                    for task in batch.tasks:
                        task.finish(None, UnavailableError("Server is shutting down"))
            self._queues.clear()
            self._cond.notify_all()
