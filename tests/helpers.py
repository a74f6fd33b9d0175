"""What process and end-to-end tests share, in one place: a free port, running the pipeline's command line,
the model versions a run pushed, and a model server process that cannot outlive its test. Exit codes are the
product's own (`common.exit_codes`)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.facts import MODEL_NAME, PROJECT_ROOT

PIPELINE_SCRIPT = PROJECT_ROOT / "local_pipeline.py"
"""The local runner's command line (`make pipeline`)."""
BEAM_SPY = Path(__file__).parent / "e2e" / "beam_spy"
"""A sitecustomize.py that logs each executed Beam pipeline's runner settings (see its docstring)."""
PIPELINE_TIMEOUT_S = 900
"""A whole pipeline run in a test (minutes on a shared 2-core machine)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python local_pipeline.py ARGS` in a fresh process, output captured."""
    return subprocess.run([sys.executable, str(PIPELINE_SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_pipeline(tmp: Path, *args: str, beam_spy: Path | None = None,
                 temp_dir: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the pipeline into `tmp/out` and `tmp/serving` (as `make pipeline` does) and return its summary JSON.

    beam_spy: a file to log each executed Beam pipeline's runner settings to (BEAM_SPY).
    temp_dir: the system temp dir (TMPDIR) the run sees.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # the CLI must set it itself
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(temp_dir)
    if beam_spy is not None:
        env["CHURN_BEAM_SPY_LOG"] = str(beam_spy)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BEAM_SPY), env.get("PYTHONPATH")) if p)
    proc = run_cli("--output", str(tmp / "out"), "--serving-dir", str(tmp / "serving"), *args,
                   timeout=PIPELINE_TIMEOUT_S, env=env)
    summary_path = tmp / "out" / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return proc, summary


def versions(tmp: Path) -> list[str]:
    """Model versions pushed under `tmp/serving` (run_pipeline's serving dir), sorted as text."""
    base = tmp / "serving" / MODEL_NAME
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


@contextmanager
def served_process(log_path: Path, base: Path, *flags: str, model_name: str = "m",
                   wrapper: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m serving --model_base_path=BASE --model_name=MODEL_NAME FLAGS` (run under `wrapper`, a command
    prefix), its output going to `log_path`. On leaving the block, `stop_process` ends a server still running,
    so a failing test leaves no server behind."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "serving", f"--model_base_path={base}", f"--model_name={model_name}",
             *flags], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM `process` if it still runs, SIGKILL it if it has not ended `timeout` s later; returns once it ended."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_line(process: subprocess.Popen[bytes], log_path: Path, text: str, timeout: float = 120) -> None:
    """Wait until `text` appears in `log_path`; fails (with the log) if `process` ends first or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)
