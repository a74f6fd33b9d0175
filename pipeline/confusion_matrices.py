"""TFMA's `ConfusionMatrixAtThresholds`, counted in one pass per example instead of one per threshold.

The Evaluator needs each model's confusion matrix at that model's own decision threshold, which the
Trainer chooses after the eval config is built, so it counts at every point of modules/threshold.py's
grid (199 thresholds). TFMA 0.47 builds a per-threshold entry for every example and threshold
(`tensorflow_model_analysis/contrib/aggregates/binary_confusion_matrices.py`): with a baseline model
that was 40 % of the Evaluator's time on a 2,500-customer month (docs/performance.md). This metric
gives the same matrices (TFMA's `Matrices` value, written as TFMA writes its own) from one bisection
per example: each example is counted in the bin between the two thresholds around its prediction,
and the matrices are cumulative sums of the bins.

Same semantics as TFMA's (tests/pipeline/test_confusion_matrices.py compares the two, ties and edges
included): a row is predicted positive at threshold t when its prediction is > t; rows are weighted by
their example weight when the metric is example-weighted. Labels must be 0 or 1 (the churn label; TFMA
would count a label as positive where it is > t). TFMA's histogram shortcut (`num_thresholds`) is not
exact: it counts predictions in buckets of 1e-4.
"""
from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from tensorflow_model_analysis.metrics import binary_confusion_matrices, metric_types, metric_util

NAME = "confusion_matrix_at_thresholds"
"""The output's metric name: TFMA's `ConfusionMatrixAtThresholds` name, so readers of TFMA's output
(pipeline/run_summary.py, TFMA's own tools) see no difference."""

_Accumulator = list[list[float]]
"""[positives, negatives]: each the weight of rows per bin; bin i holds predictions in (t[i-1], t[i]]."""


class BinnedConfusionMatrixAtThresholds(metric_types.Metric):  # type: ignore[misc]  # TFMA is untyped
    """Confusion matrices at `thresholds` (a list of floats), one `Matrices` value per model and slice.

    Used in an EvalConfig as `MetricConfig(class_name="BinnedConfusionMatrixAtThresholds",
    module="pipeline.confusion_matrices", config='{"thresholds": [...]}')`.

    Raises:
      ValueError: `thresholds` is empty or holds NaN.
    """

    def __init__(self, thresholds: list[float], name: str = NAME) -> None:
        values = sorted(float(t) for t in thresholds)
        if not values or any(t != t for t in values):
            raise ValueError(f"thresholds must be a non-empty list of numbers, got {thresholds!r}")
        super().__init__(metric_util.merge_per_key_computations(_computations), thresholds=values, name=name)


def _computations(thresholds: list[float], name: str = NAME, eval_config: Any = None, model_name: str = "",
                  output_name: str = "", sub_key: Any = None, aggregation_type: Any = None,
                  class_weights: Any = None, example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted, aggregation_type=aggregation_type)
    combiner = BinnedMatricesCombiner(key, eval_config, thresholds, aggregation_type, class_weights,
                                      example_weighted)
    return [metric_types.MetricComputation(keys=[key], preprocessors=None, combiner=combiner)]


class BinnedMatricesCombiner(beam.CombineFn):  # type: ignore[misc]  # Beam's CombineFn is untyped
    """Beam CombineFn: StandardMetricInputs -> {key: binary_confusion_matrices.Matrices}."""

    def __init__(self, key: metric_types.MetricKey, eval_config: Any, thresholds: list[float],
                 aggregation_type: Any, class_weights: Any, example_weighted: bool) -> None:
        self._key = key
        self._eval_config = eval_config
        self._thresholds = list(thresholds)
        self._aggregation_type = aggregation_type
        self._class_weights = class_weights
        self._example_weighted = example_weighted

    def create_accumulator(self) -> _Accumulator:
        bins = len(self._thresholds) + 1
        return [[0.0] * bins, [0.0] * bins]

    def add_input(self, accumulator: _Accumulator, element: metric_types.StandardMetricInputs) -> _Accumulator:
        positives, negatives = accumulator
        thresholds = self._thresholds
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, sub_key=self._key.sub_key, flatten=True,
                aggregation_type=self._aggregation_type, class_weights=self._class_weights,
                example_weighted=self._example_weighted):
            label, prediction, weight = (float(metric_util.safe_to_scalar(v)) for v in (label, prediction, weight))
            # bisect_left: the number of thresholds < prediction (0 for NaN, which TFMA never counts as > t)
            predicted = bisect.bisect_left(thresholds, prediction)
            if label == 1.0:
                positives[predicted] += weight
            elif label == 0.0:
                negatives[predicted] += weight
            else:
                raise ValueError(f"{self._key.name}: labels must be 0 or 1, got {label}")
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        merged = self.create_accumulator()
        for positives, negatives in accumulators:
            for i, (p, n) in enumerate(zip(positives, negatives, strict=True)):
                merged[0][i] += p
                merged[1][i] += n
        return merged

    def extract_output(self, accumulator: _Accumulator) -> dict[metric_types.MetricKey, Any]:
        positives, negatives = accumulator
        # At threshold i, bins 0..i hold the predictions <= t[i] (predicted negative), bins i+1.. those > t[i].
        fn, tn = list(itertools.accumulate(positives))[:-1], list(itertools.accumulate(negatives))[:-1]
        tp = list(itertools.accumulate(reversed(positives)))[::-1][1:]
        fp = list(itertools.accumulate(reversed(negatives)))[::-1][1:]
        matrices = binary_confusion_matrices.Matrices(thresholds=list(self._thresholds), tp=tp, tn=tn, fp=fp, fn=fn)
        return {self._key: matrices}
