"""Worker-thread results -> event-loop replies, under the REST deadline.

A request that runs a model finishes on a worker thread (a batch thread or the session pool).
Its response is built right there, while that thread holds the GIL anyway, and the finished
replies of a whole batch reach the event loop through one `call_soon_threadsafe`, not one each:
every wake-up is a syscall plus a GIL hand-off, which at thousands of requests per second cost
more than the model. Whichever comes first, the result or the deadline, answers the request;
exactly one response is built (and so counted in the metrics).
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any, Callable, List, Tuple, TypeVar

T = TypeVar("T")
_Delivery = Tuple["asyncio.Future[Any]", asyncio.TimerHandle, Any]


class LoopBridge:
    """Hands worker-thread results to one event loop; see module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_seconds: float) -> None:
        self._loop = loop
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._ready: List[_Delivery] = []

    def reply(self, future: "Future[Any]", respond: Callable[["Future[Any]"], T],
              expire: Callable[[], T]) -> "asyncio.Future[T]":
        """An event-loop future for `respond(done_future)` (built on the finishing thread), or
        for `expire()` once the deadline passes first. Call it on the loop thread."""
        reply: "asyncio.Future[T]" = self._loop.create_future()
        claim = threading.Lock()

        def on_deadline() -> None:
            if claim.acquire(blocking=False):
                reply.set_result(expire())

        timer = self._loop.call_later(self._timeout, on_deadline)

        def on_done(done: "Future[Any]") -> None:
            if claim.acquire(blocking=False):
                self._post((reply, timer, respond(done)))

        future.add_done_callback(on_done)
        return reply

    def _post(self, delivery: _Delivery) -> None:
        with self._lock:
            self._ready.append(delivery)
            first = len(self._ready) == 1
        if first:  # later ones ride along with the drain already scheduled
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for reply, timer, response in ready:
            timer.cancel()
            reply.set_result(response)
