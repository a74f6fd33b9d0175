"""Shared end-to-end fixtures: one real pipeline run on bundled-style data, reused by every e2e test."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from data.generate import generate
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
    Returns (tmp dir, process, summary) as `bundled_style`."""
    tmp = tmp_path_factory.mktemp("variant")
    generate(2000, seed=3).to_csv(tmp / "customers.csv", index=False)
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "2", "--min-auc", "0",
                                 "--beam-mode", "multi_processing", "--beam-workers", "2", "--tune", "10",
                                 beam_spy=tmp / "beam_runs.jsonl")
    return tmp, proc, summary
