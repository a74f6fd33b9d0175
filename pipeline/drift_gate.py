"""Drift between two data sets' TFDV statistics, with the project's one definition of the drift thresholds.

Used span to span (the newest span against the previous one, issue 16's drift gate) and by
`python -m monitoring.drift` (serving traffic against the training split). The distances are TFDV's own
drift comparators, computed by `tfdv.validate_statistics(current, schema, previous_statistics=previous)`:

- categorical (BYTES) features: L-infinity distance, the largest change in one category's share;
- numeric (INT, FLOAT) features: Jensen-Shannon divergence of the two histograms.

The thresholds (0.1 each) sit above the largest distance measured between samples with no drift: at 1,000
rows against a training split, Jensen-Shannon 0.08 and L-infinity 0.044 (docs/monitoring.md); between
consecutive generated months (data/spans.py) Jensen-Shannon 0.092 and L-infinity 0.063 at 1,000 customers,
0.025 and 0.016 at 10,000 (docs/data.md, "Drift between spans", with the command that measures it).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from modules.features import ID_KEYS, LABEL_KEY
from pipeline.config import CURATED_SCHEMA
from pipeline.config import DEFAULT_ON_DRIFT as DEFAULT_ON_DRIFT
from pipeline.config import DRIFT_MIN_ROWS as MIN_ROWS
from pipeline.config import ON_DRIFT_CHOICES as ON_DRIFT_CHOICES
from pipeline.config import ON_DRIFT_STOP as ON_DRIFT_STOP
from pipeline.config import ON_DRIFT_WARN as ON_DRIFT_WARN

CATEGORICAL_THRESHOLD = 0.1
"""L-infinity distance above which a categorical feature has drifted (a category's share moved > 10 points)."""
NUMERIC_THRESHOLD = 0.1
"""Jensen-Shannon divergence above which a numeric feature has drifted."""
L_INFINITY = "L_INFTY"
JENSEN_SHANNON = "JENSEN_SHANNON_DIVERGENCE"
"""TFDV's names of the two measures (anomalies_pb2.DriftSkewInfo.Measurement.Type)."""
NOT_COMPARED = (LABEL_KEY, *ID_KEYS)
"""Never compared: the label (its rate is judged by the evaluation) and identifiers (new ids always differ)."""


class DriftGateError(Exception):
    """Statistics or a schema the gate cannot compare; the message says what to fix."""


@dataclass(frozen=True)
class Distance:
    """One feature's drift distance between two statistics."""

    feature: str
    measure: str
    """L_INFINITY or JENSEN_SHANNON."""
    value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.value > self.threshold


@dataclass(frozen=True)
class Verdict:
    """Every compared feature's distance, sorted by feature name."""

    distances: tuple[Distance, ...]

    @property
    def drifted(self) -> tuple[Distance, ...]:
        """The features above their threshold (empty: no drift)."""
        return tuple(d for d in self.distances if d.drifted)

    def summary(self) -> list[dict[str, object]]:
        """The drifted features as run-summary entries: feature, measure, distance, threshold."""
        return [{"feature": d.feature, "measure": d.measure, "distance": round(d.value, 4),
                 "threshold": d.threshold} for d in self.drifted]


def set_drift_comparators(schema: Any, categorical_threshold: float = CATEGORICAL_THRESHOLD,
                          numeric_threshold: float = NUMERIC_THRESHOLD,
                          skip: Iterable[str] = NOT_COMPARED) -> Any:
    """Set one TFDV drift comparator per feature of `schema` (a schema_pb2.Schema, changed in place and
    returned): L-infinity on BYTES features, Jensen-Shannon on the others; features in `skip` get none.

    Raises DriftGateError for a threshold outside (0, 1].
    """
    for name, value in (("categorical", categorical_threshold), ("numeric", numeric_threshold)):
        if not 0 < value <= 1:
            raise DriftGateError(f"the {name} drift threshold must be in (0, 1], got {value}")
    skipped = set(skip)
    for feature in schema.feature:
        if feature.name in skipped:
            continue
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = categorical_threshold
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = numeric_threshold
    return schema


def gate_schema(path: Path = CURATED_SCHEMA, categorical_threshold: float = CATEGORICAL_THRESHOLD,
                numeric_threshold: float = NUMERIC_THRESHOLD) -> Any:
    """The schema at `path` (text proto) with the drift comparators set. Raises DriftGateError if unreadable."""
    try:
        schema = tfdv.load_schema_text(str(path))
    except (tf.errors.OpError, OSError, text_format.Error) as err:  # missing file, not a Schema text proto
        raise DriftGateError(f"cannot read schema {path}: {err}") from None
    return set_drift_comparators(schema, categorical_threshold, numeric_threshold)


def statistics_of(frame: pd.DataFrame) -> Any:
    """TFDV statistics (DatasetFeatureStatisticsList) of a data frame, as StatisticsGen computes them from
    the CSV: bool columns become the strings "True"/"False" (CsvExampleGen reads them as BYTES)."""
    booleans = [c for c in frame.columns if frame[c].dtype == bool]
    return tfdv.generate_statistics_from_dataframe(frame.astype({c: str for c in booleans}))


def compare(current: Any, previous: Any, schema: Any, environment: str | None = None,
            min_rows: int = MIN_ROWS) -> Verdict:
    """Drift of `current` from `previous` (DatasetFeatureStatisticsList each), by the comparators of
    `schema` (see set_drift_comparators), in TFDV's `environment` if given.

    Raises DriftGateError when either statistics holds fewer than `min_rows` examples.
    """
    for name, statistics in (("current", current), ("previous", previous)):
        rows = statistics.datasets[0].num_examples if statistics.datasets else 0
        if rows < min_rows:
            raise DriftGateError(f"the {name} statistics hold {rows} examples; at least {min_rows} are needed "
                                 "to tell drift from sampling noise")
    anomalies = tfdv.validate_statistics(current, schema, environment=environment, previous_statistics=previous)
    return Verdict(tuple(distances_of(anomalies)))


def distances_of(anomalies: Any) -> list[Distance]:
    """Every drift measurement of a TFDV `Anomalies` proto (its `drift_skew_info`), sorted by feature name."""
    names = anomalies_pb2.DriftSkewInfo.Measurement.Type
    distances = [Distance(".".join(info.path.step), names.Name(m.type), m.value, m.threshold)
                 for info in anomalies.drift_skew_info for m in info.drift_measurements]
    return sorted(distances, key=lambda d: d.feature)


def span_drift(current: pd.DataFrame, previous: pd.DataFrame, schema: Any | None = None) -> Verdict:
    """Drift of one span's rows from the previous span's, with the shared thresholds on the curated
    schema (or `schema`). The gate: `--on-drift stop` stops the run when `.drifted` is not empty."""
    return compare(statistics_of(current), statistics_of(previous), schema or gate_schema())


@dataclass(frozen=True)
class GateDecision:
    """The drift gate's verdict on the newest span against the previous one, and what `--on-drift` makes of it.

    `stop` is True only with `--on-drift stop` and at least one drifted feature: then nothing is trained and
    the run exits with the data-validation exit code (3). With `warn` (the default) the run trains and the
    model is blessed only on its evaluation; either way `summary()` names each drifted feature and its distance.
    """

    verdict: Verdict | None
    """None when there is no previous span to compare with (the first span)."""
    on_drift: str
    current_span: int
    previous_span: int | None

    @property
    def stop(self) -> bool:
        return self.on_drift == ON_DRIFT_STOP and self.verdict is not None and bool(self.verdict.drifted)

    def summary(self) -> dict[str, object]:
        """For run_summary.json: spans compared, the policy, whether it stopped the run, the drifted features."""
        return {"current_span": self.current_span, "previous_span": self.previous_span, "on_drift": self.on_drift,
                "compared": self.verdict is not None, "stopped": self.stop,
                "drifted": self.verdict.summary() if self.verdict is not None else []}


def check_on_drift(on_drift: str) -> str:
    """`on_drift` if it is one of ON_DRIFT_CHOICES; else DriftGateError naming the choices."""
    if on_drift not in ON_DRIFT_CHOICES:
        raise DriftGateError(f"--on-drift must be one of {', '.join(ON_DRIFT_CHOICES)}, got {on_drift!r}")
    return on_drift


def format_verdict(verdict: Verdict) -> str:
    """One line per drifted feature (`feature: measure distance > threshold`), or 'no drift'."""
    if not verdict.drifted:
        return "no drift: every feature within its threshold"
    return "\n".join(f"drift: {d.feature}: {d.measure} {d.value:.4f} > {d.threshold}" for d in verdict.drifted)
