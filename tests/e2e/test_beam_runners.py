"""The Beam flags reach the Beam pipelines the components execute: real runs, observed inside Beam.

beam_spy/sitecustomize.py logs, for every pipeline the DirectRunner's engine (FnApiRunner) runs, the
worker environment and count it ran with, the packages staged for its workers and TFX's `tfx_executor`
label naming the component.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BEAM_EXECUTORS = {"CsvExampleGen": "third_party_executor", "StatisticsGen": "tfx-components-statistics_gen-",
                  "Transform": "tfx-components-transform-", "Evaluator": "tfx-components-evaluator-"}
"""The pipeline's Beam-based components, and how TFX's `tfx_executor` label names their executor:
its module path, or `third_party_executor` for any executor outside TFX (CsvExampleGen runs
pipeline/csv_examples.py's, the only one of ours)."""


def executed(log: Path) -> dict[str, list[dict]]:
    """The spy's records, grouped by the component whose executor ran them."""
    by_component: dict[str, list[dict]] = defaultdict(list)
    for line in log.read_text().splitlines():
        record = json.loads(line)
        executor = next(v.split("=", 1)[1] for v in record["labels"] if v.startswith("tfx_executor="))
        component = next((c for c, label in BEAM_EXECUTORS.items() if executor.startswith(label)), executor)
        by_component[component].append(record)
    return by_component


def test_default_run_executes_every_beam_component_in_memory(bundled_style) -> None:
    tmp, proc, _ = bundled_style
    assert proc.returncode == 0, proc.stderr
    runs = executed(tmp / "beam_runs.jsonl")
    assert set(runs) == set(BEAM_EXECUTORS)
    for component, records in runs.items():
        assert all(r["direct_running_mode"] == "in_memory" and r["workers"] == 1
                   and r["environment"] == "EmbeddedPythonEnvironment" for r in records), component
        # No `tfx_ephemeral` sdist of TFX for remote workers (pipeline/beam.no_worker_package).
        assert all(r["extra_packages"] is None for r in records), component


def test_multi_processing_flags_reach_every_beam_component(variant_run) -> None:
    tmp, proc, summary = variant_run  # --beam-mode multi_processing --beam-workers 2 (and --tune: test_tune.py)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["status"] == "pushed"
    runs = executed(tmp / "beam_runs.jsonl")
    assert set(runs) == set(BEAM_EXECUTORS)
    for component, records in runs.items():
        # Two worker processes (python -m apache_beam.runners.worker.sdk_worker_main), not the in-process one.
        assert all(r["direct_running_mode"] == "multi_processing" and r["workers"] == 2
                   and r["environment"] == "SubprocessSDKEnvironment" for r in records), component
        # The worker processes run this environment's Python: nothing staged for them, and they still work.
        assert all(r["extra_packages"] is None for r in records), component
    # What the worker processes print (warnings, TensorFlow's shutdown noise) is in the run's log, not on stderr.
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    assert (tmp / "out" / "pipeline.log").exists()


def test_a_run_leaves_nothing_in_the_system_temp_dir(variant_run) -> None:
    """What the run's libraries put in the system temp dir (with a remote Beam runner, TFX's ~49 MB
    `tfx_ephemeral` sdist per Beam executor) goes to the run's scratch dir (pipeline/cli.run_scratch_dir),
    which goes away with the run, also with Beam's worker processes."""
    tmp, proc, summary = variant_run
    assert proc.returncode == 0 and summary["status"] == "pushed", proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp / "system_temp").iterdir()) == []
