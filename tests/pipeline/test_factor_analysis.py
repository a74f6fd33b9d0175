"""Permutation importance maths: AUC, bootstrap intervals, their coverage, directions and the sentence."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from data.generate import roc_auc
from pipeline import factor_analysis as fa


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_auc_matches_sklearn_and_the_generators_rank_auc_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.4
    scores = np.round(rng.random(500) + 0.5 * labels, 1)  # few distinct values: many ties
    (auc,) = fa.weighted_auc(scores, labels, np.ones(500))
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert auc == pytest.approx(roc_auc(labels, scores), abs=1e-9)
    continuous = rng.random(500) + labels
    assert fa.weighted_auc(continuous, labels, np.ones(500))[0] == pytest.approx(roc_auc_score(labels, continuous))


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_auc_is_the_auc_of_the_resampled_rows(ties: bool) -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.5
    scores = rng.random(300) + 0.3 * labels
    if ties:
        scores = np.round(scores, 1)
    weights = fa.bootstrap_weights(300, 20, rng)
    assert weights.shape == (300, 20) and np.all(weights.sum(axis=0) == 300)
    found = fa.weighted_auc(scores, labels, weights)
    for column in range(20):
        rows = np.repeat(np.arange(300), weights[:, column].astype(int))
        assert found[column] == pytest.approx(roc_auc_score(labels[rows], scores[rows]), abs=1e-6)


def test_simultaneous_z_is_bonferroni() -> None:
    assert fa.simultaneous_z(1) == pytest.approx(1.959964, abs=1e-5)
    assert fa.simultaneous_z(13) == pytest.approx(2.8905, abs=1e-4)  # each interval at 1 - 0.05 / 13


def synthetic(rows: int, rng: np.random.Generator, effect: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    columns = {name: rng.normal(size=(rows, 1)).astype(np.float32) for name in ("a_xf", "b_xf")}
    labels = (rng.random(rows) < sigmoid(effect * columns["a_xf"].ravel())).astype(int)
    return columns, labels


def predict_from_both(columns: fa.Columns) -> np.ndarray:
    """A 'model' that uses both columns, as one trained on noise would."""
    return sigmoid(1.5 * columns["a_xf"].ravel() + 0.7 * columns["b_xf"].ravel())


def test_a_real_driver_is_distinguishable_and_an_unused_feature_is_zero() -> None:
    rng = np.random.default_rng(2)
    columns, labels = synthetic(1000, rng, effect=2.0)
    auc, found = fa.permutation_importance(lambda c: sigmoid(2 * c["a_xf"].ravel()), columns, labels, rng)
    assert auc == pytest.approx(roc_auc_score(labels, columns["a_xf"].ravel()))
    by_name = {f.feature: f for f in found}
    assert [f.feature for f in found] == ["a_xf", "b_xf"]
    assert by_name["a_xf"].distinguishable and by_name["a_xf"].ci[0] > 0.1
    assert by_name["b_xf"].importance == 0 and max(map(abs, by_name["b_xf"].ci)) < 1e-6
    assert not by_name["b_xf"].distinguishable


def test_intervals_cover_zero_when_the_label_is_noise() -> None:
    """With no signal the family of intervals should include zero about 95 % of the time."""
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(40):
        columns, labels = synthetic(300, rng, effect=0.0)
        _, found = fa.permutation_importance(predict_from_both, columns, labels, rng, permutations=3, bootstraps=200)
        covered += not any(f.distinguishable for f in found)
    assert covered >= 34  # 40 x 0.95 = 38 expected; a 95 % family-wise rate would rarely give fewer than 34


def test_partial_dependence_finds_the_direction_and_each_categorys_effect() -> None:
    rng = np.random.default_rng(4)
    columns = {"z_xf": rng.normal(size=(400, 1)).astype(np.float32), "c_xf": rng.integers(0, 3, (400, 1))}

    def predict(c: fa.Columns) -> np.ndarray:
        return sigmoid(-1.0 * c["z_xf"].ravel() + np.array([0.0, 1.0, -1.0])[c["c_xf"].ravel()])

    ends = fa.numeric_effect(predict, columns, "z_xf")
    values = columns["z_xf"].ravel()
    assert values[ends["low"]["row"]] == pytest.approx(np.quantile(values, 0.1), abs=0.05)
    assert values[ends["high"]["row"]] == pytest.approx(np.quantile(values, 0.9), abs=0.05)
    assert ends["low"]["probability"] > ends["high"]["probability"]  # higher z -> less churn
    category = fa.category_effects(predict, columns, "c_xf", 3)
    assert category[1] > category[0] > category[2]


def test_summary_sentence_says_plainly_when_nothing_is_distinguishable() -> None:
    nothing = [fa.Importance("Age", 0.01, (-0.02, 0.04)), fa.Importance("Gender", -0.01, (-0.05, 0.03))]
    assert fa.summary_sentence(nothing).startswith("No feature's importance is distinguishable from zero: "
                                                   "the model found no churn drivers")
    found = [fa.Importance("Last_Purchase_Days_Ago", 0.12, (0.1, 0.14)), *nothing]
    assert fa.summary_sentence(found).startswith("1 of 3 features drive the model's churn predictions")
    assert fa.summary_sentence(found).endswith(": Last_Purchase_Days_Ago.")
    harmful = [fa.Importance("Age", -0.05, (-0.08, -0.02))]
    assert fa.summary_sentence(harmful).startswith("No feature helps the model rank churn")
