"""Evaluator configuration: metrics, slices, and the blessing rule (overall slice only)."""
from __future__ import annotations

import json
from collections.abc import Iterable

import tensorflow_model_analysis as tfma

from modules import features

METRICS = ("AUC", "Precision", "Recall", "BinaryAccuracy", "ExampleCount")
CLASS_COUNTS = "ConfusionMatrixAtThresholds"
"""The class counts behind each AUC's confidence interval and the churn rate (tp + fn: churned).

At the decision threshold it is the confusion matrix Precision, Recall and BinaryAccuracy are
computed from. It replaced TFMA's MeanLabel, a metric of its own with its own per-example Python
pass, so dropping it made the Evaluator faster (docs/performance.md, "Pipeline at scale")."""
GATING_METRIC_CLASS = "AUC"
NOT_WORSE = -1e-10
"""Change threshold: candidate AUC - baseline AUC must be >= this, i.e. not worse (ties pass)."""


def build_eval_config(label_key: str, slice_keys: Iterable[str], min_auc: float) -> tfma.EvalConfig:
    """Metrics overall and per slice; blessed iff overall AUC >= `min_auc` and not worse than the baseline.

    The threshold is attached to the overall slice only: a small slice (e.g. one gender) must not be
    able to block a model that is good overall. On the first run there is no blessed baseline and
    TFX drops the change threshold, so only the AUC lower bound applies.
    """
    overall = tfma.SlicingSpec()
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                model_type=tfma.TF_GENERIC,  # signatures only: skips a slow, pointless Keras load attempt
                signature_name="serving_tf_example",
                preprocessing_function_names=["transform_features"],
                label_key=features.transformed_name(label_key),
                prediction_key=features.PROBABILITY_OUTPUT,
            )
        ],
        slicing_specs=[overall, *(tfma.SlicingSpec(feature_keys=[k]) for k in slice_keys)],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name=name,
                        per_slice_thresholds=[_blessing_rule(overall, min_auc)] if name == GATING_METRIC_CLASS else [],
                    )
                    for name in METRICS
                ]
                + [tfma.MetricConfig(class_name=CLASS_COUNTS,
                                     config=json.dumps({"thresholds": [features.DECISION_THRESHOLD]}))]
            )
        ],
    )


def _blessing_rule(overall: tfma.SlicingSpec, min_auc: float) -> tfma.PerSliceMetricThreshold:
    return tfma.PerSliceMetricThreshold(
        slicing_specs=[overall],
        threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_auc}),
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": NOT_WORSE}
            ),
        ),
    )
