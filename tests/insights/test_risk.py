"""insights.risk: bands by probability, "medium" starting at the model's decision threshold."""
from __future__ import annotations

import numpy as np

from insights.risk import BAND_NAMES, RISK_BANDS, risk_band
from modules import features


def test_each_band_starts_at_its_lower_bound() -> None:
    lows = [low for low, _ in RISK_BANDS]
    assert lows == sorted(lows, reverse=True) and lows[-1] == 0.0
    probabilities = np.array([*lows, *(np.nextafter(low, -1.0) for low in lows[:-1])])
    expected = [*BAND_NAMES, *BAND_NAMES[1:]]
    assert risk_band(probabilities).tolist() == expected


def test_medium_starts_where_the_model_says_churn() -> None:
    threshold = features.DECISION_THRESHOLD
    assert risk_band(np.array([threshold, np.nextafter(threshold, 0.0)])).tolist() == ["medium", "low"]
    assert risk_band(np.array([1.0, 0.0])).tolist() == ["high", "low"]
