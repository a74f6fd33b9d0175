"""insights.risk: bands by probability, "medium" starting at the model's decision threshold."""
from __future__ import annotations

import numpy as np
import pytest

from insights.risk import BAND_NAMES, HIGH_RISK, risk_band, risk_bands
from modules import threshold as decision


@pytest.mark.parametrize("threshold", [0.04, decision.FALLBACK, 0.9])
def test_each_band_starts_at_its_lower_bound(threshold: float) -> None:
    lows = [low for low, _ in risk_bands(threshold)]
    assert lows == sorted(lows, reverse=True) and lows[-1] == 0.0
    distinct = sorted(set(lows), reverse=True)
    names = [dict((low, name) for low, name in reversed(risk_bands(threshold)))[low] for low in distinct]
    below = [np.nextafter(low, -1.0) for low in distinct[:-1]]
    probabilities = np.array([*distinct, *below])
    assert risk_band(probabilities, threshold).tolist() == [*names, *names[1:]]


@pytest.mark.parametrize("threshold", [0.04, decision.FALLBACK])
def test_medium_starts_where_the_model_says_churn(threshold: float) -> None:
    assert risk_band(np.array([threshold, np.nextafter(threshold, 0.0)]), threshold).tolist() == ["medium", "low"]
    assert risk_band(np.array([1.0, 0.0]), threshold).tolist() == ["high", "low"]
    assert risk_band(np.array([HIGH_RISK]), threshold).tolist() == ["high"]


def test_a_threshold_above_the_high_band_makes_every_flagged_customer_high() -> None:
    assert risk_band(np.array([0.95, 0.91]), 0.92).tolist() == ["high", "low"]
    assert BAND_NAMES == ("high", "medium", "low")
