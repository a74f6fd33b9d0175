"""Reference models and calibration in a real run: the shared `bundled_style` run's ReferenceModels output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from modules import features
from pipeline import reference
from pipeline import reference_models as rm

pytestmark = pytest.mark.e2e


def test_reference_models_sit_next_to_the_net_on_the_same_eval_rows(bundled_style) -> None:
    tmp, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = summary["reference_models"]
    assert [r["name"] for r in found["references"]] == [rm.LOGISTIC_REGRESSION, rm.GRADIENT_BOOSTING]
    assert found["rows"] == summary["example_counts"]["eval"] == summary["metrics"]["overall"]["example_count"]
    assert found["train_rows"] == summary["example_counts"]["train"]
    # The same model on the same rows as TFMA (whose AUC is a 10,000-threshold approximation).
    assert found["model_auc"] == pytest.approx(summary["metrics"]["overall"]["auc"], abs=2e-3)
    for row in found["references"]:
        assert row["auc"] > 0.7 and row["ci95"][0] < row["auc_difference"] < row["ci95"][1]
    # The goal on bundled-style data: no reference model is better beyond the paired interval.
    assert found["holds_its_own"], found["summary"]
    assert found["summary"] in proc.stdout and "reference models (same" in proc.stdout
    assert "ReferenceModels" in summary["component_seconds"]


def test_calibration_is_reported_overall_and_per_slice_with_ece_only_from_a_thousand_rows(bundled_style) -> None:
    _, _, summary = bundled_style
    calibration = summary["calibration"]
    overall = calibration["overall"]
    assert overall["rows"] == summary["reference_models"]["rows"]
    assert 0 < overall["brier"] < 0.25  # better than always saying 0.5
    assert len(overall["reliability"]) == rm.CALIBRATION_BINS
    assert {name.split("=")[0] for name in calibration["slices"]} == set(features.SLICE_KEYS)
    for name, found in {"overall": overall, **calibration["slices"]}.items():
        if found["rows"] >= rm.MIN_ECE_ROWS:
            assert found["ece"] is not None and found["ece_reason"] is None, name
        else:
            assert found["ece"] is None and f"{found['rows']:,} eval rows" in found["ece_reason"], name
    platt = calibration["platt"]  # the Trainer's calibration step, saved with the model
    assert platt["method"] == "platt" and platt["validation_rows"] == summary["example_counts"]["validation"]
    if platt["applied"]:
        assert platt["scale"] > 0 and platt["validation_brier_after"] < platt["validation_brier_before"]
    else:
        assert (platt["scale"], platt["offset"]) == (1.0, 0.0)


def test_reference_models_are_the_same_on_a_re_run(bundled_style) -> None:
    """Seeds fixed: the analysis run again on the run's own artifacts gives the very same file."""
    tmp, _, _ = bundled_style
    tfx_root = tmp / "out" / "tfx"

    def by_execution(pattern: str, under: Path) -> list[Path]:  # <component>/<output>/<execution id>/...
        return sorted(under.glob(pattern), key=lambda p: int(p.relative_to(under).parts[0]))

    # Other tests re-train in the same output folder: the k-th analysis belongs to the k-th model.
    written = by_execution("*/" + reference.REFERENCE_FILE, tfx_root / "ReferenceModels" / "reference")
    models = by_execution("*/Format-Serving", tfx_root / "Trainer" / "model")
    (examples,) = (tfx_root / "CsvExampleGen" / "examples").glob("*")
    assert written and len(written) == len(models)
    for model, analysis in zip(models, written, strict=True):
        again = reference.analyse(str(model), str(examples), features.LABEL_KEY, list(features.SLICE_KEYS))
        assert json.loads(json.dumps(again)) == json.loads(analysis.read_text())


def test_report_shows_the_reference_models_and_calibration(bundled_style) -> None:
    tmp, _, summary = bundled_style
    page = (tmp / "out" / "report.html").read_text()
    shown = page.split('<section id="reference">')[1].split("</section>")[0]
    assert "<h2>Reference models and calibration</h2>" in shown
    assert rm.REFERENCE_NAMES[rm.GRADIENT_BOOSTING] in shown and "Reliability curve" in shown
    assert "Could not render" not in shown


def test_the_eval_splits_served_scores_are_kept_for_the_served_score_shift(bundled_style) -> None:
    """ReferenceModels keeps the eval rows' calibrated scores; run_summary.json names the file and the drift
    check's `--eval-scores` default finds the newest one."""
    import pandas as pd

    from monitoring import drift

    tmp, _, summary = bundled_style
    kept = Path(summary["eval_scores"])
    assert kept.name == reference.EVAL_SCORES_FILE and kept.parent.parent.name == "reference"
    frame = pd.read_csv(kept)
    assert list(frame.columns) == [features.PROBABILITY_OUTPUT]  # no ids, no features
    assert len(frame) == summary["example_counts"]["eval"] == summary["reference_models"]["rows"]
    assert kept.stat().st_size < 12 * len(frame)  # a few KB
    scores = drift.read_eval_scores(kept)
    # The served (calibrated) probabilities the calibration section measured: its mean per equal-mass bin.
    curve = summary["calibration"]["overall"]["reliability"]
    means = [float(scores[rows].mean()) for rows in rm.equal_mass_bins(scores)]
    assert means == pytest.approx([b["predicted"] for b in curve], abs=2e-5)
    assert scores.std() > 0.05
    served = drift.served_eval_scores(tmp / "out", int(summary["model_version"]))  # the run pushed that version
    assert served.parent.parent == kept.parent.parent and len(drift.read_eval_scores(served)) > 0
