"""DirectRunner: one session run per request on its own worker threads (no batching)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.api.service import SESSION_RUN_THREAD_PREFIX, DirectRunner
from serving.core.errors import Code, ServingError
from serving.core.servable import Servable
from serving.core.types import ServableId


@pytest.fixture(scope="module")
def servable(model_store: Path) -> Servable:
    return Servable.load(ServableId("tf2", 1), model_store / "tf2_v1")


class Outcomes:
    """`done` callbacks that record (outputs, error, thread name) and signal each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Exception | None, str]] = []
        self.event = threading.Semaphore(0)

    def done(self, outputs: Any, error: Exception | None) -> None:
        self.calls.append((outputs, error, threading.current_thread().name))
        self.event.release()

    def wait(self, count: int) -> None:
        for _ in range(count):
            assert self.event.acquire(timeout=30), "done was not called"


def test_runs_each_request_on_a_session_run_thread(servable: Servable) -> None:
    runner = DirectRunner(3)
    outcomes = Outcomes()
    try:
        signature = servable.signatures["serving_default"]
        for x in (1.0, 2.0, 4.0):
            runner.submit(signature, {"x": np.array([x], np.float32)}, 0, outcomes.done)
        outcomes.wait(3)
    finally:
        runner.shutdown()
    assert sorted(float(out["y"][0]) for out, _, _ in outcomes.calls) == [2.5, 3.0, 4.0]  # y = x/2 + 2
    assert all(error is None for _, error, _ in outcomes.calls)
    assert {name for _, _, name in outcomes.calls} <= {f"{SESSION_RUN_THREAD_PREFIX}_{i}" for i in range(3)}
    assert [t.name for t in runner.threads] == [f"{SESSION_RUN_THREAD_PREFIX}_{i}" for i in range(3)]


def test_a_runtime_error_reaches_done_as_a_status(servable: Servable) -> None:
    runner = DirectRunner(1)
    outcomes = Outcomes()
    try:
        runner.submit(servable.signatures["serving_default"], {"x": np.array(["not a number"], object)}, 0,
                      outcomes.done)
        outcomes.wait(1)
    finally:
        runner.shutdown()
    [(outputs, error, _)] = outcomes.calls
    assert outputs is None
    assert isinstance(error, ServingError) and error.code == Code.INVALID_ARGUMENT


def test_a_failing_done_is_logged_and_the_thread_keeps_serving(servable: Servable,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    runner = DirectRunner(1)
    outcomes = Outcomes()

    def broken(outputs: Any, error: Exception | None) -> None:
        raise RuntimeError("bug in a callback")

    signature = servable.signatures["serving_default"]
    try:
        with caplog.at_level(logging.ERROR, logger="serving.api.service"):
            runner.submit(signature, {"x": np.array([1.0], np.float32)}, 0, broken)
            runner.submit(signature, {"x": np.array([6.0], np.float32)}, 0, outcomes.done)
            outcomes.wait(1)
    finally:
        runner.shutdown()
    assert float(outcomes.calls[0][0]["y"][0]) == 5.0
    assert any("bug in a callback" in (r.exc_text or "") for r in caplog.records)


def test_after_shutdown_threads_stop_and_submit_is_refused(servable: Servable) -> None:
    runner = DirectRunner(2)
    runner.shutdown()
    for thread in runner.threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    with pytest.raises(ServingError) as refused:
        runner.submit(servable.signatures["serving_default"], {"x": np.array([1.0], np.float32)}, 0,
                      Outcomes().done)
    assert refused.value.code == Code.UNAVAILABLE


def test_needs_at_least_one_thread() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DirectRunner(0)
