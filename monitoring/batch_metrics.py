"""Metrics of batch jobs (drift checks), pushed to a Prometheus Pushgateway, the standard way for batch jobs.

Every value has a `period` label (the business month it is about), so a month's figures are not confused
with the time Prometheus scraped them. The alerts on them are in `monitoring/rules/quality.yml`.

- `publish_drift`: drift distance per feature (whatever measure the drift check uses, e.g. TFDV's
  Jensen-Shannon divergence or L-infinity distance), its threshold, and whether the feature is a driver
  of the model (`ChurnModelDriverFeatureDrift` fires only for drivers).
- `population_stability_index` + `publish_score_shift`: shift of the served-score distribution against the
  eval split's, measured as PSI (`ChurnModelServedScoreShift`, threshold `PSI_ALERT`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

DRIFT_JOB = "churn_drift"
"""Pushgateway job of the drift check; each push replaces the previous one."""
DRIFT_DISTANCE = "churn_feature_drift"
DRIFT_THRESHOLD = "churn_feature_drift_threshold"
DRIVER_FEATURE = "churn_feature_is_driver"
SCORE_PSI = "churn_score_psi"
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


def drift_registry(distances: Mapping[str, float], period: str, measure: str,
                   thresholds: Mapping[str, float] | None = None,
                   drivers: Iterable[str] = ()) -> CollectorRegistry:
    """Gauges `churn_feature_drift{feature,measure,period}`, `churn_feature_drift_threshold{feature,measure}`
    (for the features in `thresholds`) and `churn_feature_is_driver{feature}` (1 for `drivers`, else 0)."""
    registry = CollectorRegistry()
    distance = Gauge(DRIFT_DISTANCE, "Drift distance of a feature's serving distribution from training's",
                     ["feature", "measure", "period"], registry=registry)
    threshold = Gauge(DRIFT_THRESHOLD, "Drift distance above which a feature counts as drifted",
                      ["feature", "measure"], registry=registry)
    driver = Gauge(DRIVER_FEATURE, "1 when the feature is one of the model's churn drivers", ["feature"],
                   registry=registry)
    drivers = set(drivers)
    for feature, value in distances.items():
        distance.labels(feature=feature, measure=measure, period=period).set(float(value))
        driver.labels(feature=feature).set(1 if feature in drivers else 0)
    for feature, value in (thresholds or {}).items():
        threshold.labels(feature=feature, measure=measure).set(float(value))
    return registry


def publish_drift(distances: Mapping[str, float], period: str, gateway: str, measure: str,
                  thresholds: Mapping[str, float] | None = None, drivers: Iterable[str] = (),
                  job: str = DRIFT_JOB) -> None:
    """Pushes `drift_registry(...)` to the Pushgateway at `gateway` (`host:port` or URL) as `job`.

    `distances`: feature -> distance (unitless, >= 0); `period`: business month `YYYY-MM`. Raises PushError.
    """
    _push(drift_registry(distances, period, measure, thresholds, drivers), gateway, job)


def population_stability_index(expected: npt.NDArray[Any], actual: npt.NDArray[Any], bins: int = PSI_BINS) -> float:
    """PSI of `actual` scores against `expected` scores (both probabilities in [0, 1], any shapes, non-empty).

    PSI = sum over `bins` equal-width bins of [0, 1] of (a - e) * ln(a / e), with a and e the bins' shares
    (empty bins count PSI_FLOOR). 0 = same distribution. Raises ValueError on empty input.
    """
    expected, actual = np.ravel(expected).astype(float), np.ravel(actual).astype(float)
    if not len(expected) or not len(actual):
        raise ValueError("PSI needs scores on both sides")
    edges = np.linspace(0.0, 1.0, bins + 1)
    e = np.histogram(np.clip(expected, 0, 1), edges)[0] / len(expected)
    a = np.histogram(np.clip(actual, 0, 1), edges)[0] / len(actual)
    e, a = np.maximum(e, PSI_FLOOR), np.maximum(a, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def publish_score_shift(psi: float, model_version: int, period: str, gateway: str,
                        job: str = DRIFT_JOB + "_score") -> None:
    """Pushes `churn_score_psi{model_version,period}` (served scores vs the eval split's). Raises PushError."""
    if math.isnan(psi) or psi < 0:
        raise ValueError(f"PSI must be a number >= 0, got {psi!r}")
    registry = CollectorRegistry()
    Gauge(SCORE_PSI, "Population stability index of the served churn scores against the eval split's",
          ["model_version", "period"], registry=registry).labels(
        model_version=str(model_version), period=period).set(psi)
    _push(registry, gateway, job)
