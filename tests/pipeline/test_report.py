"""report.html without a TFX run: sections, early stops, failures, escaping, and the numbers behind the charts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline import config as cfg
from pipeline import report


def metrics(auc: float) -> dict:
    return {"auc": auc, "precision": 0.7, "recall": 0.6, "binary_accuracy": 0.72, "example_count": 2000.0,
            "mean_label": 0.5, "auc_ci95": [auc - 0.02, auc + 0.02]}


def summary(**overrides) -> dict:
    base = {
        "status": "pushed", "exit_code": 0, "total_seconds": 61.2, "error": None, "data": "/d/customers.csv",
        "output": "/o", "example_counts": {"train": 6000, "validation": 2000, "eval": 2000}, "anomalies": [],
        "input": {"label": "Target_Churn", "positive_label": "1", "label_values": {"0": 5000, "1": 5000},
                  "schema": "/d/schema.pbtxt"},
        "training": {"epochs_run": 12, "best_epoch": 2, "best_val_loss": 0.53, "best_val_auc": 0.81,
                     "train_auc_at_best": 0.83},
        "metrics": {"overall": metrics(0.81), "slices": {"Gender=Male": metrics(0.79)}, "baseline": metrics(0.8),
                    "baseline_slices": {"Gender=Male": metrics(0.77)}},
        "blessed": True, "blessing_reason": "overall AUC 0.8100 passed the lower bound",
        "pushed_model_dir": "/srv/customer-model/17", "model_version": "17", "newly_pushed": True,
        "component_seconds": {"Transform": 24.0, "Trainer": 9.5, "Pusher": 0.1}, "cached_components": ["Pusher"],
    }
    return {**base, **overrides}


def section(html: str, anchor: str) -> str:
    return html.split(f'<section id="{anchor}">')[1].split("</section>")[0]


def artifact() -> metadata_store_pb2.Artifact:
    return metadata_store_pb2.Artifact(uri="/nonexistent/artifact")


def test_every_section_is_on_the_page_with_the_summary_facts() -> None:
    problems: list[str] = []
    html = report.render(summary(), {}, problems)
    assert problems == []
    for anchor, title in report.SECTIONS.items():
        assert f'<section id="{anchor}"><h2>{title}</h2>' in html
    assert "<b>Blessed</b>: overall AUC 0.8100 passed the lower bound." in section(html, "blessing")
    assert "Pushed version 17 to <code>/srv/customer-model/17</code>" in section(html, "push")
    metrics_rows = section(html, "metrics")
    # Candidate AUC, interval, baseline AUC and the difference, per slice.
    assert "<td>Gender=Male</td><td>0.7900</td><td>0.770–0.810</td><td>0.7700</td><td>+0.0200</td>" in metrics_rows
    assert "<td>overall</td><td>0.8100</td><td>0.790–0.830</td><td>0.8000</td><td>+0.0100</td>" in metrics_rows
    timing = section(html, "timing")
    assert timing.index("Transform") < timing.index("Trainer") < timing.index("Pusher")  # longest first
    assert "<td>Pusher</td><td>0.1 s</td><td>cached</td>" in timing


def test_a_run_stopped_by_data_validation_shows_its_anomalies_and_what_was_not_reached() -> None:
    stopped = summary(status="stopped_by_data_validation", exit_code=3, metrics=None, training=None, blessed=None,
                      blessing_reason=None, pushed_model_dir=None, model_version=None, newly_pushed=False,
                      anomalies=["train: Gender: Unexpected string values (Examples contain values missing: Robot)"])
    problems: list[str] = []
    html = report.render(stopped, {"ExampleValidator": {"anomalies": [artifact()]}}, problems)
    assert problems == []
    assert "<li>train: Gender: Unexpected string values (Examples contain values missing: Robot)</li>" in html
    assert "the run stopped before Transform" in section(html, "anomalies")
    for anchor in ("metrics", "curves", "factors", "blessing"):
        assert "Not reached" in section(html, anchor)
    assert "Nothing pushed (status: stopped_by_data_validation)" in section(html, "push")
    assert "pushed (exit code 0)" not in html and "stopped_by_data_validation (exit code 3)" in html


def factors(*rows: dict, drivers: list[str], sentence: str) -> dict:
    return {"features": list(rows), "drivers": drivers, "summary": sentence, "confidence": 0.95, "z": 2.89,
            "rows_used": 2000, "split": "eval", "auc": 0.81, "method": "permutation importance on AUC",
            "multiple_comparisons": "bonferroni"}


RECENCY = {"feature": "Last_Purchase_Days_Ago", "importance": 0.12873, "ci": [0.10409, 0.15337],
           "distinguishable": True, "kind": "numeric", "direction": "up",
           "low": {"value": 15.0, "probability": 0.3185}, "high": {"value": 271.0, "probability": 0.7783}}
GENDER = {"feature": "Gender", "importance": -0.0003, "ci": [-0.0031, 0.0026], "distinguishable": False,
          "kind": "categorical", "categories": {"Male": 0.5167, "Female": 0.4952, "Other": 0.4797}}


def test_churn_factors_show_importance_interval_direction_and_the_finding() -> None:
    found = factors(RECENCY, GENDER, drivers=["Last_Purchase_Days_Ago"],
                    sentence="1 of 2 features drive the model's churn predictions: Last_Purchase_Days_Ago.")
    html = section(report.render(summary(factors=found), {}, []), "factors")
    assert '<p class="good"><b>1 of 2 features drive the model' in html
    assert ("<td>Last_Purchase_Days_Ago</td><td>+0.1287</td><td>+0.1041 … +0.1534</td><td>yes</td>" in html)
    assert "higher → more churn: P(churn) 0.32 at 15, 0.78 at 271" in html
    assert "<td>Gender</td><td>-0.0003</td><td>-0.0031 … +0.0026</td><td>no</td>" in html
    assert "Male 0.52 &gt; Female 0.50 &gt; Other 0.48" in html
    assert "Bonferroni correction for multiple comparisons" in html
    assert html.count('class="range on"') == 1 and html.count('class="range"') == 1


def test_churn_factors_say_plainly_when_the_model_found_nothing() -> None:
    sentence = "No feature's importance is distinguishable from zero: the model found no churn drivers in this data."
    html = section(report.render(summary(factors=factors(GENDER, drivers=[], sentence=sentence)), {}, []), "factors")
    assert f'<p class="bad"><b>{escape(sentence)}</b></p>' in html


def test_clean_validation_is_said_plainly() -> None:
    html = report.render(summary(), {"ExampleValidator": {"anomalies": [artifact()]}}, [])
    assert "None: every split matches /d/schema.pbtxt." in section(html, "anomalies")


def test_a_section_that_fails_shows_its_error_and_the_rest_is_still_rendered() -> None:
    problems: list[str] = []
    outputs = {"StatisticsGen": {"statistics": [artifact()]}}  # no split_names, no files: cannot be read
    html = report.render(summary(), outputs, problems)
    assert len(problems) == 1 and problems[0].startswith("Data per split: ")
    assert "Could not render this section" in section(html, "data")
    assert "<b>Blessed</b>" in section(html, "blessing") and "Could not render" not in section(html, "metrics")


def test_text_from_the_data_is_escaped() -> None:
    html = report.render(summary(anomalies=["train: <script>alert(1)</script>: bad"], error="a < b & c"),
                         {"ExampleValidator": {"anomalies": [artifact()]}}, [])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &lt; b &amp; c" in html


HOSTILE = "<script>alert(1)</script>"


def test_hostile_column_feature_and_slice_names_are_escaped_by_the_templates() -> None:
    """Column names come from the user's CSV header: the templates' autoescaping keeps them text."""
    hostile_factor = {**GENDER, "feature": HOSTILE, "categories": {HOSTILE: 0.6, "Female": 0.4}}
    found = factors(hostile_factor, drivers=[], sentence=f"Nothing about {HOSTILE}.")
    metrics_block = {**summary()["metrics"], "slices": {f"Gender={HOSTILE}": metrics(0.7)}}
    html = report.render(summary(factors=found, metrics=metrics_block, blessing_reason=HOSTILE,
                                 input={**summary()["input"], "schema": HOSTILE}),
                         {"ExampleValidator": {"anomalies": [artifact()]}}, problems := [])
    assert problems == []
    assert "<script>" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<td>{escaped}</td><td>-0.0003</td>" in section(html, "factors")
    assert f"{escaped} 0.60 &gt; Female 0.40" in section(html, "factors")
    assert f"<td>Gender={escaped}</td><td>0.7000</td>" in section(html, "metrics")
    assert f"<b>Blessed</b>: {escaped}." in section(html, "blessing")
    assert f"every split matches {escaped}." in section(html, "anomalies")
    notes = "".join(report.reading_notes({"column_names": {HOSTILE: "script_alert_1"},
                                          "id_columns": [HOSTILE], "id_columns_chosen": "--id-columns"}))
    assert "<script>" not in notes and f"<td>{escaped}</td><td>script_alert_1</td>" in notes
    assert f"Id columns: {escaped} (--id-columns)" in notes


def test_write_report_is_atomic_and_survives_unreadable_metadata(tmp_path: Path) -> None:
    config = cfg.PipelineConfig(output=tmp_path / "out")
    config.output.mkdir()
    config.metadata_path.write_bytes(b"not a SQLite database" * 100)
    written = report.write_report(summary(status="failed", exit_code=1, error="boom"), config)
    assert written.path == config.report_path == tmp_path / "out" / "report.html"
    assert [p.split(":")[0] for p in written.problems] == ["artifacts"]
    assert "cannot read ML Metadata" in written.problems[0]
    html = written.path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "boom" in html
    assert not list(config.output.glob("*.tmp"))


def predictions(labels: list[int], probabilities: list[float]) -> report.Predictions:
    p = np.array(probabilities)
    return report.Predictions(np.array(labels), p, (p >= 0.5).astype(int))


def test_confusion_counts_follow_the_models_decisions() -> None:
    counts = report.confusion_counts(predictions([1, 1, 0, 0, 1], [0.9, 0.2, 0.7, 0.1, 0.5]))
    assert counts == {"tp": 2, "fn": 1, "fp": 1, "tn": 1}


def test_calibration_bins_average_predictions_and_labels_per_bin() -> None:
    bins = report.calibration_bins(predictions([0, 1, 1, 1, 0], [0.05, 0.15, 0.95, 1.0, 0.91]), bins=10)
    assert bins == [(0.05, 0.0, 1), (0.15, 1.0, 1), (pytest.approx((0.95 + 1.0 + 0.91) / 3), pytest.approx(2 / 3), 3)]


def test_charts_are_embedded_pngs() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)
    models = {report.CANDIDATE: predictions(list(labels), list(scores)),
              report.BASELINE: predictions(list(labels), list(rng.random(400)))}
    for figure in (report.roc_figure(models), report.calibration_figure(models),
                   report.confusion_figure(report.confusion_counts(models[report.CANDIDATE]))):
        assert report.png_base64(figure).startswith("iVBORw0KGgo")  # the PNG signature, base64-encoded


def label_statistics(**kind) -> statistics_pb2.DatasetFeatureStatistics:
    stats = statistics_pb2.DatasetFeatureStatistics(num_examples=10)
    feature = stats.features.add()
    feature.path.step.append("Churned")
    for field, value in kind.items():
        getattr(feature, field).CopyFrom(value)
    return stats


def test_churn_rate_of_a_text_label_counts_the_positive_value() -> None:
    strings = statistics_pb2.StringStatistics()
    strings.rank_histogram.buckets.add(label="No", sample_count=7)
    strings.rank_histogram.buckets.add(label="Yes", sample_count=3)
    assert report.churn_rate(label_statistics(string_stats=strings), "Churned", "Yes", ["No", "Yes"]) == 0.3


def test_churn_rate_of_a_numeric_label_places_the_mean_between_its_two_values() -> None:
    numbers = statistics_pb2.NumericStatistics(mean=1.25)  # values 1 (churned) and 2: three quarters are 1
    assert report.churn_rate(label_statistics(num_stats=numbers), "Churned", "1", ["1", "2"]) == 0.75
    assert report.churn_rate(label_statistics(num_stats=statistics_pb2.NumericStatistics(mean=0.4)),
                             "Churned", "1.0", ["0", "1"]) == pytest.approx(0.4)
    assert report.churn_rate(label_statistics(num_stats=numbers), "Other", "1", ["1", "2"]) is None


def test_reading_notes_state_dialect_id_columns_and_the_name_mapping() -> None:
    notes = "".join(report.reading_notes({
        "dialect": {"encoding": "utf-8", "delimiter": ";", "decimal": ",", "detected": ["delimiter", "decimal"]},
        "id_columns": ["Customer_ID"], "id_columns_chosen": "auto: Customer_ID is present",
        "column_names": {"Customer ID": "Customer_ID", "Total <Spend>": "Total_Spend"},
    }))
    assert "delimiter <code>;</code>, decimal mark <code>,</code> (detected: delimiter, decimal)" in notes
    assert "Id columns: Customer_ID (auto: Customer_ID is present)" in notes
    assert "Total &lt;Spend&gt;" in notes and "Total_Spend" in notes
    assert report.reading_notes({}) == []


def test_reference_models_and_calibration_per_slice_are_shown() -> None:
    from tests.pipeline.test_run_summary import reference_record

    record = reference_record()
    html = report.render(summary(**record), {}, problems := [])
    assert problems == []
    shown = section(html, "reference")
    assert f'<p class="good"><b>{record["reference_models"]["summary"]}</b></p>' in shown
    row = record["reference_models"]["references"][1]
    lo, hi = row["ci95"]
    assert (f"<td>{row['description']}</td><td>{row['auc']:.4f}</td><td>{row['auc_difference']:+.4f}</td>"
            f"<td>{lo:+.4f} to {hi:+.4f}</td>") in shown
    overall, male = record["calibration"]["overall"], record["calibration"]["slices"]["Gender=Male"]
    assert f"<td>overall</td><td>2,000</td><td>{overall['brier']:.4f}</td><td>{overall['ece']:.4f}</td>" in shown
    assert f"<td>Gender=Male</td><td>500</td><td>{male['brier']:.4f}</td><td>n/a: only 500 eval rows" in shown
    assert 'alt="Reliability curve (10 equal-mass bins, overall)" src="data:image/png;base64,' in shown
    worse = report.render(summary(**reference_record(worse=True)), {}, [])
    assert '<p class="bad"><b>The Dense net is worse than' in section(worse, "reference")
    assert "Not reached" in section(report.render(summary(), {}, []), "reference")


def test_skipped_reference_models_say_why() -> None:
    from pipeline import reference_models as rm

    reason = rm.not_fitted(np.ones(3), np.array([0, 1]))
    record = {"reference_models": rm.skipped(np.ones(3), reason), "calibration": {"overall": {}}}
    html = report.render(summary(**record), {}, problems := [])
    assert problems == [] and f'<p class="muted">{reason}.</p>' in section(html, "reference")


def test_metrics_section_says_which_hyperparameters_trained_the_model() -> None:
    training = {"epochs_run": 12, "best_epoch": 2, "best_val_loss": 0.53, "best_val_auc": 0.81,
                "train_auc_at_best": 0.83, "hyperparameters": {"dropout": 0.2, "l2": 0.0, "learning_rate": 0.003},
                "tuned": True}
    html = report.render(summary(training=training, tuning={"trials": [{"trial_id": "0", "score": 0.5}] * 3}), {}, [])
    assert ("<p>hyperparameters: dropout 0.2, l2 0, learning_rate 0.003 (chosen by the Tuner, best of 3 trials on "
            "validation cross-entropy).</p>") in section(html, "metrics")


def test_a_windowed_run_s_overview_shows_the_month_the_window_and_each_drifted_feature() -> None:
    spans = {"train_spans": [2, 3], "eval_span": 4, "month": "2026-05",
             "drift": {"compared": True, "current_span": 4, "previous_span": 3, "on_drift": "warn", "stopped": False,
                       "drifted": [{"feature": "Email_Opt_In", "measure": "L_INFTY", "distance": 0.193,
                                    "threshold": 0.1}]}}
    html = report.render(summary(spans=spans), {}, problems := [])
    assert problems == []
    assert "span 4 (2026-05): evaluated out of time" in html
    assert "Email_Opt_In: L_INFTY 0.1930 &gt; 0.1 (--on-drift warn)" in html
    assert dict(report.span_rows(spans))["trained on spans"] == "2, 3"
    first = {**spans, "drift": {"compared": False}, "month": None}
    assert dict(report.span_rows(first))["drift"] == "not checked (no previous span)"
    assert "corrected spans" not in dict(report.span_rows({**spans, "versions": {"2": 0, "3": 0, "4": 0}}))
    corrected = dict(report.span_rows({**spans, "versions": {"2": 0, "3": 1, "4": 0}}))
    assert corrected["corrected spans"] == "span 3: version 1"
    assert "trained on spans" not in report.render(summary(), {}, [])
