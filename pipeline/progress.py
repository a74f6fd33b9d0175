"""Turns TFX's log records into one progress line per component, and hides the rest of the noise.

LocalDagRunner logs "Component X is running." / "is finished." and the launcher logs "A cached
execution ... is used." for cache hits; everything else TFX, Beam and TF log is hidden unless
`--verbose`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TextIO, cast

_RUNNING = "Component %s is running."
_FINISHED = "Component %s is finished."
_CACHED = "A cached execution %d is used."
_SKIPPED = "Skipping execution for %s"
_QUIET_LOGGERS = ("tensorflow", "apache_beam", "tfx", "ml_metadata", "tensorflow_transform", "absl")


@dataclasses.dataclass
class ComponentTimes:
    """What the progress handler saw: seconds per component, and which were cached or skipped."""

    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    cached: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    running: str | None = None


class ProgressHandler(logging.Handler):
    """Writes `  Name ........ 3.1 s` lines as components start and finish."""

    def __init__(self, out: TextIO, verbose: bool, total: int | None = None):
        super().__init__(logging.INFO)
        self.times = ComponentTimes()
        self.total = total
        """Components in the run (the `/N` of `[ i/N]`); the runner sets it once it has built the pipeline."""
        self._out = out
        self._verbose = verbose
        self._started = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == _RUNNING:
            self.times.running = str(cast(tuple[object, ...], record.args)[0])  # TFX logs `Running %s` with one arg
            self._started = time.monotonic()
            index = len(self.times.seconds) + 1
            line = f"[{index:>2}/{self.total or '?'}] {self.times.running:<32}"
            self._write(line + ("\n" if self._verbose else ""))
        elif record.msg == _CACHED and self.times.running:
            self.times.cached.append(self.times.running)
        elif record.msg == _SKIPPED and self.times.running:
            self.times.skipped.append(self.times.running)
        elif record.msg == _FINISHED and self.times.running:
            self._finish(self.times.running)

    def fail(self) -> None:
        """Close the line of the component that raised (its 'finished' record never comes)."""
        if self.times.running and self.times.running not in self.times.seconds:
            self._finish(self.times.running, failed=True)

    def _finish(self, name: str, failed: bool = False) -> None:
        seconds = time.monotonic() - self._started
        self.times.seconds[name] = round(seconds, 2)
        note = "failed" if failed else "cached" if name in self.times.cached else (
            "skipped" if name in self.times.skipped else "done")
        prefix = f"[--/{self.total or '?'}] {name:<32}" if self._verbose else ""
        self._write(f"{prefix}{note:>7} {seconds:7.1f} s\n")

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


def quiet_environment() -> None:
    """Set before TensorFlow is imported: hides TF's C++ log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def install(verbose: bool, total: int | None = None, out: TextIO = sys.stdout) -> ProgressHandler:
    """Route log records through a ProgressHandler; without `verbose` everything else is dropped.

    `total`: components in the run, if known yet (else set `handler.total` before the first one runs).
    """
    from absl import logging as absl_logging

    handler = ProgressHandler(out, verbose, total)
    # Through absl's verbosity flag, not Logger.setLevel: absl re-applies that flag to its logger
    # when flags get parsed mid-run (Transform does), which would silence the progress records.
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(handler)
    if verbose:
        return handler
    absl_logger.propagate = False
    warnings.filterwarnings("ignore")
    os.environ["PYTHONWARNINGS"] = "ignore"  # and in Beam's multi_processing worker processes
    for name in _QUIET_LOGGERS:
        if name != "absl":
            logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    absl_logging.get_absl_handler().setLevel(logging.ERROR)
    return handler


def divert_stderr(log: Path) -> TextIO:
    """Send file descriptor 2 to `log` for the rest of the process; returns a stream on the terminal's stderr.

    Logging filters cannot reach what bypasses them: Beam's multi_processing workers print warnings
    straight to the stderr they inherit, and TensorFlow objects collected at interpreter shutdown
    print "Exception ignored" tracebacks after the run is over. In the log file that output is there
    when a run fails; the CLI writes its own messages to the returned stream.
    """
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
    return terminal
