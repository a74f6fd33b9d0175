"""Evaluator config: the metrics and threshold grid, slices that exist, and a blessing rule on the overall slice
only."""
from __future__ import annotations

import json

import numpy as np
import tensorflow_model_analysis as tfma

from modules import features, threshold
from pipeline import eval_config
from pipeline.eval_config import build_eval_config


def test_metrics_label_prediction_and_signatures() -> None:
    config = build_eval_config("Target_Churn", ["Gender"], 0.6)
    (spec,) = config.model_specs
    assert spec.label_key == features.transformed_name("Target_Churn")
    assert spec.prediction_key == features.PROBABILITY_OUTPUT
    assert spec.signature_name == "serving_tf_example"
    assert list(spec.preprocessing_function_names) == ["transform_features"]
    (metrics_spec,) = config.metrics_specs
    assert [m.class_name for m in metrics_spec.metrics] == ["AUC", "ExampleCount", eval_config.CLASS_COUNTS]


def test_confusion_matrices_cover_every_threshold_the_trainer_can_choose_and_a_given_one() -> None:
    def grid(config: tfma.EvalConfig) -> list[float]:
        (matrices,) = [m for m in config.metrics_specs[0].metrics if m.class_name == eval_config.CLASS_COUNTS]
        return json.loads(matrices.config)["thresholds"]

    chosen = threshold.choose(np.linspace(0, 1, 101), np.arange(101) % 3 == 0)  # an F1-optimal choice lies on it
    assert chosen.method == threshold.F1_OPTIMAL and chosen.value in grid(build_eval_config("Target_Churn", [], 0.6))
    assert grid(build_eval_config("Target_Churn", [], 0.6)) == list(threshold.GRID)
    with_given = grid(build_eval_config("Target_Churn", [], 0.6, threshold=0.1234))
    assert 0.1234 in with_given and with_given == sorted(with_given) and len(with_given) == len(threshold.GRID) + 1


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
