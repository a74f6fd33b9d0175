"""The decision threshold behind the `churn` output: the one place that chooses it and reads it back.

`churn` is 1 when the calibrated `churn_probability` (modules/calibration.py) is >= the threshold.
The Trainer chooses it on the validation split, after Platt scaling, so it is a threshold on the
probability every signature serves:
- default: the F1-optimal threshold (the harmonic mean of precision and recall, the usual operating
  point for an imbalanced positive class; e.g. Lipton et al. 2014, "Thresholding Classifiers to
  Maximize F1 Score"), searched over `GRID`; where several grid points give the best F1 (they lie
  between the same two validation probabilities) the middle one is taken;
- `--threshold` (`custom_config["threshold"]`): that value, as given.
It is stored with the model twice: as a constant in the exported graph (so the model server needs
nothing else) and in `assets.extra/threshold.json` (`THRESHOLD_FILE`), which `read` gives back to
scoring, risk bands, the run summary, the report and the prediction store.

`GRID` is also the Evaluator's threshold grid (pipeline/eval_config.py builds it before training),
so TFMA's confusion matrix holds the eval split's counts at exactly the chosen value; a `--threshold`
off the grid is added to the Evaluator's grid by `evaluation_grid`. TFMA counts a row as positive
when its probability is > a threshold, the graph when it is >= it: the two differ only for a
probability exactly equal to the threshold.

`FALLBACK` (0.5) is used only for a model exported before this module existed (no threshold.json),
or when the validation split gives no threshold (no churner in it, or no threshold with F1 > 0).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

FALLBACK = 0.5
"""Threshold of a model exported without threshold.json, or when validation data cannot choose one."""
THRESHOLD_FILE = "threshold.json"
"""Written into the SavedModel's assets.extra/ (modules/segments.ASSETS_EXTRA) by the Trainer."""
CUSTOM_CONFIG_KEY = "threshold"
"""Trainer custom_config key of `--threshold` (absent: F1-optimal)."""
F1_OPTIMAL, GIVEN, FALLBACK_METHOD = "f1_optimal", "given", "fallback"
GRID: tuple[float, ...] = tuple(round(i / 200, 3) for i in range(1, 200))
"""0.005, 0.010, ..., 0.995: the thresholds the F1 search tries and the Evaluator's confusion matrices."""


@dataclasses.dataclass(frozen=True)
class Threshold:
    """The chosen threshold and what it gave on the validation split (counts of rows; None when undefined)."""

    value: float = FALLBACK
    method: str = FALLBACK_METHOD
    reason: str = ""
    validation_rows: int = 0
    validation_churners: int = 0
    validation_precision: float | None = None
    validation_recall: float | None = None
    validation_f1: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_value(value: float) -> float:
    """`value` if it is a usable threshold (0 < value < 1); raises ValueError naming it otherwise."""
    if not (isinstance(value, (int, float)) and 0.0 < float(value) < 1.0) or math.isnan(float(value)):
        raise ValueError(f"a decision threshold must lie strictly between 0 and 1, got {value!r}")
    return float(value)


def evaluation_grid(given: float | None = None) -> list[float]:
    """The Evaluator's thresholds: `GRID`, plus a `--threshold` value not on it (sorted)."""
    return sorted({*GRID, *(() if given is None else (check_value(given),))})


def counts_at(probabilities: np.ndarray, labels: np.ndarray, value: float) -> dict[str, int]:
    """Confusion counts {"tp", "fp", "tn", "fn"} of `probability >= value` against 0/1 labels ([n] each)."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int) == 1
    predicted = p >= value
    return {"tp": int(np.sum(predicted & y)), "fp": int(np.sum(predicted & ~y)),
            "tn": int(np.sum(~predicted & ~y)), "fn": int(np.sum(~predicted & y))}


def rates(counts: dict[str, float]) -> dict[str, float | None]:
    """Precision, recall, accuracy and F1 of confusion counts; None where the denominator is 0."""
    tp, fp, tn, fn = (float(counts[k]) for k in ("tp", "fp", "tn", "fn"))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    total = tp + fp + tn + fn
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"precision": precision, "recall": recall, "binary_accuracy": (tp + tn) / total if total else None,
            "f1": f1}


def choose(probabilities: np.ndarray, labels: np.ndarray, given: float | None = None) -> Threshold:
    """The decision threshold for a model, from its calibrated validation probabilities.

    Args:
      probabilities: [n] calibrated churn probabilities on the validation split (what `churn` is decided on).
      labels: [n] 0/1.
      given: `--threshold`, used as is when not None (it must lie in (0, 1), else ValueError).
    Returns:
      a Threshold: `given`, else the F1-optimal GRID value, else FALLBACK with the reason (no churner
      in the validation split, or no grid threshold flags any churner).
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int)
    churners = int(y.sum())

    def result(value: float, method: str, reason: str) -> Threshold:
        found = rates(counts_at(p, y, value))
        return Threshold(value, method, reason, len(y), churners, found["precision"], found["recall"], found["f1"])

    if given is not None:
        return result(check_value(given), GIVEN, "given with --threshold")
    if churners == 0 or churners == len(y):
        return result(FALLBACK, FALLBACK_METHOD,
                      f"the validation split has {churners} churners among {len(y)} rows: no threshold to choose")
    grid = np.asarray(GRID)
    positives, negatives = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(positives) - np.searchsorted(positives, grid, side="left")  # rows with p >= each grid value
    fp = len(negatives) - np.searchsorted(negatives, grid, side="left")
    f1 = 2 * tp / (2 * tp + fp + (churners - tp))
    if f1.max() <= 0:
        return result(FALLBACK, FALLBACK_METHOD, "no threshold in the grid flags a single validation churner")
    best = np.flatnonzero(f1 == f1.max())
    value = float(grid[best[len(best) // 2]])
    return result(value, F1_OPTIMAL, f"F1-optimal on {len(y):,} validation rows ({churners:,} churners)")


def write(model_dir: str, threshold: Threshold) -> None:
    """Write `threshold` as `<model_dir>/assets.extra/threshold.json` (local or gs:// paths)."""
    import tensorflow as tf

    from modules.segments import ASSETS_EXTRA

    extra = os.path.join(model_dir, ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, THRESHOLD_FILE), "w") as handle:
        json.dump(threshold.to_json(), handle, indent=2)


def read_record(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """threshold.json of a SavedModel folder; for a model exported before it existed, a FALLBACK record.

    Raises ValueError naming the file when it exists but holds no usable threshold."""
    import tensorflow as tf

    from modules.segments import ASSETS_EXTRA

    path = os.path.join(os.fspath(model_dir), ASSETS_EXTRA, THRESHOLD_FILE)
    if not tf.io.gfile.exists(path):
        return Threshold(reason=f"no {THRESHOLD_FILE} with the model: exported before thresholds were "
                                "chosen on validation data").to_json()
    try:
        with tf.io.gfile.GFile(path) as handle:
            record = json.load(handle)
        check_value(record["value"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a decision threshold record ({e}); run the pipeline again") from None
    return record


def read(model_dir: str | os.PathLike[str]) -> float:
    """The decision threshold a SavedModel's `churn` output uses (FALLBACK for models exported before it)."""
    return float(read_record(model_dir)["value"])


def nearest(thresholds: Iterable[float], value: float) -> int:
    """Index of the threshold in `thresholds` closest to `value` (the Evaluator's grid holds it exactly)."""
    found = list(thresholds)
    return min(range(len(found)), key=lambda i: abs(found[i] - value))
