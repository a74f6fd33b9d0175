"""End-to-end runs of local_pipeline.py as a user runs it: real TFX components, small data, few epochs."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from markupsafe import escape

from common import exit_codes
from data.generate import generate
from pipeline.config import CURATED_SCHEMA
from pipeline.config import KAGGLE_DATA as KAGGLE_CSV
from tests.helpers import run_pipeline, versions

pytestmark = pytest.mark.e2e
SUMMARY_KEYS = {
    "status", "exit_code", "blessed", "blessing_reason", "pushed_model_dir", "model_version", "newly_pushed",
    "metrics", "anomalies", "example_counts", "component_seconds", "cached_components", "total_seconds", "input",
}
METRIC_KEYS = {"auc", "precision", "recall", "binary_accuracy", "example_count", "mean_label", "auc_ci95",
               "auc_undefined", "confusion_matrix"}


def report_churn_rates(report: str) -> dict[str, float]:
    """Churn rate per split as report.html shows it (read from StatisticsGen's raw label statistics)."""
    rows = re.findall(r"<td>(\w+)</td><td>[\d,]+</td><td>([\d.]+)%</td>", report)
    return {split: float(rate) / 100 for split, rate in rows}


def test_bundled_style_data_is_blessed_and_pushed_in_tf_serving_layout(bundled_style) -> None:
    tmp, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    (version,) = versions(tmp)
    assert version.isdigit()
    pushed = tmp / "serving" / "customer-model" / version
    assert (pushed / "saved_model.pb").is_file() and (pushed / "variables" / "variables.index").is_file()
    assert any((pushed / "assets").iterdir())  # Transform vocabularies travel with the model
    assert summary["status"] == "pushed" and summary["blessed"] is True and summary["newly_pushed"] is True
    assert summary["pushed_model_dir"] == str(pushed) and summary["model_version"] == version
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["anomalies"] == []
    assert set(summary["example_counts"]) == {"train", "validation", "eval"}
    assert sum(summary["example_counts"].values()) == 4000
    assert set(summary["metrics"]["overall"]) == METRIC_KEYS
    assert summary["metrics"]["overall"]["example_count"] == summary["example_counts"]["eval"]
    assert summary["metrics"]["overall"]["auc_ci95"][0] > 0.7 and summary["chance_level"] is False
    assert {"Gender=Male", "Promotion_Response=Ignored", "Email_Opt_In=True"} <= summary["metrics"]["slices"].keys()
    for metrics in summary["metrics"]["slices"].values():
        assert set(metrics) == METRIC_KEYS
    expected_components = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                           "DataValidationGate", "Transform", "Trainer", "Evaluator", "RecallGate", "ServingCheck",
                           "Pusher"}
    assert expected_components <= summary["component_seconds"].keys()
    assert summary["training"]["epochs_run"] <= 8
    progress_lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    for name in expected_components:  # one progress line per component
        assert sum(name in line for line in progress_lines) == 1
    # `[ i/N]`: N is the pipeline's own component count (cli reads it off create_pipeline's result)
    total = len(summary["component_seconds"])
    assert [line.split("]")[0] for line in progress_lines] == [f"[{i:>2}/{total}" for i in range(1, total + 1)]
    assert "Summary" in proc.stdout and "blessed: yes" in proc.stdout
    report = tmp / "out" / "report.html"
    assert f"Report: {report}" in proc.stdout.splitlines() and "warning" not in proc.stderr
    # ROC, calibration, confusion matrix, and the reference models' reliability curve
    assert report.read_text().count('src="data:image/png;base64,') == 4
    rates = report_churn_rates(report.read_text())
    assert set(rates) == {"train", "validation", "eval"}
    assert rates["eval"] == pytest.approx(summary["metrics"]["overall"]["mean_label"], abs=0.001)


def test_cached_rerun_reuses_everything_and_pushes_no_duplicate(bundled_style) -> None:
    tmp, first, _ = bundled_style
    assert first.returncode == 0
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"CsvExampleGen", "Transform", "Trainer", "ChurnFactors", "Evaluator",
            "ServingCheck"} <= set(summary["cached_components"])
    assert summary["serving_check"] == {"passed": True, "error": None}
    assert "Pusher" not in summary["cached_components"]  # it always checks the serving folder
    assert len(versions(tmp)) == 1
    assert summary["newly_pushed"] is False and summary["pushed_model_dir"].endswith(versions(tmp)[0])
    assert summary["blessed"] is True and "unchanged since it was last blessed" in summary["blessing_reason"]
    assert summary["metrics"]["baseline"] is None  # not compared with itself
    assert summary["metrics"]["baseline_slices"] is None


def test_new_model_is_compared_with_the_last_blessed_one(bundled_style) -> None:
    tmp, first, first_summary = bundled_style
    assert first.returncode == 0
    # Fewer epochs: a different model on the same data, judged against the one already pushed.
    proc, summary = run_pipeline(tmp, "--data", str(tmp / "customers.csv"), "--max-epochs", "1")
    baseline_auc = summary["metrics"]["baseline"]["auc"]
    assert summary["metrics"]["baseline_slices"].keys() == summary["metrics"]["slices"].keys()
    assert baseline_auc == pytest.approx(first_summary["metrics"]["overall"]["auc"])
    # Each model's thresholded metrics are at its own decision threshold.
    assert summary["metrics"]["baseline"]["confusion_matrix"] == first_summary["metrics"]["overall"]["confusion_matrix"]
    assert summary["metrics"]["overall"]["confusion_matrix"]["threshold"] == summary["threshold"]["value"]
    not_worse = summary["metrics"]["overall"]["auc"] >= baseline_auc
    assert summary["blessed"] is not_worse
    assert proc.returncode == (0 if not_worse else 4), proc.stdout + proc.stderr
    assert len(versions(tmp)) == (2 if not_worse else 1)
    expected = "not worse than the last blessed model's" if not_worse else "worse than the last blessed model's"
    assert expected in summary["blessing_reason"]


def test_kaggle_data_reports_chance_auc_and_is_not_blessed(tmp_path: Path) -> None:
    proc, summary = run_pipeline(tmp_path, "--data", str(KAGGLE_CSV), "--max-epochs", "8")
    assert proc.returncode == exit_codes.NOT_BLESSED, proc.stdout + proc.stderr
    assert summary["status"] == "not_blessed" and summary["blessed"] is False
    overall = summary["metrics"]["overall"]
    standard_error = (overall["auc_ci95"][1] - overall["auc_ci95"][0]) / (2 * 1.959964)
    # Chance level: within 3 standard errors of 0.5 (the eval split has only ~170 rows).
    assert abs(overall["auc"] - 0.5) <= 3 * standard_error and abs(overall["auc"] - 0.5) < 0.15
    assert "below the lower bound 0.6" in summary["blessing_reason"]
    assert summary["pushed_model_dir"] is None and versions(tmp_path) == []
    assert summary["chance_level"] is True and "not distinguishable from chance" in proc.stdout
    assert "nothing pushed" in proc.stdout
    report = (tmp_path / "out" / "report.html").read_text()
    assert "<b>Not blessed</b>: overall AUC" in report and "Nothing pushed (status: not_blessed)" in report
    assert report.count('src="data:image/png;base64,') == 4 and "warning" not in proc.stderr  # + reliability curve
    # Reference models on the same ~170 eval rows: compared, and calibration without an ECE (too few rows).
    assert summary["reference_models"]["rows"] == overall["example_count"]
    assert len(summary["reference_models"]["references"]) == 2
    overall_calibration = summary["calibration"]["overall"]
    assert overall_calibration["ece"] is None and "eval rows" in overall_calibration["ece_reason"]
    # Churn factors ran although the model is not blessed, and found nothing: every simultaneous interval
    # includes zero, and the run says so in words.
    factors = summary["factors"]
    assert len(factors["features"]) == 13 and factors["rows_used"] == overall["example_count"]
    assert all(f["ci"][0] <= 0 <= f["ci"][1] and not f["distinguishable"] for f in factors["features"]), factors
    assert factors["drivers"] == []
    nothing = "No feature's importance is distinguishable from zero: the model found no churn drivers"
    assert factors["summary"].startswith(nothing) and f"churn factors: {nothing}" in proc.stdout
    assert str(escape(nothing)) in report.split('<section id="factors">')[1].split("</section>")[0]


def test_data_with_anomalies_stops_before_transform(tmp_path: Path) -> None:
    frame = generate(600, seed=3)
    frame.loc[5, "Gender"] = "Robot"                 # unknown category
    frame.loc[7, "Satisfaction_Score"] = 11          # out of range (1..5)
    frame = frame.drop(columns=["Num_of_Returns"])   # missing column
    frame.to_csv(tmp_path / "bad.csv", index=False)
    # An explicit curated schema: with the default `--schema auto`, other columns mean an inferred schema.
    proc, summary = run_pipeline(tmp_path, "--data", str(tmp_path / "bad.csv"), "--schema", str(CURATED_SCHEMA))
    assert proc.returncode == exit_codes.DATA_VALIDATION, proc.stdout + proc.stderr
    assert summary["status"] == "stopped_by_data_validation"
    joined = "\n".join(summary["anomalies"])
    for feature in ("Gender", "Satisfaction_Score", "Num_of_Returns"):
        assert feature in joined
        assert feature in proc.stdout
    assert "Transform" not in summary["component_seconds"] and "Trainer" not in summary["component_seconds"]
    assert not (tmp_path / "out" / "tfx" / "Trainer").exists()
    assert versions(tmp_path) == []
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"error: {tmp_path / 'bad.csv'} does not match {CURATED_SCHEMA}: {len(summary['anomalies'])} anomalies" \
        in proc.stderr
    # Where in the file: the first cell outside the schema of each column, by its line (header = line 1).
    assert "first values outside the schema: line 7 of bad.csv, column 'Gender': value 'Robot' (the schema allows: " \
           "Female, Male, Other); line 9 of bad.csv, column 'Satisfaction_Score': value '11' (the schema allows " \
           "1..5); correct those values" in proc.stderr
    report = (tmp_path / "out" / "report.html").read_text()  # written for a stopped run too
    assert f"Report: {tmp_path / 'out' / 'report.html'}" in proc.stdout and "warning" not in proc.stderr
    anomalies = report.split('<section id="anomalies">')[1].split("</section>")[0]
    assert all(feature in anomalies for feature in ("Gender", "Satisfaction_Score", "Num_of_Returns"))
    not_reached = {"metrics", "curves", "factors", "segments", "reference", "blessing"}
    assert report.count("Not reached") == len(not_reached)
    assert all("Not reached" in report.split(f'<section id="{anchor}">')[1].split("</section>")[0]
               for anchor in not_reached)
    assert "data:image/png" not in report


def test_messy_csv_with_yes_no_label_blanks_and_extra_ids_trains(tmp_path: Path) -> None:
    frame = generate(3000, seed=11).astype({"Age": object, "Annual_Income": object})
    frame.loc[::40, "Age"] = ""                      # blank numeric cells (2.5 %)
    frame.loc[1::50, "Annual_Income"] = " "          # whitespace that CSV inference would read as text
    frame["Target_Churn"] = frame["Target_Churn"].map({1: "Yes", 0: "No"})
    frame.insert(1, "Account_Number", [f"AC-{i:06d}" for i in range(len(frame))])
    frame.loc[3, "Target_Churn"] = ""                # unlabelled row: dropped and counted
    frame.to_csv(tmp_path / "messy.csv", index=False)
    proc, summary = run_pipeline(
        tmp_path, "--data", str(tmp_path / "messy.csv"), "--positive-label", "Yes", "--schema", "infer",
        "--id-columns", "Customer_ID,Account_Number", "--max-epochs", "8",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["input"]["dropped_unlabelled_rows"] == 1
    assert summary["input"]["missing_cells"]["Age"] == 75
    assert summary["input"]["missing_cells"]["Annual_Income"] == 60
    assert summary["input"]["label_values"] == {"Yes": pytest.approx(summary["input"]["label_values"]["Yes"]),
                                                "No": summary["input"]["label_values"]["No"]}
    assert summary["metrics"]["overall"]["auc"] > 0.7
    # A text label ("Yes"/"No"): the report's churn rate, from raw statistics, matches the encoded label's mean.
    rates = report_churn_rates((tmp_path / "out" / "report.html").read_text())
    assert rates["eval"] == pytest.approx(summary["metrics"]["overall"]["mean_label"], abs=0.001)
    (version,) = versions(tmp_path)
    import tensorflow as tf

    model = tf.saved_model.load(str(tmp_path / "serving" / "customer-model" / version))
    inputs = model.signatures["serving_default"].structured_input_signature[1]
    assert "Account_Number" not in inputs and "Customer_ID" not in inputs and "Target_Churn" not in inputs
    assert inputs["Annual_Income"].dtype == tf.float32  # blanks did not turn the column into text


def test_bad_input_is_a_clear_error_with_exit_2(tmp_path: Path) -> None:
    proc, _ = run_pipeline(tmp_path, "--data", str(tmp_path / "missing.csv"))
    assert proc.returncode == 2
    assert "data not found" in proc.stderr and "Traceback" not in proc.stderr
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "nolabel.csv", index=False)
    proc, _ = run_pipeline(tmp_path, "--data", str(tmp_path / "nolabel.csv"))
    assert proc.returncode == 2 and "label column 'Target_Churn' not in the data" in proc.stderr
    generate(100).to_csv(tmp_path / "ok.csv", index=False)
    proc, _ = run_pipeline(tmp_path, "--data", str(tmp_path / "ok.csv"), "--positive-label", "Yes")
    assert proc.returncode == 2 and "positive label 'Yes' not found" in proc.stderr
