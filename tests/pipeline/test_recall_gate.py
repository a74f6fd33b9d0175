"""RecallGate's rule: a model that flags no eval churner at its own decision threshold is refused, with the reason."""
from __future__ import annotations

from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline.recall_gate import recall_reason
from pipeline.run_summary import at_threshold


def _matrices(rows: list[tuple[float, int, int, int, int]]) -> list:
    """TFMA's ConfusionMatrixAtThresholds matrices: (threshold, tp, fp, tn, fn) each."""
    value = metrics_for_slice_pb2.ConfusionMatrixAtThresholds()
    for t, tp, fp, tn, fn in rows:
        value.matrices.add(threshold=t, true_positives=tp, false_positives=fp, true_negatives=tn, false_negatives=fn)
    return list(value.matrices)


GRID = _matrices([(0.1, 18, 40, 930, 2), (0.3, 9, 6, 964, 11), (0.6, 0, 3, 967, 20)])


def test_metrics_are_read_at_the_models_own_threshold() -> None:
    low = at_threshold(GRID, 0.1)
    assert low["confusion_matrix"] == {"threshold": 0.1, "tp": 18, "fp": 40, "tn": 930, "fn": 2}
    assert (low["precision"], low["recall"], low["binary_accuracy"]) == (18 / 58, 18 / 20, 948 / 990)
    assert at_threshold(GRID, 0.3)["recall"] == 9 / 20 and at_threshold(GRID, 0.3)["mean_label"] == 20 / 990
    high = at_threshold(GRID, 0.6)
    assert high["recall"] == 0.0 and high["precision"] == 0.0


def test_recall_zero_at_the_models_threshold_is_refused_in_words() -> None:
    reason = recall_reason(at_threshold(GRID, 0.6))
    assert reason is not None
    assert "recall 0 at the model's decision threshold 0.6" in reason and "none of the 20 churners" in reason
    assert "--threshold" in reason  # the way out
    assert recall_reason(at_threshold(GRID, 0.3)) is None  # 9 of 20 churners flagged


def test_an_eval_split_without_churners_is_left_to_the_evaluators_auc_rule() -> None:
    assert recall_reason(at_threshold(_matrices([(0.5, 0, 2, 98, 0)]), 0.5)) is None
    assert recall_reason({"confusion_matrix": None}) is None
