"""Shared end-to-end fixtures: one real pipeline run on bundled-style data, reused by every e2e test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data.generate import generate
from pipeline.config import PROJECT_ROOT

BEAM_SPY = Path(__file__).with_name("beam_spy")


def run_pipeline(tmp: Path, *args: str, beam_spy: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run the CLI in a fresh process (as `make pipeline` does) and return its summary JSON.

    beam_spy: a file to log each executed Beam pipeline's runner settings to (beam_spy/sitecustomize.py).
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # the CLI must set it itself
    if beam_spy is not None:
        env["CHURN_BEAM_SPY_LOG"] = str(beam_spy)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BEAM_SPY), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "local_pipeline.py"), "--output", str(tmp / "out"),
         "--serving-dir", str(tmp / "serving"), *args],
        capture_output=True, text=True, env=env, timeout=900,
    )
    summary_path = tmp / "out" / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return proc, summary


def versions(tmp: Path) -> list[str]:
    base = tmp / "serving" / "customer-model"
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


@pytest.fixture(scope="session")
def bundled_style(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """A pipeline run on 4,000 generated rows: (tmp dir with serving/customer-model/<version>, process, summary)."""
    tmp = tmp_path_factory.mktemp("bundled")
    generate(4000, seed=7).to_csv(tmp / "customers.csv", index=False)
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "8",
                                 beam_spy=tmp / "beam_runs.jsonl")
    return tmp, proc, summary
