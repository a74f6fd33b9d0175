"""LoopBridge deadlines: one loop timer for all pending requests, nothing kept once a request is answered.

(The bridge's hand-over and refusal tests are in tests/serving/codec/test_encode.py.)
"""
from __future__ import annotations

import asyncio

from serving.core.types import Done
from serving.http.bridge import LoopBridge


def test_each_request_is_answered_once_by_its_result_or_its_own_deadline() -> None:
    """Requests started 30 ms apart: the ones that finish in time are answered by their result and
    forgotten at once; each of the others expires at its own deadline (not at the first one's),
    their late results are ignored, and nothing is left pending."""
    loop = asyncio.new_event_loop()
    bridge = LoopBridge(loop, timeout_seconds=0.3)
    callbacks: list[Done] = []
    answers: dict[int, object] = {}
    started: dict[int, float] = {}
    expired_at: dict[int, float] = {}

    def expire(index: int) -> str:
        expired_at[index] = loop.time()
        return "late"

    async def run() -> None:
        for index in range(6):  # deadlines at 300, 330, ..., 450 ms
            started[index] = loop.time()
            bridge.reply(callbacks.append, lambda r, e: r, lambda i=index: expire(i)).then(
                lambda value, i=index: answers.setdefault(i, value))
            await asyncio.sleep(0.03)
        for index in (2, 4):
            callbacks[index](f"ok {index}", None)
        await asyncio.sleep(0.01)
        assert bridge.pending == 4 and not expired_at
        await asyncio.sleep(0.6)
        for index in (0, 1, 3, 5):
            callbacks[index]("too late", None)
        await asyncio.sleep(0.02)
        assert bridge.pending == 0

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    assert answers == {0: "late", 1: "late", 2: "ok 2", 3: "late", 4: "ok 4", 5: "late"}
    assert sorted(expired_at) == [0, 1, 3, 5]
    for index, at in expired_at.items():
        assert at - started[index] >= 0.3 - 1e-3  # never before its own deadline
