"""Reference models and calibration: the maths behind the ReferenceModels component. Pure, no I/O.

Reference models are the simple models a data scientist tries first: a regularised logistic
regression and a gradient-boosted tree model (scikit-learn's), fitted on the same transformed
training rows as the Dense net and scored on the same eval rows. "Baseline" already means the last
blessed model (pipeline/baseline.py); these are *reference* models.

The net is compared with each of them by the paired difference of AUCs on the same rows, with its
95 % interval from DeLong's variance of correlated AUCs (DeLong, DeLong & Clarke-Pearson 1988,
"Comparing the areas under two or more correlated ROC curves", Biometrics 44(3); computed with the
midrank algorithm of Sun & Xu 2014, IEEE Signal Processing Letters 21(11)).

Calibration: Brier score (scikit-learn), expected calibration error over 10 equal-mass bins
(Naeini, Cooper & Hauskrecht 2015; equal-mass as in Nixon et al. 2019, "Measuring Calibration in
Deep Learning"), and the reliability curve over the same bins.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

Columns = Mapping[str, npt.NDArray[Any]]
"""Transformed feature name -> [rows] or [rows, 1] values: float z-scores, or int64 vocabulary indices."""

LOGISTIC_REGRESSION, GRADIENT_BOOSTING = "logistic_regression", "gradient_boosting"
REFERENCE_NAMES = {LOGISTIC_REGRESSION: "logistic regression (L2, C=1)",
                   GRADIENT_BOOSTING: "gradient-boosted trees (scikit-learn HistGradientBoosting)"}
"""Reference model id -> the words the summary and the report use."""
CONFIDENCE = 0.95
Z_95 = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
CALIBRATION_BINS = 10
MIN_ECE_ROWS = 1_000
"""ECE is reported only on at least this many rows: with 10 bins, fewer leave under 100 rows a bin,
where sampling noise alone makes an ECE of several points."""
BEATS, NOT_DISTINGUISHABLE, WORSE = "beats", "is not distinguishable from", "is worse than"
"""Verdicts of the net against one reference model, from the paired 95 % interval of the AUC difference."""


@dataclasses.dataclass(frozen=True)
class PairedAuc:
    """AUC of the net minus AUC of a reference model on the same rows (DeLong)."""

    model_auc: float
    reference_auc: float
    difference: float
    ci95: tuple[float, float]
    p_value: float
    """Two-sided, for a difference of 0."""

    @property
    def verdict(self) -> str:
        """BEATS when the interval lies above 0, WORSE when below, else NOT_DISTINGUISHABLE."""
        if self.ci95[0] > 0:
            return BEATS
        if self.ci95[1] < 0:
            return WORSE
        return NOT_DISTINGUISHABLE


def design_matrix(columns: Columns, vocabulary_sizes: Mapping[str, int]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(one-hot matrix for the logistic regression, ordinal matrix + categorical mask for the trees).

    Args:
      columns: transformed features of n rows, in a fixed order (sorted by name here).
      vocabulary_sizes: categorical transformed name -> number of indices (vocabulary + OOV).
    Returns:
      ([n, numeric + sum of vocabulary sizes] float64 matrix, [n, features] float64 matrix);
      the trees' matrix keeps each categorical as its index (categorical_mask says which).
    """
    one_hot, ordinal = [], []
    for name in sorted(columns):
        values = np.asarray(columns[name]).reshape(-1)
        ordinal.append(values.astype(np.float64))
        if name in vocabulary_sizes:
            one_hot.append(np.eye(vocabulary_sizes[name])[values.astype(np.int64)])
        else:
            one_hot.append(values.astype(np.float64)[:, None])
    return np.hstack(one_hot), np.stack(ordinal, axis=1)


def categorical_mask(columns: Columns, vocabulary_sizes: Mapping[str, int]) -> npt.NDArray[Any]:
    """[features] bool: which columns of design_matrix's ordinal matrix are categorical."""
    return np.array([name in vocabulary_sizes for name in sorted(columns)], dtype=bool)


def fit_references(train: Columns, labels: npt.NDArray[Any], vocabulary_sizes: Mapping[str, int],
                   seed: int) -> dict[str, Any]:
    """Fit both reference models on the training rows; deterministic for a seed.

    Returns:
      reference id -> fitted estimator, and "_categorical_mask" (what `score_references` needs).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    one_hot, ordinal = design_matrix(train, vocabulary_sizes)
    mask = categorical_mask(train, vocabulary_sizes)
    y = np.asarray(labels).reshape(-1).astype(int)
    # One OpenMP thread: on a busy 2-core machine the trees' threads spin against each other
    # (12 s instead of 0.3 s for the bundled data's 6,000 rows).
    with threadpool_limits(limits=1):
        logistic = LogisticRegression(C=1.0, max_iter=2_000, random_state=seed).fit(one_hot, y)
        trees = HistGradientBoostingClassifier(
            categorical_features=mask if mask.any() else None, early_stopping=True, random_state=seed,
        ).fit(ordinal, y)
    return {LOGISTIC_REGRESSION: logistic, GRADIENT_BOOSTING: trees}


def score_references(fitted: Mapping[str, Any], rows: Columns, vocabulary_sizes: Mapping[str, int]
                     ) -> dict[str, npt.NDArray[Any]]:
    """reference id -> P(churn) [n] of each fitted reference model on `rows`."""
    from threadpoolctl import threadpool_limits

    one_hot, ordinal = design_matrix(rows, vocabulary_sizes)
    with threadpool_limits(limits=1):
        return {LOGISTIC_REGRESSION: fitted[LOGISTIC_REGRESSION].predict_proba(one_hot)[:, 1],
                GRADIENT_BOOSTING: fitted[GRADIENT_BOOSTING].predict_proba(ordinal)[:, 1]}


def delong(labels: npt.NDArray[Any], scores: Sequence[npt.NDArray[Any]]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """AUCs of k scorings of the same rows and their DeLong covariance matrix.

    Args:
      labels: [n] 0/1; both classes must be present.
      scores: k arrays [n] (higher means more likely 1).
    Returns:
      ([k] AUCs, [k, k] covariance).
    Raises:
      ValueError: a class is missing.
    """
    y = np.asarray(labels).reshape(-1).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong's AUC variance needs both classes among the rows")
    matrix = np.stack([np.asarray(s, dtype=np.float64).reshape(-1) for s in scores])
    positives, negatives = matrix[:, y], matrix[:, ~y]
    tx = np.apply_along_axis(stats.rankdata, 1, positives)
    ty = np.apply_along_axis(stats.rankdata, 1, negatives)
    tz = np.apply_along_axis(stats.rankdata, 1, np.hstack([positives, negatives]))
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    covariance = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, covariance


def paired_auc_difference(labels: npt.NDArray[Any], model: npt.NDArray[Any], reference: npt.NDArray[Any]) -> PairedAuc:
    """AUC(model) - AUC(reference) on the same rows, with its DeLong 95 % interval and p-value."""
    aucs, covariance = delong(labels, [model, reference])
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    se = float(np.sqrt(max(variance, 0.0)))
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(difference) / se))
    return PairedAuc(float(aucs[0]), float(aucs[1]), difference,
                     (difference - Z_95 * se, difference + Z_95 * se), p_value)


def equal_mass_bins(probabilities: npt.NDArray[Any], bins: int = CALIBRATION_BINS) -> list[npt.NDArray[Any]]:
    """Row indices of `bins` bins of (nearly) equal size, by ascending probability (ties kept in row order)."""
    order = np.argsort(np.asarray(probabilities).reshape(-1), kind="stable")
    return [chunk for chunk in np.array_split(order, bins) if len(chunk)]


def reliability_curve(labels: npt.NDArray[Any], probabilities: npt.NDArray[Any],
                      bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Per equal-mass bin: mean predicted probability, observed churn rate and row count."""
    y = np.asarray(labels).reshape(-1).astype(np.float64)
    p = np.asarray(probabilities).reshape(-1).astype(np.float64)
    return [{"predicted": float(p[i].mean()), "observed": float(y[i].mean()), "rows": int(len(i))}
            for i in equal_mass_bins(p, bins)]


def expected_calibration_error(labels: npt.NDArray[Any], probabilities: npt.NDArray[Any],
                               bins: int = CALIBRATION_BINS) -> float:
    """sum over equal-mass bins of (bin rows / rows) x |observed rate - mean predicted probability|."""
    curve = reliability_curve(labels, probabilities, bins)
    total = sum(b["rows"] for b in curve)
    return float(sum(b["rows"] / total * abs(b["observed"] - b["predicted"]) for b in curve))


def calibration(labels: npt.NDArray[Any], probabilities: npt.NDArray[Any]) -> dict[str, Any]:
    """Brier score, ECE (None with `ece_reason` under MIN_ECE_ROWS rows) and reliability curve of one scoring.

    Raises:
      ValueError: no rows.
    """
    from sklearn.metrics import brier_score_loss

    y = np.asarray(labels).reshape(-1).astype(int)
    p = np.asarray(probabilities).reshape(-1).astype(np.float64)
    if len(y) == 0:
        raise ValueError("calibration needs at least one row")
    enough = len(y) >= MIN_ECE_ROWS
    return {
        "rows": int(len(y)),
        "brier": round(float(brier_score_loss(y, p, pos_label=1)), 5),
        "ece": round(expected_calibration_error(y, p), 5) if enough else None,
        "ece_reason": None if enough else (f"only {len(y):,} eval rows; ECE over {CALIBRATION_BINS} equal-mass "
                                           f"bins is reported from {MIN_ECE_ROWS:,} rows"),
        "reliability": [{k: round(v, 5) if isinstance(v, float) else v for k, v in b.items()}
                        for b in reliability_curve(y, p)],
    }


def compare(labels: npt.NDArray[Any], model: npt.NDArray[Any],
            references: Mapping[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """The `reference_models` record: the net's AUC and, per reference model, its AUC, calibration,
    the paired difference with its interval and the verdict, plus one sentence saying it in words."""
    from sklearn.metrics import brier_score_loss

    y = np.asarray(labels).reshape(-1).astype(int)
    rows = []
    for name, scores in references.items():
        paired = paired_auc_difference(y, model, scores)
        rows.append({"name": name, "description": REFERENCE_NAMES[name], "auc": round(paired.reference_auc, 5),
                     "brier": round(float(brier_score_loss(y, scores, pos_label=1)), 5),
                     "ece": round(expected_calibration_error(y, scores), 5) if len(y) >= MIN_ECE_ROWS else None,
                     "auc_difference": round(paired.difference, 5),
                     "ci95": [round(paired.ci95[0], 5), round(paired.ci95[1], 5)],
                     "p_value": round(paired.p_value, 5), "verdict": paired.verdict})
    model_auc = float(delong(y, [model])[0][0])
    return {"model_auc": round(model_auc, 5), "rows": int(len(y)),
            "method": "paired AUC difference (model minus reference) on the same eval rows; 95% interval from "
                      "DeLong's covariance of correlated AUCs (DeLong et al. 1988; Sun & Xu 2014)",
            "references": rows, "holds_its_own": not any(r["verdict"] == WORSE for r in rows),
            "summary": summary_sentence(rows)}


def not_fitted(labels: npt.NDArray[Any], train_labels: npt.NDArray[Any]) -> str | None:
    """Why no reference model can be fitted and compared on these rows (one class only), or None."""
    for split, found in (("training", train_labels), ("eval", labels)):
        classes = np.unique(np.asarray(found).reshape(-1))
        if len(classes) < 2:
            return (f"reference models not fitted: the {split} rows hold "
                    f"{'no rows' if len(classes) == 0 else 'one class only'}, so no AUC can be compared")
    return None


def skipped(labels: npt.NDArray[Any], reason: str) -> dict[str, Any]:
    """The `reference_models` record of a run where they could not be fitted (`reason` says why)."""
    return {"model_auc": None, "rows": int(len(np.asarray(labels).reshape(-1))), "method": None, "references": [],
            "holds_its_own": True, "summary": reason}


def summary_sentence(rows: Sequence[Mapping[str, Any]]) -> str:
    """One sentence: whether the Dense net beats each reference model, in words."""
    parts = []
    for row in rows:
        lo, hi = row["ci95"]
        parts.append(f"{row['verdict']} {REFERENCE_NAMES[row['name']].split(' (')[0]} "
                     f"(AUC {row['auc_difference']:+.4f}, 95% CI {lo:+.4f} to {hi:+.4f})")
    if not parts:
        return "no reference model was fitted"
    verdicts = {row["verdict"] for row in rows}
    if verdicts == {BEATS}:
        conclusion = "the deep model was worth it"
    elif WORSE in verdicts:
        conclusion = "a simpler model ranks churners better on these rows"
    else:
        conclusion = "no evidence that the deep model ranks churners better than a simpler one"
    return "The Dense net " + "; ".join(parts) + f": {conclusion}."
