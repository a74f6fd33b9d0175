"""`serving/observability/request_log.py`: one JSON line per row, a bounded queue that drops rather than blocks,
write errors counted."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from serving.core.types import ServableId
from serving.observability import request_log
from serving.observability.request_log import format_lines
from tests.serving.observability.conftest import recording_log


def test_request_log_lines() -> None:
    inputs = {"Age": np.array([30, 41]), "Income": np.array([[1.1], [2.5]], dtype=np.float32),
              "Gender": np.array([b"Male", b"\xff\xfe"], dtype=object)}
    lines = list(format_lines((12.3456, ServableId("m", 3), inputs, np.array([0.25, 0.75], np.float32)), "p_churn"))
    first, second = (json.loads(x) for x in lines)
    assert first == {"time": 12.346, "model_name": "m", "version": 3, "p_churn": 0.25,  # the observed output's name
                     "inputs": {"Age": 30, "Income": 1.1, "Gender": "Male"}}
    assert second["inputs"]["Gender"] == {"b64": "//4="} and second["inputs"]["Income"] == 2.5
    assert all(x.endswith("\n") and x.count("\n") == 1 for x in lines)


def test_request_log_drops_rows_when_its_queue_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    real = request_log.format_lines

    def slow(entry: tuple, output_name: str) -> Iterator[str]:
        started.set()
        release.wait(10)
        return real(entry, output_name)

    monkeypatch.setattr(request_log, "format_lines", slow)
    log, counted = recording_log(tmp_path / "r.jsonl", max_pending=1)
    row = {"x": np.array([1.0, 2.0])}
    probabilities = np.array([0.1, 0.2])
    log.submit(ServableId("m", 1), row, probabilities)  # taken by the writer, which now waits
    assert started.wait(10)
    log.submit(ServableId("m", 1), row, probabilities)  # queued
    log.submit(ServableId("m", 1), row, probabilities)  # queue full: dropped, at once
    assert counted == [("m", "dropped", 2)]
    release.set()
    log.close()
    assert {outcome for _, outcome, _ in counted[1:]} == {"written"} and sum(n for *_, n in counted[1:]) == 4
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 4


def test_request_log_write_errors_are_counted_not_raised() -> None:
    log, counted = recording_log(Path("/dev/full"))  # every flush fails with ENOSPC
    for _ in range(3):
        log.submit(ServableId("m", 1), {"x": np.array([1.0])}, np.array([0.5]))
    log.close()
    assert {outcome for _, outcome, _ in counted} == {"failed"} and sum(n for *_, n in counted) == 3
