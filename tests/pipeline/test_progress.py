"""progress.divert_stderr: what bypasses logging (child processes, shutdown noise) goes to the run's log."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import progress
from pipeline.config import PROJECT_ROOT


@pytest.fixture
def restore_stderr() -> Iterator[None]:
    """divert_stderr lasts for the rest of a CLI process; a test process gets its stderr back."""
    saved = os.dup(2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def test_child_processes_write_to_the_log_and_the_cli_to_the_terminal(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], restore_stderr: None) -> None:
    log = tmp_path / "pipeline.log"
    terminal = progress.divert_stderr(log)
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker noise\\n')"], check=True)
    print("error: for the user", file=terminal)
    assert log.read_text() == "worker noise\n"
    assert capfd.readouterr().err == "error: for the user\n"


def test_what_the_process_prints_at_exit_goes_to_the_log(tmp_path: Path) -> None:
    """Objects collected at interpreter shutdown print there (TensorFlow's 'Exception ignored')."""
    log = tmp_path / "pipeline.log"
    script = ("import sys; from pathlib import Path; from pipeline import progress\n"
              f"terminal = progress.divert_stderr(Path({str(log)!r}))\n"
              "print('error: shown', file=terminal)\n"
              "class Noisy:\n    def __del__(self): raise TypeError('at exit')\n"
              "keep = Noisy()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=PROJECT_ROOT)
    assert proc.stderr == "error: shown\n"
    assert "TypeError: at exit" in log.read_text()


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, msg, args, None)


def test_progress_lines_count_against_the_total_the_runner_sets_once_the_pipeline_is_built() -> None:
    out = io.StringIO()
    handler = progress.ProgressHandler(out, verbose=False)
    handler.total = 14  # cli._run_pipeline: len(pipeline.components)
    handler.emit(record("Component %s is running.", "CsvExampleGen"))
    handler.emit(record("Component %s is finished.", "CsvExampleGen"))
    handler.emit(record("Component %s is running.", "StatisticsGen"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[ 1/14] CsvExampleGen") and lines[0].endswith(" s")
    assert lines[1].startswith("[ 2/14] StatisticsGen")
    assert list(handler.times.seconds) == ["CsvExampleGen"] and handler.times.running == "StatisticsGen"
