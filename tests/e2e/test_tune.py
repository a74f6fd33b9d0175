"""`--tune` in a real run: TFX's Tuner searches within its budget and the Trainer trains with its best values."""
from __future__ import annotations

import json

import pytest

from modules import hparams


@pytest.mark.e2e
def test_tune_runs_the_tuner_and_the_trainer_uses_its_best_hyperparameters(variant_run) -> None:
    # A small table and a tiny budget (--tune 10): the first trial (the defaults) always runs, more while time is
    # left. The run also uses multi-processing Beam (test_beam_runners.py), which the Tuner does not touch.
    tmp, proc, summary = variant_run
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    assert "Tuner" in summary["component_seconds"] and "Trainer" in summary["component_seconds"]
    best_files = list((tmp / "out" / "tfx" / "Tuner" / "best_hyperparameters").glob("*/best_hyperparameters.txt"))
    assert len(best_files) == 1
    best = json.loads(best_files[0].read_text())["values"]
    assert best.keys() == {*hparams.DEFAULTS, hparams.BATCH_SIZE_KEY}
    # The Trainer trained with exactly the Tuner's choice, and the summary says so.
    assert summary["training"]["tuned"] is True
    assert summary["training"]["hyperparameters"] == pytest.approx(best)
    trials = summary["tuning"]["trials"]
    assert trials and trials == sorted(trials, key=lambda t: t["score"])
    assert {k: trials[0][k] for k in best} == pytest.approx(best)
    assert "chosen by the Tuner" in proc.stdout
    assert "Search space summary" not in proc.stdout  # keras-tuner's printing stays out of the progress lines
    report = (tmp / "out" / "report.html").read_text()
    assert "chosen by the Tuner" in report
