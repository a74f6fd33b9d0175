"""Platt scaling of the churn probability, fitted on the validation split and kept only when it helps.

The Dense net is trained with binary cross-entropy and early stopping, which leaves its probabilities
close to calibrated but not exactly (the bundled data's eval ECE was 0.028 before this). Platt scaling
(Platt 1999, "Probabilistic outputs for support vector machines"; for neural nets, Guo et al. 2017,
"On Calibration of Modern Neural Networks", whose temperature scaling is the offset-free case) maps
the model's logit z to sigmoid(scale * z + offset), with the two numbers fitted by maximum likelihood
on the validation split. A positive scale keeps the ranking, so AUC is unchanged.

It is applied only when it lowers the validation Brier score; otherwise the identity (scale 1,
offset 0) is exported. Every serving signature returns the calibrated probability; `explain`'s
attributions stay on the model's own (uncalibrated) logit scale. Pure NumPy/TensorFlow, no I/O.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

_EPSILON = 1e-7
MIN_CLASS_ROWS = 100
"""Platt scaling is fitted only when the validation split holds at least this many rows of each class.
On the 3 % churn benchmark table (about 65 churners in validation) a fit that lowered the validation
Brier score raised the eval split's from 0.0257 to 0.0274 (docs/performance.md)."""
CALIBRATION_FILE = "calibration.json"
"""Written into the SavedModel's assets.extra/ (modules/segments.ASSETS_EXTRA) by the Trainer."""


@dataclasses.dataclass(frozen=True)
class Platt:
    """p_calibrated = sigmoid(scale * logit(p) + offset); the identity when `applied` is False."""

    scale: float = 1.0
    offset: float = 0.0
    applied: bool = False
    validation_brier_before: float | None = None
    validation_brier_after: float | None = None
    validation_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", **dataclasses.asdict(self)}


def logit_of(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with p clipped to [1e-7, 1 - 1e-7]."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(p) - np.log1p(-p)


def fit_platt(probabilities: np.ndarray, labels: np.ndarray) -> Platt:
    """Fit Platt scaling on validation rows; keep it only if it lowers their Brier score.

    Args:
      probabilities: [n] the model's churn probabilities on the validation split.
      labels: [n] 0/1.
    Returns:
      the fitted Platt (applied) or the identity (not applied: it did not lower the Brier score,
      or the validation rows hold fewer than MIN_CLASS_ROWS of a class; then validation_brier_after
      is None).
    """
    from sklearn.linear_model import LogisticRegression

    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int)
    before = float(np.mean((p - y) ** 2)) if len(y) else None
    if min(int(y.sum()), int(len(y) - y.sum())) < MIN_CLASS_ROWS:
        return Platt(validation_brier_before=before, validation_rows=len(y))
    z = logit_of(p)[:, None]
    # A very weak penalty: plain maximum likelihood, kept finite on separable data.
    fitted = LogisticRegression(C=1e6, max_iter=1_000).fit(z, y)
    scale, offset = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
    after = float(np.mean((apply_numpy(p, scale, offset) - y) ** 2))
    if scale <= 0 or after >= before:
        return Platt(validation_brier_before=before, validation_brier_after=after, validation_rows=len(y))
    return Platt(scale, offset, True, before, after, len(y))


def apply_numpy(probabilities: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """The calibrated probabilities, in NumPy (the same maths as `apply`)."""
    return 1.0 / (1.0 + np.exp(-(scale * logit_of(probabilities) + offset)))


def apply(probability: tf.Tensor, platt: Platt) -> tf.Tensor:
    """The calibrated probability [batch] inside the exported graph; `probability` itself when not applied."""
    if not platt.applied:
        return probability
    p = tf.clip_by_value(tf.cast(probability, tf.float64), _EPSILON, 1 - _EPSILON)
    z = tf.math.log(p) - tf.math.log1p(-p)
    return tf.cast(tf.sigmoid(platt.scale * z + platt.offset), probability.dtype)
