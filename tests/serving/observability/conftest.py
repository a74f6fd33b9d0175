"""The churn-model fixture these tests share with tests/monitoring (one definition, imported), and a request log
that records its counts."""
from __future__ import annotations

from pathlib import Path

from modules.features import PROBABILITY_OUTPUT
from serving.observability import request_log
from serving.observability.request_log import RequestLog
from tests.monitoring.conftest import model_base

__all__ = ["model_base", "recording_log"]


def recording_log(path: Path, max_pending: int = request_log.DEFAULT_MAX_PENDING
                  ) -> tuple[RequestLog, list[tuple[str, str, int]]]:
    """A request log at `path` whose (model, outcome, rows) counts are appended to the returned list."""
    log = RequestLog(path, PROBABILITY_OUTPUT, max_pending)
    counted: list[tuple[str, str, int]] = []
    log.on_rows = lambda *row: counted.append(row)
    return log, counted
