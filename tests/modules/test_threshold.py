"""The decision threshold: chosen F1-optimally on validation rows, given, or the fallback; stored and read back."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modules import threshold
from modules.segments import ASSETS_EXTRA


def _f1(p: np.ndarray, y: np.ndarray, value: float) -> float:
    counts = threshold.counts_at(p, y, value)
    return 2 * counts["tp"] / (2 * counts["tp"] + counts["fp"] + counts["fn"])


def test_the_chosen_threshold_maximises_f1_over_the_grid_on_imbalanced_rows() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.02).astype(int)  # a 2 % churn rate: calibrated probabilities rarely reach 0.5
    p = np.clip(0.02 + 0.25 * y * rng.random(5000) + 0.05 * rng.random(5000), 0, 1)
    chosen = threshold.choose(p, y)
    assert chosen.method == threshold.F1_OPTIMAL and chosen.value in threshold.GRID
    best = max(_f1(p, y, t) for t in threshold.GRID)
    assert chosen.validation_f1 == pytest.approx(best) == pytest.approx(_f1(p, y, chosen.value))
    assert chosen.value < 0.5 and chosen.validation_recall > 0  # 0.5 would flag almost nobody here
    assert _f1(p, y, 0.5) < best
    assert (chosen.validation_rows, chosen.validation_churners) == (5000, int(y.sum()))


def test_a_plateau_of_equal_f1_gives_its_middle_grid_point() -> None:
    p, y = np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])
    chosen = threshold.choose(p, y)  # every threshold in (0.2, 0.8] separates the classes perfectly
    assert chosen.validation_f1 == 1.0 and 0.45 <= chosen.value <= 0.55


def test_a_given_threshold_is_used_as_is_and_a_bad_one_is_refused() -> None:
    p, y = np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 1, 1, 1])
    given = threshold.choose(p, y, given=0.1234)
    assert (given.value, given.method) == (0.1234, threshold.GIVEN) and given.validation_recall == 1.0
    for bad in (0.0, 1.0, -0.2, float("nan")):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            threshold.choose(p, y, given=bad)


def test_no_churner_or_no_flagged_churner_falls_back_with_the_reason() -> None:
    none = threshold.choose(np.array([0.1, 0.3]), np.array([0, 0]))
    assert (none.value, none.method) == (threshold.FALLBACK, threshold.FALLBACK_METHOD)
    assert "0 churners among 2 rows" in none.reason and none.validation_recall is None
    hopeless = threshold.choose(np.array([0.999, 0.0001, 0.0001]), np.array([0, 1, 1]))
    assert hopeless.method == threshold.FALLBACK_METHOD and "flags a single validation churner" in hopeless.reason


def test_written_with_the_model_and_read_back_with_a_fallback_for_older_models(tmp_path: Path) -> None:
    chosen = threshold.choose(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    threshold.write(str(tmp_path / "new"), chosen)
    assert threshold.read(tmp_path / "new") == chosen.value
    assert threshold.read_record(tmp_path / "new") == chosen.to_json()
    (tmp_path / "old").mkdir()
    assert threshold.read(tmp_path / "old") == threshold.FALLBACK
    assert "exported before" in threshold.read_record(tmp_path / "old")["reason"]
    broken = tmp_path / "broken" / ASSETS_EXTRA
    broken.mkdir(parents=True)
    (broken / threshold.THRESHOLD_FILE).write_text(json.dumps({"value": 7}))
    with pytest.raises(ValueError, match=r"threshold.json: not a decision threshold record"):
        threshold.read(tmp_path / "broken")


def test_rates_are_none_where_undefined() -> None:
    assert threshold.rates({"tp": 0, "fp": 0, "tn": 5, "fn": 3}) == {
        "precision": None, "recall": 0.0, "binary_accuracy": 5 / 8, "f1": 0.0}
    assert threshold.rates({"tp": 0, "fp": 0, "tn": 5, "fn": 0})["recall"] is None
