"""`python -m monitoring.drift --pipeline-output` on a real pipeline run: the training statistics are
found through its ML Metadata, and traffic like the training data does not drift while shifted traffic does."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from common import exit_codes
from monitoring import drift
from tests.monitoring.models import traffic, write_log

pytestmark = pytest.mark.e2e


def test_drift_against_a_real_pipeline_run(bundled_style: tuple[Path, subprocess.CompletedProcess[str], dict],
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp, proc, _ = bundled_style
    assert proc.returncode == 0, proc.stderr[-2000:]
    output = tmp / "out"
    statistics = drift.newest_training_statistics(output)
    assert statistics.is_relative_to(output / "tfx" / "StatisticsGen")

    log = write_log(tmp_path / "same.jsonl", traffic(drift.MIN_ROWS, seed=21))
    assert drift.main(["--request-log", str(log), "--pipeline-output", str(output)]) == exit_codes.OK
    assert "No drift" in capsys.readouterr().out

    def older(frame: pd.DataFrame) -> None:
        frame["Age"] = (frame["Age"] + 12).clip(upper=70)

    log = write_log(tmp_path / "older.jsonl", traffic(drift.MIN_ROWS, seed=21, change=older))
    assert drift.main(["--request-log", str(log), "--pipeline-output", str(output)]) == exit_codes.DRIFT
    assert "Drifted: Age" in capsys.readouterr().out
