"""Evaluator config: the five metrics, slices that exist, and a blessing rule on the overall slice only."""
from __future__ import annotations

import tensorflow_model_analysis as tfma

from modules import features
from pipeline.eval_config import build_eval_config


def test_metrics_label_prediction_and_signatures() -> None:
    config = build_eval_config("Target_Churn", ["Gender"], 0.6)
    (spec,) = config.model_specs
    assert spec.label_key == features.transformed_name("Target_Churn")
    assert spec.prediction_key == features.PROBABILITY_OUTPUT
    assert spec.signature_name == "serving_tf_example"
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    (metrics_spec,) = config.metrics_specs
    assert [m.class_name for m in metrics_spec.metrics] == ["AUC", "Precision", "Recall", "BinaryAccuracy",
                                                           "ExampleCount", "ConfusionMatrixAtThresholds"]


def test_slices_are_overall_plus_each_given_column() -> None:
    config = build_eval_config("Target_Churn", ["Gender", "Email_Opt_In"], 0.6)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["Gender"], ["Email_Opt_In"]]


def test_only_auc_is_gated_and_only_on_the_overall_slice() -> None:
    config = build_eval_config("Target_Churn", ["Gender"], 0.65)
    gated = [m for m in config.metrics_specs[0].metrics if m.per_slice_thresholds or m.HasField("threshold")]
    (auc,) = gated
    assert auc.class_name == "AUC" and not auc.HasField("threshold")
    (rule,) = auc.per_slice_thresholds
    assert list(rule.slicing_specs) == [tfma.SlicingSpec()]
    assert rule.threshold.value_threshold.lower_bound.value == 0.65
    change = rule.threshold.change_threshold
    assert change.direction == tfma.MetricDirection.HIGHER_IS_BETTER and -1e-9 < change.absolute.value <= 0
