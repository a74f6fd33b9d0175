"""Worker-thread results -> event-loop replies, under the REST deadline.

A request that runs a model finishes on a worker thread (a batch thread or the session pool).
The worker only hands the outputs over; the response is encoded on the event loop. Threads take
turns on the GIL, and every turn is a futex wake-up plus a context switch: a worker that also
encoded a whole batch of responses held the GIL in long stretches that stalled the loop after
each of its socket calls (measured with bench/bench_serving.py: docs/performance.md, "Model server").
The finished requests of a batch reach the loop through one `call_soon_threadsafe`, not one each.
Whichever comes first, the result or the deadline, answers the request; exactly one response is
built (and so counted in the metrics).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from serving.core.types import Done

LOG = logging.getLogger(__name__)
T = TypeVar("T")
_Respond = Callable[[Any, Exception | None], Any]


class PendingReply(Generic[T]):
    """A reply still being computed. `then(callback)` receives it once, on the loop thread, as
    soon as it is ready: lighter than an `asyncio.Future`, whose callbacks each cost a loop turn."""

    __slots__ = ("_callback", "_value", "_ready")

    def __init__(self) -> None:
        self._callback: Callable[[T], None] | None = None
        self._value: T | None = None
        self._ready = False

    def then(self, callback: Callable[[T], None]) -> None:
        if self._ready:
            callback(self._value)  # type: ignore[arg-type]
        else:
            self._callback = callback

    def resolve(self, value: T) -> None:
        """Called once, on the loop thread; a failing callback is logged, never raised."""
        self._value, self._ready = value, True
        if self._callback is not None:
            try:
                self._callback(value)
            except Exception:  # one connection's bug must not cost the other replies
                LOG.exception("Unhandled error delivering a reply")


_Delivery = tuple[PendingReply[Any], list[asyncio.TimerHandle], _Respond, Any, Exception | None]


class LoopBridge:
    """Hands worker-thread results to one event loop; see module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_seconds: float) -> None:
        self._loop = loop
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._ready: list[_Delivery] = []

    def reply(self, start: Callable[[Done], None], respond: Callable[[Any, Exception | None], T],
              expire: Callable[[], T]) -> PendingReply[T]:
        """Calls `start(done)`, which hands the work to a worker thread that will call
        `done(result, error)`; returns the pending `respond(result, error)` (called on the loop),
        or `expire()` once the deadline passes first. If `start` raises, no deadline is armed
        and the error propagates. Call it on the loop thread."""
        reply: PendingReply[T] = PendingReply()
        claim = threading.Lock()
        timer: list[asyncio.TimerHandle] = []  # armed after start(); read only on the loop thread

        def done(result: Any, error: Exception | None) -> None:
            if claim.acquire(blocking=False):
                self._post((reply, timer, respond, result, error))

        start(done)

        def on_deadline() -> None:
            if claim.acquire(blocking=False):
                reply.resolve(expire())

        timer.append(self._loop.call_later(self._timeout, on_deadline))
        return reply

    def _post(self, delivery: _Delivery) -> None:
        with self._lock:
            self._ready.append(delivery)
            first = len(self._ready) == 1
        if first:  # later ones ride along with the drain already scheduled
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        # Runs on the loop after the reply() that armed each timer has returned.
        with self._lock:
            ready, self._ready = self._ready, []
        for reply, timer, respond, result, error in ready:
            timer[0].cancel()
            reply.resolve(respond(result, error))
