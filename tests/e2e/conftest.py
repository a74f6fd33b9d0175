"""Shared end-to-end fixtures: one real pipeline run on bundled-style data, reused by every e2e test."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.facts import PROJECT_ROOT
from data.generate import generate
from simulation import simulate
from tests.helpers import run_pipeline


@pytest.fixture(scope="session")
def bundled_style(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """A pipeline run on 4,000 generated rows: (tmp dir with serving/customer-model/<version>, process, summary)."""
    tmp = tmp_path_factory.mktemp("bundled")
    generate(4000, seed=7).to_csv(tmp / "customers.csv", index=False)
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "8",
                                 beam_spy=tmp / "beam_runs.jsonl")
    return tmp, proc, summary


@pytest.fixture(scope="session")
def variant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """One run with the non-default execution flags, each checked by its own tests (one run instead of two):
    Beam on two worker processes (`--beam-mode multi_processing --beam-workers 2`, logged by BEAM_SPY to
    `beam_runs.jsonl`) and the Tuner (`--tune 10`), on 2,000 generated rows, 2 epochs, `--min-auc 0`.
    The run's system temp dir (TMPDIR) is `<tmp>/system_temp`. Returns (tmp dir, process, summary) as
    `bundled_style`."""
    tmp = tmp_path_factory.mktemp("variant")
    generate(2000, seed=3).to_csv(tmp / "customers.csv", index=False)
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "2", "--min-auc", "0",
                                 "--beam-mode", "multi_processing", "--beam-workers", "2", "--tune", "10",
                                 beam_spy=tmp / "beam_runs.jsonl", temp_dir=tmp / "system_temp")
    return tmp, proc, summary


SIMULATION = {"months": 7, "shift_at": 3, "customers": 2500, "window": 2, "max_epochs": 8}
"""The shared simulation's scenario: months 0-2 stationary, the shift at 3, by month 5 a candidate trained on
shifted months only (window 2: months 3 and 4), and a month 6 scored by a model retrained on labels from after the
shift (the run judged on month 4, trained on 2 and 3), so the quality alert on the stale model resolves
(tests/e2e/test_simulation_outcomes.py): with 6 months, month 5's model was trained before the shift, pushed or
not by a coin flip between two stale models. Small months keep it to six pipeline runs."""
SIMULATION_TIMEOUT_S = 3600
"""Five pipeline runs, a model server and four hot swaps on a shared 2-core machine."""


@pytest.fixture(scope="session")
def simulated_months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """`python -m simulation` on SIMULATION's scenario: (its --output folder, the process, simulation.json).

    The folder holds what a simulation leaves (docs/pipeline.md, "The simulated year"): `spans/` (the labelled
    spans the pipeline read), `generated/` (every month with its labels), `predictions.sqlite` (the prediction
    store: each month's REST scores, period = the month), `logs/` (each run's output and run_summary.json),
    `pipeline/` (the pipeline root and ML Metadata), `serving/` (the pushed versions) and the two reports.
    """
    out = tmp_path_factory.mktemp("simulation") / "sim"
    s = SIMULATION
    proc = subprocess.run(
        [sys.executable, "-m", "simulation", "--months", str(s["months"]), "--shift-at", str(s["shift_at"]),
         "--customers", str(s["customers"]), "--window", str(s["window"]), "--max-epochs", str(s["max_epochs"]),
         "--output", str(out)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=SIMULATION_TIMEOUT_S)
    result_path = out / simulate.RESULT_FILE
    return out, proc, json.loads(result_path.read_text()) if result_path.exists() else {}
