"""Platt scaling: fitted on validation rows, kept only when it lowers their Brier score, the same in NumPy and TF."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from modules import calibration


def overconfident(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true probabilities, labels drawn from them, an overconfident model's probabilities: logit x 2.5)."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.2, n)
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    return 1 / (1 + np.exp(-true_logit)), labels, 1 / (1 + np.exp(-(2.5 * true_logit + 0.3)))


def test_platt_undoes_an_overconfident_model_and_lowers_the_brier_score() -> None:
    _, labels, model = overconfident()
    platt = calibration.fit_platt(model, labels)
    assert platt.applied and platt.validation_rows == len(labels)
    assert platt.scale == pytest.approx(1 / 2.5, rel=0.08) and platt.offset == pytest.approx(-0.3 / 2.5, abs=0.06)
    assert platt.validation_brier_after < platt.validation_brier_before - 0.01
    calibrated = calibration.apply_numpy(model, platt.scale, platt.offset)
    assert np.mean((calibrated - labels) ** 2) == pytest.approx(platt.validation_brier_after)


def test_too_few_churners_get_the_identity_however_miscalibrated() -> None:
    _, labels, model = overconfident()
    churners = np.flatnonzero(labels == 1)
    rows = np.concatenate([np.flatnonzero(labels == 0)[:2_000], churners[:calibration.MIN_CLASS_ROWS - 1]])
    few = calibration.fit_platt(model[rows], labels[rows])
    assert not few.applied and few.validation_brier_after is None and few.validation_rows == len(rows)
    rows = np.concatenate([rows, churners[calibration.MIN_CLASS_ROWS - 1:calibration.MIN_CLASS_ROWS]])
    assert calibration.fit_platt(model[rows], labels[rows]).applied


def test_a_calibrated_model_gets_at_most_a_tiny_change_and_one_class_gets_the_identity() -> None:
    truth, labels, _ = overconfident()
    platt = calibration.fit_platt(truth, labels)
    if platt.applied:  # maximum likelihood may still shave a sliver of Brier score off on the sample
        assert platt.scale == pytest.approx(1.0, abs=0.05)
        assert platt.validation_brier_after <= platt.validation_brier_before
    else:
        assert (platt.scale, platt.offset) == (1.0, 0.0)
    one_class = calibration.fit_platt(truth[:100], np.ones(100))
    assert not one_class.applied and (one_class.scale, one_class.offset) == (1.0, 0.0)
    assert one_class.to_json()["method"] == "platt"


def test_graph_and_numpy_calibration_agree_and_the_identity_passes_through() -> None:
    p = np.array([1e-9, 0.01, 0.3, 0.5, 0.8, 1.0], dtype=np.float32)
    platt = calibration.Platt(scale=0.6, offset=0.2, applied=True)
    np.testing.assert_allclose(calibration.apply(tf.constant(p), platt).numpy(),
                               calibration.apply_numpy(p, 0.6, 0.2), rtol=1e-6)
    identity = tf.constant(p)
    assert calibration.apply(identity, calibration.Platt()) is identity
