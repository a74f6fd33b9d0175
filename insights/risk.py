"""Risk bands: the one definition of what "high", "medium" and "low" churn risk mean."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from modules import features

RISK_BANDS: tuple[tuple[float, str], ...] = (
    (0.75, "high"),
    (features.DECISION_THRESHOLD, "medium"),
    (0.0, "low"),
)
"""(lowest churn probability, band), highest first: "medium" starts where the model's `churn` output turns 1."""
BAND_NAMES: tuple[str, ...] = tuple(name for _, name in RISK_BANDS)


def risk_band(probabilities: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The band of each probability."""
    p = np.asarray(probabilities)
    return np.select([p >= low for low, _ in RISK_BANDS], list(BAND_NAMES), default=BAND_NAMES[-1])
