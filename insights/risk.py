"""Risk bands: the one definition of what "high", "medium" and "low" churn risk mean.

"medium" starts where the model's `churn` output turns 1: at the decision threshold stored with the
model (modules/threshold.py; `ChurnModel.threshold`), so every customer the model flags is in a
band above "low". "high" starts at HIGH_RISK, or at the threshold itself when that is higher.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

HIGH_RISK = 0.75
"""Lowest calibrated churn probability of the "high" band (unless the decision threshold is higher)."""
BAND_NAMES: tuple[str, ...] = ("high", "medium", "low")


def risk_bands(threshold: float) -> tuple[tuple[float, str], ...]:
    """(lowest churn probability, band), highest first, for a model whose decision threshold is `threshold`."""
    return ((max(HIGH_RISK, threshold), BAND_NAMES[0]), (threshold, BAND_NAMES[1]), (0.0, BAND_NAMES[2]))


def risk_band(probabilities: npt.ArrayLike, threshold: float) -> npt.NDArray[np.str_]:
    """The band of each probability ([n] -> [n] band names) for a model with decision threshold `threshold`."""
    p = np.asarray(probabilities)
    bands = risk_bands(threshold)
    return np.select([p >= low for low, _ in bands], [name for _, name in bands], default=BAND_NAMES[-1])
