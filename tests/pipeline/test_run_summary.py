"""The end-of-run table and the pure helpers behind run_summary.json."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_model_analysis as tfma

from pipeline import run_summary


def metrics(auc: float) -> dict[str, float]:
    return {"auc": auc, "precision": 0.7, "recall": 0.6, "binary_accuracy": 0.72, "example_count": 2000.0,
            "mean_label": 0.5, "auc_ci95": [auc - 0.02, auc + 0.02]}


def summary(**overrides) -> dict:
    base = {
        "status": "pushed", "exit_code": 0, "total_seconds": 61.2, "error": None,
        "example_counts": {"train": 6000, "validation": 2000, "eval": 2000}, "anomalies": [],
        "training": {"epochs_run": 12, "best_epoch": 2, "best_val_loss": 0.53, "best_val_auc": 0.81},
        "metrics": {"overall": metrics(0.81), "slices": {"Gender=Male": metrics(0.8)}, "baseline": metrics(0.8)},
        "blessed": True, "blessing_reason": "overall AUC 0.8100 passed the lower bound",
        "pushed_model_dir": "/srv/customer-model/17", "newly_pushed": True,
    }
    return {**base, **overrides}


def test_table_shows_rows_metrics_blessing_and_push() -> None:
    text = run_summary.format_summary(summary())
    assert "rows: train 6,000, validation 2,000, eval 2,000" in text
    assert "anomalies: none" in text
    assert "overall" in text and "0.8100" in text and "Gender=Male" in text
    assert "baseline (last blessed)" in text
    assert "blessed: yes (overall AUC 0.8100 passed the lower bound)" in text
    assert "model: pushed: /srv/customer-model/17" in text
    assert "status: pushed (exit 0) in 61.2 s" in text


def test_table_states_the_churn_factors_finding() -> None:
    finding = "No feature's importance is distinguishable from zero: the model found no churn drivers in this data."
    assert f"churn factors: {finding}" in run_summary.format_summary(summary(factors={"summary": finding}))
    assert "churn factors" not in run_summary.format_summary(summary())


def test_table_for_a_run_stopped_by_validation() -> None:
    text = run_summary.format_summary(summary(
        status="stopped_by_data_validation", exit_code=3, training=None, metrics=None, blessed=None,
        pushed_model_dir=None, anomalies=["train: Age: Out-of-range values (max 150)"]))
    assert "anomalies: 1" in text and "  - train: Age: Out-of-range values (max 150)" in text
    assert "model: nothing pushed" in text and "exit 3" in text and "blessed" not in text


def test_unchanged_model_is_reported_as_already_serving() -> None:
    assert "unchanged, already serving" in run_summary.format_summary(summary(newly_pushed=False))


def test_training_history_picks_the_epoch_with_the_lowest_validation_loss(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("epoch,auc,binary_accuracy,loss,val_auc,val_binary_accuracy,val_loss\n"
                       "0,0.70,0.6,0.60,0.75,0.7,0.55\n1,0.80,0.7,0.50,0.80,0.7,0.52\n2,0.90,0.8,0.40,0.79,0.7,0.58\n")
    assert run_summary.training_history(history) == {
        "epochs_run": 3, "best_epoch": 2, "best_val_loss": 0.52, "best_val_auc": 0.80, "train_auc_at_best": 0.80}
    assert run_summary.training_history(tmp_path / "missing.csv") is None


def test_blessing_reason_names_the_failed_bound_or_the_baseline() -> None:
    below = tfma.ValidationResult(validation_ok=False)
    failure = below.metric_validations_per_slice.add().failures.add()
    failure.metric_threshold.value_threshold.lower_bound.value = 0.6
    assert run_summary.blessing_reason(below, {"overall": {"auc": 0.49}}) == \
        "overall AUC 0.4900 is below the lower bound 0.6"
    worse = tfma.ValidationResult(validation_ok=False)
    worse.metric_validations_per_slice.add().failures.add().metric_threshold.change_threshold.absolute.value = -1e-10
    reason = run_summary.blessing_reason(worse, {"overall": {"auc": 0.79}, "baseline": {"auc": 0.81}})
    assert reason == "overall AUC 0.7900 is worse than the last blessed model's 0.8100"
    ok = tfma.ValidationResult(validation_ok=True)
    assert "unchanged since it was last blessed" in run_summary.blessing_reason(ok, {"overall": {"auc": 0.8}}, True)
    assert "not worse than the last blessed model's 0.8000" in run_summary.blessing_reason(
        ok, {"overall": {"auc": 0.81}, "baseline": {"auc": 0.80}})


def test_auc_confidence_interval_matches_hanley_mcneil() -> None:
    # Hanley & McNeil (1982), eq. 2: AUC 0.8 with 50 positives and 50 negatives -> SE 0.0445.
    low, high = run_summary.auc_confidence_interval(0.8, 100, 0.5)
    assert (high - low) / 2 == pytest.approx(1.959964 * 0.0445, abs=0.0005)
    assert run_summary.auc_confidence_interval(0.5, 170, 0.52)[0] < 0.5 < \
        run_summary.auc_confidence_interval(0.5, 170, 0.52)[1]
    assert run_summary.auc_confidence_interval(0.99, 20000, 0.5)[1] <= 1.0
    assert run_summary.auc_confidence_interval(None, 100, 0.5) is None
    assert run_summary.auc_confidence_interval(0.7, 100, 1.0) is None  # one class only


def test_chance_level_result_is_said_plainly() -> None:
    assert "not distinguishable from chance" in run_summary.format_summary(summary(chance_level=True))
    assert "chance" not in run_summary.format_summary(summary(chance_level=False))


def test_a_failed_serving_check_is_reported_with_its_reason() -> None:
    from ml_metadata.proto import metadata_store_pb2

    check = metadata_store_pb2.Artifact()
    check.custom_properties["blessed"].int_value = 0
    check.custom_properties["serving_check_error"].string_value = "the model server could not load the candidate"
    built = run_summary.build_summary({"ServingCheck": {"blessing": [check]}})
    assert built["serving_check"] == {"passed": False, "error": "the model server could not load the candidate"}
    text = run_summary.format_summary(summary(serving_check=built["serving_check"], pushed_model_dir=None,
                                              status="not_blessed", exit_code=4))
    assert "serving check: failed (the model server could not load the candidate)" in text
    passed = metadata_store_pb2.Artifact()
    passed.custom_properties["blessed"].int_value = 1
    assert run_summary.build_summary({"ServingCheck": {"blessing": [passed]}})["serving_check"] == {
        "passed": True, "error": None}
    assert "serving check" not in run_summary.format_summary(summary())
def test_summary_json_is_valid_for_strict_parsers_undefined_metrics_are_null(tmp_path: Path) -> None:
    import json

    import numpy as np

    def refuse(token: str) -> None:
        raise ValueError(f"bare {token} in JSON")

    values = summary(metrics={"overall": {**metrics(float("nan")), "precision": float("inf")}, "slices": {}})
    values["training"]["best_val_loss"] = np.float32("nan")
    path = tmp_path / "run_summary.json"
    run_summary.write_summary(values, path)
    parsed = json.loads(path.read_text(), parse_constant=refuse)
    assert parsed["metrics"]["overall"]["auc"] is None and parsed["metrics"]["overall"]["precision"] is None
    assert parsed["training"]["best_val_loss"] is None and parsed["example_counts"]["train"] == 6000


def test_slice_auc_is_null_with_the_reason_when_a_class_is_missing_or_too_rare() -> None:
    one_class = run_summary.complete_metrics({"auc": 0.0, "example_count": 12.0, "mean_label": 0.0, "precision": 0.0})
    assert one_class["auc"] is None and one_class["auc_ci95"] is None
    assert one_class["auc_undefined"] == "only one class (0 churners, 12 non-churners)"
    rare = run_summary.complete_metrics({"auc": 1.0, "example_count": 40.0, "mean_label": 0.1})
    assert rare["auc"] is None
    assert "too few of a class (4 churners, 36 non-churners; at least 5" in rare["auc_undefined"]
    fine = run_summary.complete_metrics({"auc": 0.8, "example_count": 40.0, "mean_label": 0.5,
                                         "precision": float("nan")})
    assert fine["auc"] == 0.8 and fine["auc_ci95"] and fine["auc_undefined"] is None
    assert fine["precision"] is None  # no customer predicted to churn: undefined, not NaN
    text = run_summary.format_summary(summary(metrics={"overall": fine, "slices": {"Gender=Other": one_class}}))
    assert "AUC of Gender=Other undefined: only one class" in text


def reference_record(worse: bool = False) -> dict:
    """reference_models.json content as pipeline/reference.py writes it, from synthetic scores."""
    import numpy as np

    from pipeline import reference_models as rm

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2_000)
    good, weak = 1 / (1 + np.exp(-(labels + rng.normal(0, 1, 2_000) - 0.5))), rng.uniform(size=2_000)
    model, other = (weak, good) if worse else (good, weak)
    comparison = rm.compare(labels, model, {rm.LOGISTIC_REGRESSION: other, rm.GRADIENT_BOOSTING: other})
    comparison.update(split="eval", train_rows=6_000, seed=0)
    return {"reference_models": comparison,
            "calibration": {"split": "eval", "bins": 10, "binning": "equal-mass",
                            "overall": rm.calibration(labels, model),
                            "slices": {"Gender=Male": rm.calibration(labels[:500], model[:500])}}}


def test_table_shows_the_reference_models_next_to_the_net_and_the_calibration() -> None:
    record = reference_record()
    text = run_summary.format_summary(summary(**record))
    assert "reference models (same 2,000 eval rows):" in text
    row = record["reference_models"]["references"][0]
    line = next(line for line in text.splitlines() if line.startswith("logistic_regression"))
    assert f"{row['auc']:.4f}" in line and f"{row['auc_difference']:+.4f}" in line and "net beats it" in line
    assert record["reference_models"]["summary"] in text
    overall = record["calibration"]["overall"]
    assert (f"calibration (eval, 2,000 rows): Brier {overall['brier']:.4f}, ECE (10 equal-mass bins) "
            f"{overall['ece']:.4f}") in text
    assert "reference models" not in run_summary.format_summary(summary())


def test_require_beat_reference_reason_names_the_better_reference_model() -> None:
    assert "logistic_regression, gradient_boosting has a better AUC" in run_summary.reference_reason(
        reference_record(worse=True)["reference_models"])
    assert run_summary.reference_reason(reference_record()["reference_models"]).endswith(
        "no reference model has a better AUC beyond the paired 95% interval")


def test_platt_sentence_says_whether_calibration_was_applied() -> None:
    from modules.calibration import Platt

    applied = Platt(0.8, -0.1, True, 0.2, 0.19, 2_000).to_json()
    assert run_summary.platt_sentence(applied) == (
        "Platt scaling applied in the exported graph (scale 0.800, offset "
        "-0.100): validation Brier 0.2000 -> 0.1900 on 2,000 validation rows")
    worse = Platt(validation_brier_before=0.2, validation_brier_after=0.21, validation_rows=9).to_json()
    assert "would not lower" in run_summary.platt_sentence(worse)
    assert "fewer than 100 rows of a class among the 9 validation rows" in run_summary.platt_sentence(
        Platt(validation_brier_before=0.0, validation_rows=9).to_json())
    record = reference_record()
    record["calibration"]["platt"] = applied
    assert "  Platt scaling applied" in run_summary.format_summary(summary(**record))


def test_skipped_reference_models_are_said_in_one_line() -> None:
    import numpy as np

    from pipeline import reference_models as rm

    record = {"reference_models": rm.skipped(np.ones(3), rm.not_fitted(np.ones(3), np.array([0, 1])))}
    text = run_summary.format_summary(summary(**record))
    assert "reference models not fitted: the eval rows hold one class only" in text
    assert "net - model" not in text


def test_table_says_which_hyperparameters_trained_the_model_and_where_they_came_from() -> None:
    training = {"epochs_run": 12, "best_epoch": 2, "best_val_loss": 0.53, "best_val_auc": 0.81,
                "hyperparameters": {"dropout": 0.0, "l2": 0.0001, "learning_rate": 0.0003}, "tuned": False}
    text = run_summary.format_summary(summary(training=training))
    assert "hyperparameters: dropout 0, l2 0.0001, learning_rate 0.0003 (defaults; --tune searches them)" in text
    tuned = {**training, "tuned": True, "hyperparameters": {"dropout": 0.2, "l2": 0.0, "learning_rate": 0.003}}
    tuning = {"trials": [{"trial_id": "1", "score": 0.5, "dropout": 0.2}, {"trial_id": "0", "score": 0.6}]}
    text = run_summary.format_summary(summary(training=tuned, tuning=tuning))
    assert ("hyperparameters: dropout 0.2, l2 0, learning_rate 0.003 (chosen by the Tuner, best of 2 trials on "
            "validation cross-entropy)") in text


def test_hyperparameters_and_tuner_trials_are_read_from_the_trainer_and_tuner_outputs(tmp_path: Path) -> None:
    written = tmp_path / "hyperparameters.json"
    written.write_text('{"tuned": true, "values": {"dropout": 0.1, "l2": 0.0, "learning_rate": 0.001}}')
    assert run_summary.training_hyperparameters(written) == {
        "hyperparameters": {"dropout": 0.1, "l2": 0.0, "learning_rate": 0.001}, "tuned": True}
    assert run_summary.training_hyperparameters(tmp_path / "absent.json") == {}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "tuner_results.json").write_text('[{"trial_id": "0", "score": 0.41, "dropout": 0.1}]')
    assert run_summary.load_tuner_trials(tmp_path / "results") == {
        "trials": [{"trial_id": "0", "score": 0.41, "dropout": 0.1}]}


def test_summary_names_the_eval_scores_the_reference_models_kept(tmp_path: Path) -> None:
    import json

    from ml_metadata.proto import metadata_store_pb2

    from pipeline import reference

    found = metadata_store_pb2.Artifact(uri=str(tmp_path))
    (tmp_path / reference.REFERENCE_FILE).write_text(json.dumps(reference_record(worse=False)))
    assert run_summary.build_summary({"ReferenceModels": {"reference": [found]}})["eval_scores"] is None
    (tmp_path / reference.EVAL_SCORES_FILE).write_text("churn_probability\n0.5\n")
    built = run_summary.build_summary({"ReferenceModels": {"reference": [found]}})
    assert built["eval_scores"] == str(tmp_path / reference.EVAL_SCORES_FILE)
    assert run_summary.build_summary({})["eval_scores"] is None
