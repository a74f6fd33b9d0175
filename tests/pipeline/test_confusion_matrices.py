"""pipeline/confusion_matrices.py gives TFMA's own ConfusionMatrixAtThresholds matrices, ties and edges included."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import binary_confusion_matrices, metric_specs, metric_types

from modules import threshold
from pipeline import confusion_matrices, eval_config


def inputs(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray) -> list[Any]:
    return [metric_types.StandardMetricInputs(label=np.array([y]), prediction=np.array([p]),
                                              example_weight=np.array([w]))
            for y, p, w in zip(labels, predictions, weights, strict=True)]


def combine(computations: list[Any], elements: list[Any], split: int) -> Any:
    """Runs the combiner as Beam would: two bundles, merged, then any derived computation."""
    combiner = computations[0].combiner
    combiner.setup()
    parts = []
    for bundle in (elements[:split], elements[split:]):
        accumulator = combiner.create_accumulator()
        for element in bundle:
            accumulator = combiner.add_input(accumulator, element)
        parts.append(accumulator)
    result = combiner.extract_output(combiner.merge_accumulators(parts))
    for derived in computations[1:]:
        result.update(derived.result(result))
    (matrices,) = [v for v in result.values() if isinstance(v, binary_confusion_matrices.Matrices)]
    return matrices


def ours_and_tfmas(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray, thresholds: list[float],
                   example_weighted: bool = False) -> tuple[Any, Any]:
    elements = inputs(labels, predictions, weights)
    metric = confusion_matrices.BinnedConfusionMatrixAtThresholds(thresholds=thresholds)
    ours = combine(metric.computations(example_weighted=example_weighted), elements, len(elements) // 3)
    tfmas = combine(binary_confusion_matrices.binary_confusion_matrices(
        thresholds=thresholds, example_weighted=example_weighted), elements, len(elements) // 2)
    return ours, tfmas


@pytest.mark.parametrize("example_weighted", [False, True])
def test_the_matrices_are_tfmas_on_the_trainers_grid(example_weighted: bool) -> None:
    rng = np.random.default_rng(7)
    n = 3000
    predictions = rng.random(n)
    predictions[:400] = rng.choice(threshold.GRID, 400)  # exactly on a threshold: not > it
    predictions[400:420] = [0.0, 1.0] * 10
    predictions[420:425] = np.nan  # never > a threshold
    labels = (rng.random(n) < predictions).astype(float)
    weights = rng.choice([0.5, 1.0, 2.0], n)
    ours, tfmas = ours_and_tfmas(labels, predictions, weights, list(threshold.GRID), example_weighted)
    assert ours.thresholds == pytest.approx(tfmas.thresholds)
    for field in ("tp", "fp", "tn", "fn"):
        assert getattr(ours, field) == pytest.approx(getattr(tfmas, field), abs=1e-9), field
    assert ours.to_proto() == tfmas.to_proto()  # what TFMA writes, so pipeline/run_summary.py reads the same


def test_a_threshold_off_the_grid_and_an_empty_slice() -> None:
    grid = threshold.evaluation_grid(0.1234)
    ours, tfmas = ours_and_tfmas(np.array([1.0, 0.0, 1.0]), np.array([0.1234, 0.12341, 0.99]), np.ones(3), grid)
    assert 0.1234 in ours.thresholds
    assert (ours.tp, ours.fp, ours.tn, ours.fn) == (tfmas.tp, tfmas.fp, tfmas.tn, tfmas.fn)
    empty = combine(confusion_matrices.BinnedConfusionMatrixAtThresholds(thresholds=grid).computations(), [], 0)
    assert set(empty.tp) == set(empty.fp) == set(empty.tn) == set(empty.fn) == {0.0}


def test_the_eval_config_loads_it_from_its_module_as_the_evaluator_does() -> None:
    config = eval_config.build_eval_config("Target_Churn", [], 0.6)
    (metric_config,) = [m for m in config.metrics_specs[0].metrics if m.class_name == eval_config.CLASS_COUNTS]
    metric = metric_specs.metric_instance(metric_config)
    assert isinstance(metric, confusion_matrices.BinnedConfusionMatrixAtThresholds)
    (key,) = {k for c in metric.computations(model_names=["candidate"]) for k in c.keys}
    assert key.name == confusion_matrices.NAME == "confusion_matrix_at_thresholds" and key.model_name == "candidate"
    assert json.loads(metric_config.config)["thresholds"] == list(threshold.GRID)
    assert isinstance(tfma.MetricConfig(), type(metric_config))


@pytest.mark.parametrize("thresholds", [[], [0.5, float("nan")]])
def test_bad_thresholds_are_refused(thresholds: list[float]) -> None:
    with pytest.raises(ValueError, match="thresholds must be a non-empty list of numbers"):
        confusion_matrices.BinnedConfusionMatrixAtThresholds(thresholds=thresholds)


def test_a_label_other_than_0_or_1_is_refused() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1, got 0.5"):
        ours_and_tfmas(np.array([0.5]), np.array([0.3]), np.ones(1), [0.5])
