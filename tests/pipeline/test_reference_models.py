"""Reference models' maths: DeLong's paired AUC difference, verdicts, calibration (Brier, ECE, reliability)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from pipeline import reference_models as rm


def scored_rows(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a good score and a weaker score of the same rows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    return labels, labels + rng.normal(0, 1.0, n), labels + rng.normal(0, 2.5, n)


def test_delong_aucs_equal_sklearn_and_variance_matches_the_bootstrap() -> None:
    labels, good, weak = scored_rows()
    aucs, covariance = rm.delong(labels, [good, weak])
    assert aucs == pytest.approx([roc_auc_score(labels, good), roc_auc_score(labels, weak)], abs=1e-12)
    rng = np.random.default_rng(1)
    differences = []
    for _ in range(400):
        rows = rng.integers(0, len(labels), len(labels))
        differences.append(roc_auc_score(labels[rows], good[rows]) - roc_auc_score(labels[rows], weak[rows]))
    delong_variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    assert delong_variance == pytest.approx(np.var(differences), rel=0.25)


def test_delong_handles_ties_like_sklearn() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.2, 0.9, 0.1])
    assert rm.delong(labels, [scores])[0][0] == pytest.approx(roc_auc_score(labels, scores))


def test_delong_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        rm.delong(np.ones(5), [np.arange(5.0)])


def test_verdicts_follow_the_paired_interval() -> None:
    labels, good, weak = scored_rows()
    assert rm.paired_auc_difference(labels, good, weak).verdict == rm.BEATS
    assert rm.paired_auc_difference(labels, weak, good).verdict == rm.WORSE
    same = rm.paired_auc_difference(labels, good, good + 1e-9 * np.random.default_rng(2).normal(size=len(good)))
    assert same.verdict == rm.NOT_DISTINGUISHABLE and same.ci95[0] <= 0 <= same.ci95[1]


def test_compare_says_in_words_whether_the_net_holds_its_own() -> None:
    labels, good, weak = scored_rows()
    as_probability = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    better = rm.compare(labels, as_probability(good), {rm.LOGISTIC_REGRESSION: as_probability(weak)})
    assert better["holds_its_own"] and better["references"][0]["verdict"] == rm.BEATS
    assert better["summary"].startswith("The Dense net beats logistic regression")
    assert "worth it" in better["summary"]
    worse = rm.compare(labels, as_probability(weak), {rm.GRADIENT_BOOSTING: as_probability(good)})
    assert not worse["holds_its_own"] and "simpler model ranks churners better" in worse["summary"]
    row = worse["references"][0]
    assert row["auc"] == pytest.approx(roc_auc_score(labels, good), abs=1e-5)
    assert row["auc_difference"] == pytest.approx(worse["model_auc"] - row["auc"], abs=2e-5)
    assert row["brier"] == pytest.approx(brier_score_loss(labels, as_probability(good)), abs=1e-5)


def test_ece_of_a_calibrated_scoring_is_small_and_of_a_shifted_one_is_the_shift() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.uniform(0.05, 0.95, 200_000)
    labels = (rng.uniform(size=len(probabilities)) < probabilities).astype(int)
    assert rm.expected_calibration_error(labels, probabilities) < 0.005
    assert rm.expected_calibration_error(labels, np.clip(probabilities + 0.04, 0, 1)) == pytest.approx(0.04, abs=0.005)


def test_reliability_bins_have_equal_mass_and_ascending_predictions() -> None:
    rng = np.random.default_rng(4)
    probabilities = rng.beta(1, 4, 1_005)
    curve = rm.reliability_curve((rng.uniform(size=1_005) < probabilities).astype(int), probabilities)
    assert len(curve) == rm.CALIBRATION_BINS
    assert {b["rows"] for b in curve} <= {100, 101} and sum(b["rows"] for b in curve) == 1_005
    predicted = [b["predicted"] for b in curve]
    assert predicted == sorted(predicted)


def test_calibration_reports_ece_only_from_a_thousand_rows() -> None:
    rng = np.random.default_rng(5)
    probabilities = rng.uniform(size=rm.MIN_ECE_ROWS)
    labels = (rng.uniform(size=rm.MIN_ECE_ROWS) < probabilities).astype(int)
    enough = rm.calibration(labels, probabilities)
    assert enough["ece"] is not None and enough["ece_reason"] is None
    assert enough["brier"] == pytest.approx(brier_score_loss(labels, probabilities), abs=1e-5)
    few = rm.calibration(labels[:999], probabilities[:999])
    assert few["ece"] is None and "999 eval rows" in few["ece_reason"] and "1,000" in few["ece_reason"]
    assert len(few["reliability"]) == rm.CALIBRATION_BINS
    with pytest.raises(ValueError, match="at least one row"):
        rm.calibration(np.array([]), np.array([]))


def test_reference_models_are_fitted_deterministically_on_numeric_and_categorical_columns() -> None:
    rng = np.random.default_rng(6)
    n = 3_000
    numeric = rng.normal(size=n).astype(np.float32)
    category = rng.integers(0, 4, n)
    logit = 1.5 * numeric + np.array([-1.0, 0.0, 1.0, 2.0])[category]
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    columns = {"x_xf": numeric[:, None], "c_xf": category[:, None].astype(np.int64)}
    sizes = {"c_xf": 5}  # 4 categories + 1 OOV index
    first = rm.score_references(rm.fit_references(columns, labels, sizes, seed=0), columns, sizes)
    again = rm.score_references(rm.fit_references(columns, labels, sizes, seed=0), columns, sizes)
    for name in rm.REFERENCE_NAMES:
        np.testing.assert_array_equal(first[name], again[name])
        assert roc_auc_score(labels, first[name]) > 0.75
    one_hot, ordinal = rm.design_matrix(columns, sizes)
    assert one_hot.shape == (n, 1 + 5) and ordinal.shape == (n, 2)
    assert rm.categorical_mask(columns, sizes).tolist() == [True, False]  # sorted: c_xf, x_xf


def test_one_class_rows_skip_the_reference_models_with_a_reason() -> None:
    both, one = np.array([0, 1, 1, 0]), np.ones(4)
    assert rm.not_fitted(both, both) is None
    assert "eval rows hold one class only" in rm.not_fitted(one, both)
    assert "training rows hold one class only" in rm.not_fitted(both, one)
    record = rm.skipped(one, rm.not_fitted(one, both))
    assert record["references"] == [] and record["model_auc"] is None and record["rows"] == 4
