"""bench/bench_simulate.py's measurements: a child's peak RSS and exit code, the per-month figures it
reads from a simulation's files (simulation.json and the runs' run_summary files), and a failed case."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from bench.bench_simulate import month_figures, run_case, run_measured, summarise
from common import exit_codes
from pipeline import config as cfg
from simulation import simulate


def test_run_measured_gives_the_exit_code_and_a_descendants_peak_rss(tmp_path: Path) -> None:
    # the 300 MiB buffer lives in a grandchild: the peak must come from the descendant, not the child itself
    grandchild = "x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); print('big')"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True); sys.exit(3)"
    log = tmp_path / "run.log"
    code, seconds, peak_mib = run_measured([sys.executable, "-c", child], log)
    assert code == 3
    assert seconds > 0
    assert peak_mib >= 300
    assert log.read_text().strip() == "big"

    code, _, small_mib = run_measured([sys.executable, "-c", "pass"], log)
    assert code == 0 and small_mib < 200


def _simulation(output: Path, runs: dict[int, float | None]) -> None:
    """A simulation folder as simulation.py writes it: months 0..3, month 0 not judged, `runs` the judged
    months' run total_seconds (None: that run's summary file is missing)."""
    rows = [simulate.MonthResult(0, "2026-01", False, 100, 0.8, seconds=1.25)]
    (output / simulate.LOG_DIR).mkdir(parents=True)
    for month, run_seconds in runs.items():
        rows.append(simulate.MonthResult(month, f"2026-0{month + 1}", False, 100, 0.8, status="pushed",
                                         seconds=100.0 * month + 0.04))
        if run_seconds is not None:
            (output / simulate.LOG_DIR / simulate.RUN_SUMMARY.format(month=month)).write_text(
                json.dumps({"status": "pushed", "total_seconds": run_seconds}))
    settings = simulate.Settings(len(rows), 2, 100, 1, output, 0, 0, None, simulate.DEFAULT_SWAP_TIMEOUT_S)
    simulate.write_results(output, rows, settings.as_json())


def test_month_figures_pair_each_judged_month_with_its_runs_own_seconds(tmp_path: Path) -> None:
    _simulation(tmp_path, {1: 80.04, 2: 150.0, 3: 290.5})
    figures = month_figures(tmp_path)
    assert figures == [{"month": 1, "seconds": 100.0, "run_seconds": 80.0},
                       {"month": 2, "seconds": 200.0, "run_seconds": 150.0},
                       {"month": 3, "seconds": 300.0, "run_seconds": 290.5}]
    assert summarise(figures) == {"runs": 3, "median_month_s": 200.0, "max_month_s": 300.0, "max_month": 3,
                                  "run_total_s": 520.5}


def test_a_missing_run_summary_leaves_the_runs_total_unknown(tmp_path: Path) -> None:
    _simulation(tmp_path, {1: 80.0, 2: None})
    figures = month_figures(tmp_path)
    assert figures[1]["run_seconds"] is None
    assert summarise(figures)["run_total_s"] is None
    assert summarise([]) == {"runs": 0, "median_month_s": None, "max_month_s": None, "max_month": None,
                             "run_total_s": None}


def test_a_failed_simulation_stops_the_bench_with_its_error(tmp_path: Path) -> None:
    args = argparse.Namespace(months=4, shift_at=2, window=2, max_epochs=None)
    with pytest.raises(SystemExit) as stopped:
        run_case(tmp_path / "sim", cfg.DRIFT_MIN_ROWS - 1, args, "cold")
    message = str(stopped.value.code)
    assert message.startswith(f"simulation failed (exit {exit_codes.USAGE}; log ")
    assert f"--customers must be >= {cfg.DRIFT_MIN_ROWS}" in message
    assert "0 months judged before" in message
