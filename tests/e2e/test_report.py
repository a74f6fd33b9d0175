"""report.html of a real run: rewritten by `--report-only`, opened in headless Chromium, checked against the run.

The page and a screenshot are saved under test-artifacts/ (or $TEST_ARTIFACTS_DIR) for people to look at.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil

import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score
from tfx.utils import path_utils

from modules import threshold
from pipeline import config as cfg
from pipeline import report, run_summary
from tests import browser
from tests.helpers import run_cli

pytestmark = pytest.mark.e2e


def test_report_only_rewrites_the_page_and_chromium_shows_every_section(bundled_style) -> None:
    tmp, first, _ = bundled_style
    assert first.returncode == 0, first.stdout + first.stderr
    config = cfg.PipelineConfig(output=tmp / "out")
    config.report_path.unlink()
    proc = run_cli("--report-only", "--output", str(config.output), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"Report: {config.report_path}"] and "warning" not in proc.stderr.lower()
    summary = json.loads(config.summary_path.read_text())

    dom = browser.dump_dom(config.report_path.as_uri())
    for anchor, title in report.SECTIONS.items():
        assert f'<section id="{anchor}"><h2>{title}</h2>' in dom
    assert summary["blessing_reason"] in dom and "Could not render" not in dom and "Not reached" not in dom
    for count in summary["example_counts"].values():
        assert f"<td>{count:,}</td>" in dom
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == 4
    for data in images:  # ROC, calibration, confusion matrix, reliability curve: real pictures, not empty frames
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.width > 300 and image.height > 300 and len(image.getcolors(1 << 20)) > 20

    artifacts = browser.artifacts_dir()
    shutil.copyfile(config.report_path, artifacts / "report.html")
    shot = browser.screenshot(config.report_path.as_uri(), artifacts / "report.png", width=1280, height=2000)
    with Image.open(shot) as picture:
        assert picture.size == (1280, 2000)
        assert len(picture.convert("RGB").getcolors(1 << 20)) > 100  # text, tables and charts, not a blank page


def test_report_curves_come_from_the_models_and_rows_tfma_scored(bundled_style) -> None:
    tmp, first, _ = bundled_style
    assert first.returncode == 0, first.stdout + first.stderr
    config = cfg.PipelineConfig(output=tmp / "out")
    summary = json.loads(config.summary_path.read_text())  # the newest run; collect_outputs reads the same one
    outputs = run_summary.collect_outputs(config.metadata_path)
    predictions = report.eval_predictions(run_summary.single_artifact(outputs, "Evaluator", "evaluation").uri,
                                          run_summary.single_artifact(outputs, "CsvExampleGen", "examples").uri)
    overall = summary["metrics"]["overall"]
    candidate = predictions[report.CANDIDATE]
    assert len(candidate.labels) == overall["example_count"]
    assert candidate.labels.mean() == pytest.approx(overall["mean_label"], abs=1e-6)
    assert roc_auc_score(candidate.labels, candidate.probabilities) == pytest.approx(overall["auc"], abs=2e-3)
    # The model's `churn` output uses the threshold stored with it; TFMA's metrics are read at that threshold.
    chosen = summary["threshold"]["value"]
    trained = path_utils.serving_model_path(run_summary.single_artifact(outputs, "Trainer", "model").uri)
    assert summary["threshold"]["method"] == "f1_optimal" and chosen == threshold.read(trained)
    assert ((candidate.probabilities >= chosen) == (candidate.decisions == 1)).all()
    assert overall["confusion_matrix"] == {"threshold": chosen, **report.confusion_counts(candidate)}
    counts = report.confusion_counts(candidate)
    assert counts["tp"] / (counts["tp"] + counts["fp"]) == pytest.approx(overall["precision"], abs=1e-4)
    assert counts["tp"] / (counts["tp"] + counts["fn"]) == pytest.approx(overall["recall"], abs=1e-4)
    assert (counts["tp"] + counts["tn"]) / len(candidate.labels) == pytest.approx(overall["binary_accuracy"], abs=1e-4)
    baseline = summary["metrics"]["baseline"]
    assert (report.BASELINE in predictions) == (baseline is not None)
    if baseline is not None:
        scores = predictions[report.BASELINE]
        assert roc_auc_score(scores.labels, scores.probabilities) == pytest.approx(baseline["auc"], abs=2e-3)
