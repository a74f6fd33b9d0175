"""Tests for pipeline/drift_gate.py: TFDV's drift distances between two data sets' statistics, with the
project's one definition of the thresholds (shared with monitoring/drift.py)."""
from __future__ import annotations

import pandas as pd
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from data import generate as gen
from modules.features import ID_KEYS, LABEL_KEY
from monitoring import drift as monitoring_drift
from pipeline import drift_gate
from pipeline.config import CURATED_SCHEMA


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return gen.generate(4_000, seed=2)


@pytest.fixture(scope="module")
def previous(frame: pd.DataFrame) -> object:
    return drift_gate.statistics_of(frame.iloc[:2_000])


def test_thresholds_and_comparators_are_one_definition_shared_with_monitoring() -> None:
    assert monitoring_drift.CATEGORICAL_THRESHOLD is drift_gate.CATEGORICAL_THRESHOLD
    assert monitoring_drift.NUMERIC_THRESHOLD is drift_gate.NUMERIC_THRESHOLD
    assert monitoring_drift.MIN_ROWS is drift_gate.MIN_ROWS
    parser_defaults = monitoring_drift.build_parser().parse_args(["--data", "x.csv"])
    assert parser_defaults.categorical_threshold == drift_gate.CATEGORICAL_THRESHOLD
    assert parser_defaults.numeric_threshold == drift_gate.NUMERIC_THRESHOLD
    served = monitoring_drift.serving_schema(CURATED_SCHEMA, 0.2, 0.3)
    gated = drift_gate.gate_schema(CURATED_SCHEMA, 0.2, 0.3)
    assert [f.drift_comparator for f in served.feature] == [f.drift_comparator for f in gated.feature]


def test_comparators_l_infinity_for_categories_jensen_shannon_for_numbers_none_for_label_and_ids() -> None:
    schema = drift_gate.gate_schema()
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if feature.name in (LABEL_KEY, *ID_KEYS):
            assert not feature.HasField("drift_comparator"), feature.name
        elif feature.type == schema_pb2.BYTES:
            assert comparator.infinity_norm.threshold == drift_gate.CATEGORICAL_THRESHOLD, feature.name
        else:
            assert comparator.jensen_shannon_divergence.threshold == drift_gate.NUMERIC_THRESHOLD, feature.name


@pytest.mark.parametrize("categorical, numeric", [(0.0, 0.1), (0.1, 1.5), (-0.1, 0.1)])
def test_thresholds_outside_zero_one_are_refused(categorical: float, numeric: float) -> None:
    with pytest.raises(drift_gate.DriftGateError, match="threshold"):
        drift_gate.gate_schema(CURATED_SCHEMA, categorical, numeric)


def test_unreadable_schema_is_a_clear_error() -> None:
    with pytest.raises(drift_gate.DriftGateError, match="cannot read schema"):
        drift_gate.gate_schema(CURATED_SCHEMA.with_name("missing.pbtxt"))


def test_same_population_has_no_drift(frame: pd.DataFrame, previous: object) -> None:
    verdict = drift_gate.compare(drift_gate.statistics_of(frame.iloc[2_000:]), previous, drift_gate.gate_schema())
    features = {d.feature for d in verdict.distances}
    assert features == {f.name for f in drift_gate.gate_schema().feature} - {LABEL_KEY, *ID_KEYS}
    assert verdict.drifted == ()
    assert drift_gate.format_verdict(verdict).startswith("no drift")
    assert verdict.summary() == []


def test_gate_names_each_drifted_feature_and_its_distance(frame: pd.DataFrame, previous: object) -> None:
    later = frame.iloc[2_000:].copy()
    later["Satisfaction_Score"] = (later["Satisfaction_Score"] - 1).clip(lower=1)
    later["Promotion_Response"] = "Unsubscribed"
    later["Customer_ID"] += 1_000_000  # new ids are not drift
    verdict = drift_gate.compare(drift_gate.statistics_of(later), previous, drift_gate.gate_schema())
    drifted = {d.feature: d for d in verdict.drifted}
    assert set(drifted) == {"Satisfaction_Score", "Promotion_Response"}
    assert drifted["Promotion_Response"].measure == drift_gate.L_INFINITY
    assert drifted["Promotion_Response"].value == pytest.approx(1 - (frame.iloc[:2_000]["Promotion_Response"]
                                                                     == "Unsubscribed").mean(), abs=1e-6)
    assert drifted["Satisfaction_Score"].measure == drift_gate.JENSEN_SHANNON
    assert drifted["Satisfaction_Score"].value > drift_gate.NUMERIC_THRESHOLD
    summary = {entry["feature"]: entry for entry in verdict.summary()}
    assert summary["Promotion_Response"]["threshold"] == drift_gate.CATEGORICAL_THRESHOLD
    assert summary["Promotion_Response"]["distance"] == round(drifted["Promotion_Response"].value, 4)
    text = drift_gate.format_verdict(verdict)
    assert "Promotion_Response: L_INFTY" in text and "Satisfaction_Score: JENSEN_SHANNON_DIVERGENCE" in text


def test_booleans_are_compared_as_the_csv_strings(frame: pd.DataFrame, previous: object) -> None:
    """Email_Opt_In is BYTES ("True"/"False") in the schema, as CsvExampleGen reads the CSV: a bool column
    must still be compared (not silently skipped as a type mismatch)."""
    later = frame.iloc[2_000:].assign(Email_Opt_In=False)
    verdict = drift_gate.compare(drift_gate.statistics_of(later), previous, drift_gate.gate_schema())
    assert [d.feature for d in verdict.drifted] == ["Email_Opt_In"]


def test_span_drift_on_frames_and_too_few_rows_refused(frame: pd.DataFrame, previous: object) -> None:
    assert drift_gate.span_drift(frame.iloc[2_000:], frame.iloc[:2_000]).drifted == ()
    schema = drift_gate.gate_schema()
    for rows in (0, drift_gate.MIN_ROWS - 1):
        with pytest.raises(drift_gate.DriftGateError, match=f"hold {rows} examples; at least {drift_gate.MIN_ROWS}"):
            drift_gate.compare(drift_gate.statistics_of(frame.iloc[:rows]), previous, schema)
    small = drift_gate.statistics_of(frame.iloc[:500])
    assert drift_gate.compare(small, small, schema, min_rows=500).drifted == ()
