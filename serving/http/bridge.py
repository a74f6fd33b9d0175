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
import itertools
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


_Delivery = tuple[PendingReply[Any], int, _Respond, Any, Exception | None]
_Deadline = tuple[float, Any, PendingReply[Any], Callable[[], Any]]
"""(loop time of the deadline, the request's claim lock, its reply, its `expire`)."""


class LoopBridge:
    """Hands worker-thread results to one event loop; see module docstring.

    Deadlines: every request of a bridge has the same timeout, so deadlines come in the order
    requests do. Pending requests sit in one insertion-ordered dict (added by `reply`, removed when
    answered) and a single loop timer is armed at the oldest one's deadline, instead of one
    `call_later` timer per request that is armed and cancelled again (about 14 Python calls per
    request on the loop, plus heap upkeep for the cancelled timers).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_seconds: float) -> None:
        self._loop = loop
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._ready: list[_Delivery] = []
        self._deadlines: dict[int, _Deadline] = {}  # oldest first; touched only on the loop thread
        self._next_key = itertools.count().__next__
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Requests handed to a worker and not answered yet (read it on the loop thread)."""
        return len(self._deadlines)

    def reply(self, start: Callable[[Done], None], respond: Callable[[Any, Exception | None], T],
              expire: Callable[[], T]) -> PendingReply[T]:
        """Calls `start(done)`, which hands the work to a worker thread that will call
        `done(result, error)`; returns the pending `respond(result, error)` (called on the loop),
        or `expire()` once the deadline (`timeout_seconds` from now) passes first. If `start`
        raises, no deadline is armed and the error propagates. Call it on the loop thread."""
        reply: PendingReply[T] = PendingReply()
        claim = threading.Lock()
        key = self._next_key()

        def done(result: Any, error: Exception | None) -> None:
            if claim.acquire(blocking=False):
                self._post((reply, key, respond, result, error))

        start(done)
        deadline = self._loop.time() + self._timeout
        self._deadlines[key] = (deadline, claim, reply, expire)
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire_due)
        return reply

    def _expire_due(self) -> None:
        """Answers every pending request whose deadline has passed with its `expire()`, then arms
        the timer for the oldest one left."""
        self._timer = None
        deadlines = self._deadlines
        now = self._loop.time()
        while deadlines:
            key = next(iter(deadlines))
            deadline, claim, reply, expire = deadlines[key]
            if deadline > now:
                self._timer = self._loop.call_at(deadline, self._expire_due)
                return
            del deadlines[key]
            if claim.acquire(blocking=False):
                try:
                    reply.resolve(expire())
                except Exception:  # one request's bug must not leave the later deadlines unarmed
                    LOG.exception("Unhandled error answering a request past its deadline")

    def _post(self, delivery: _Delivery) -> None:
        with self._lock:
            self._ready.append(delivery)
            first = len(self._ready) == 1
        if first:  # later ones ride along with the drain already scheduled
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        # Runs on the loop after the reply() that registered each deadline has returned.
        with self._lock:
            ready, self._ready = self._ready, []
        deadlines = self._deadlines
        for reply, key, respond, result, error in ready:
            deadlines.pop(key, None)
            reply.resolve(respond(result, error))
