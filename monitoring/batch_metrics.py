"""Metrics of batch jobs (drift checks), pushed to a Prometheus Pushgateway, the standard way for batch jobs.

Every value has a `period` label (the business month it is about), so a month's figures are not confused
with the time Prometheus scraped them. The alerts on them are in `monitoring/rules/quality.yml`.

- `publish_drift`: drift distance per feature (whatever measure the drift check uses, e.g. TFDV's
  Jensen-Shannon divergence or L-infinity distance), its threshold, and whether the feature is a driver
  of the model (`ChurnModelDriverFeatureDrift` fires only for drivers).
- `population_stability_index` + `publish_score_shift`: shift of the served-score distribution against the
  eval split's, measured as PSI (`ChurnModelServedScoreShift`, threshold `PSI_ALERT`), with both sides'
  shares per score bin, so the dashboards draw the served-score histogram against the eval split's.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

PUSHGATEWAY_ENV = "CHURN_PUSHGATEWAY"
"""Environment variable the batch jobs' `--pushgateway HOST:PORT` defaults to (a container or CronJob sets it once:
docker-compose.yml's `pushgateway:9091`, Kubernetes' Service `pushgateway:9091`); unset: nothing is pushed."""
DRIFT_JOB = "churn_drift"
"""Pushgateway job of the drift check; each push replaces the previous one."""
DRIFT_DISTANCE = "churn_feature_drift"
DRIFT_THRESHOLD = "churn_feature_drift_threshold"
DRIVER_FEATURE = "churn_feature_is_driver"
SCORE_PSI = "churn_score_psi"
SCORE_BIN_SHARE = "churn_score_bin_share"
EVAL_SPLIT_LABEL, SERVED_LABEL = "eval", "served"
"""Values of `churn_score_bin_share`'s `split` label: the eval split's scores and the served ones."""
PSI_BINS = 10
PSI_ALERT = 0.2
"""PSI above 0.2 is the usual reading of a significant population shift (0.1-0.2: moderate; Siddiqi 2006,
"Credit Risk Scorecards", ch. 8); `monitoring/rules/quality.yml` uses the same value."""
PSI_FLOOR = 1e-4
"""Share given to an empty bin so the logarithm stays finite (a common convention)."""


class PushError(Exception):
    """The Pushgateway cannot be reached or refused the push; the message says which."""


def _push(registry: CollectorRegistry, gateway: str, job: str) -> None:
    try:
        push_to_gateway(gateway, job=job, registry=registry, timeout=10)
    except OSError as err:
        raise PushError(f"pushing {job} metrics to the Pushgateway at {gateway} failed: {err}") from None


def drift_registry(distances: Mapping[str, float], period: str, measure: str | Mapping[str, str],
                   thresholds: Mapping[str, float] | None = None,
                   drivers: Iterable[str] = ()) -> CollectorRegistry:
    """Gauges `churn_feature_drift{feature,measure,period}`, `churn_feature_drift_threshold{feature,measure}`
    (for the features in `thresholds`) and `churn_feature_is_driver{feature}` (1 for `drivers`, else 0).

    `measure`: one name for every feature, or feature -> name (e.g. TFDV's L_INFTY for categorical features
    and JENSEN_SHANNON_DIVERGENCE for numeric ones)."""
    def measure_of(feature: str) -> str:
        return measure[feature] if isinstance(measure, Mapping) else measure

    registry = CollectorRegistry()
    distance = Gauge(DRIFT_DISTANCE, "Drift distance of a feature's serving distribution from training's",
                     ["feature", "measure", "period"], registry=registry)
    threshold = Gauge(DRIFT_THRESHOLD, "Drift distance above which a feature counts as drifted",
                      ["feature", "measure"], registry=registry)
    driver = Gauge(DRIVER_FEATURE, "1 when the feature is one of the model's churn drivers", ["feature"],
                   registry=registry)
    drivers = set(drivers)
    for feature, value in distances.items():
        distance.labels(feature=feature, measure=measure_of(feature), period=period).set(float(value))
        driver.labels(feature=feature).set(1 if feature in drivers else 0)
    for feature, value in (thresholds or {}).items():
        threshold.labels(feature=feature, measure=measure_of(feature)).set(float(value))
    return registry


def publish_drift(distances: Mapping[str, float], period: str, gateway: str, measure: str | Mapping[str, str],
                  thresholds: Mapping[str, float] | None = None, drivers: Iterable[str] = (),
                  job: str = DRIFT_JOB) -> None:
    """Pushes `drift_registry(...)` to the Pushgateway at `gateway` (`host:port` or URL) as `job`.

    `distances`: feature -> distance (unitless, >= 0); `period`: business month `YYYY-MM`. Raises PushError.
    """
    _push(drift_registry(distances, period, measure, thresholds, drivers), gateway, job)


def bin_shares(scores: npt.NDArray[Any], bins: int = PSI_BINS) -> npt.NDArray[np.float64]:
    """Share of `scores` (probabilities, any shape, non-empty; clipped to [0, 1]) in each of `bins` equal-width
    bins of [0, 1], shape [bins], summing to 1. Raises ValueError on empty input."""
    scores = np.ravel(scores).astype(float)
    if not len(scores):
        raise ValueError("PSI needs scores on both sides")
    counts = np.histogram(np.clip(scores, 0, 1), np.linspace(0.0, 1.0, bins + 1))[0]
    return np.asarray(counts / len(scores), dtype=np.float64)


def bin_label(index: int, bins: int = PSI_BINS) -> str:
    """`"0.1-0.2"`: the `bin` label of score bin `index` of `bins`."""
    return f"{index / bins:.{_digits(bins)}f}-{(index + 1) / bins:.{_digits(bins)}f}"


def _digits(bins: int) -> int:
    return max(1, math.ceil(math.log10(bins)))


def population_stability_index(expected: npt.NDArray[Any], actual: npt.NDArray[Any], bins: int = PSI_BINS) -> float:
    """PSI of `actual` scores against `expected` scores (both probabilities in [0, 1], any shapes, non-empty).

    PSI = sum over `bins` equal-width bins of [0, 1] of (a - e) * ln(a / e), with a and e the bins' shares
    (empty bins count PSI_FLOOR). 0 = same distribution. Source: Siddiqi 2006, "Credit Risk Scorecards",
    ch. 8. Raises ValueError on empty input.
    """
    e = np.maximum(bin_shares(expected, bins), PSI_FLOOR)
    a = np.maximum(bin_shares(actual, bins), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def score_shift_registry(eval_scores: npt.NDArray[Any], served_scores: npt.NDArray[Any], model_version: int,
                         period: str, bins: int = PSI_BINS) -> CollectorRegistry:
    """Gauges `churn_score_psi{model_version,period}` (PSI of the served scores against the eval split's) and
    `churn_score_bin_share{model_version,period,split="eval"|"served",bin="0.1-0.2"}` (each side's share per
    score bin). Scores: churn probabilities, any shape, non-empty. Raises ValueError on empty input."""
    registry = CollectorRegistry()
    labels = {"model_version": str(model_version), "period": period}
    Gauge(SCORE_PSI, "Population stability index of the served churn scores against the eval split's",
          list(labels), registry=registry).labels(**labels).set(
        population_stability_index(eval_scores, served_scores, bins))
    share = Gauge(SCORE_BIN_SHARE, "Share of the churn scores in each probability bin, of the eval split or "
                  "served", [*labels, "split", "bin"], registry=registry)
    for split, scores in ((EVAL_SPLIT_LABEL, eval_scores), (SERVED_LABEL, served_scores)):
        for index, value in enumerate(bin_shares(scores, bins)):
            share.labels(**labels, split=split, bin=bin_label(index, bins)).set(float(value))
    return registry


def publish_score_shift(eval_scores: npt.NDArray[Any], served_scores: npt.NDArray[Any], model_version: int,
                        period: str, gateway: str, job: str = DRIFT_JOB + "_score") -> float:
    """Pushes `score_shift_registry(...)` to the Pushgateway at `gateway` as `job` and returns the PSI.

    Raises ValueError on empty scores, PushError when the push fails."""
    registry = score_shift_registry(eval_scores, served_scores, model_version, period)
    _push(registry, gateway, job)
    return population_stability_index(eval_scores, served_scores)
