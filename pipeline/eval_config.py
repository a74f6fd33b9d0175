"""Evaluator configuration: metrics, slices, and the blessing rule (overall slice only)."""
from __future__ import annotations

import json
from collections.abc import Iterable

import tensorflow_model_analysis as tfma

from modules import features
from modules import threshold as decision

METRICS = ("AUC", "ExampleCount")
CLASS_COUNTS = "BinnedConfusionMatrixAtThresholds"
"""Confusion matrices over modules.threshold's grid (plus a `--threshold` off it): TFMA's
`ConfusionMatrixAtThresholds`, counted in one pass per example by pipeline/confusion_matrices.py
(`CLASS_COUNTS_MODULE`) instead of TFMA's pass per example and threshold; same values, same output name.

The model's decision threshold is chosen by the Trainer, after this config is built, and lies on the
grid: the run summary reads precision, recall, accuracy and the confusion matrix of each model at its
own threshold from these matrices (pipeline/run_summary.py), not TFMA's Precision/Recall/BinaryAccuracy,
which would be at a fixed 0.5. Any of them also gives the class counts behind each AUC's confidence
interval and the churn rate (tp + fn: churned); it replaced TFMA's MeanLabel, a metric of its own with
its own per-example Python pass (docs/performance.md, "Pipeline at scale")."""
CLASS_COUNTS_MODULE = "pipeline.confusion_matrices"
GATING_METRIC_CLASS = "AUC"
NOT_WORSE = -1e-10
"""Change threshold: candidate AUC - baseline AUC must be >= this, i.e. not worse (ties pass)."""


def build_eval_config(label_key: str, slice_keys: Iterable[str], min_auc: float,
                      threshold: float | None = None) -> tfma.EvalConfig:
    """Metrics overall and per slice; blessed iff overall AUC >= `min_auc` and not worse than the baseline.

    `threshold` (`--threshold`, None when the Trainer chooses it) is added to the confusion matrices' grid.

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
                preprocessing_function_names=[features.TRANSFORM_FEATURES_SIGNATURE],
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
                + [tfma.MetricConfig(class_name=CLASS_COUNTS, module=CLASS_COUNTS_MODULE,
                                     config=json.dumps({"thresholds": decision.evaluation_grid(threshold)}))]
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
