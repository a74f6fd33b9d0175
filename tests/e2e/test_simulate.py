"""`python -m simulation` end to end (the shared `simulated_months` fixture, tests/e2e/conftest.py): the
four properties of issue 16's scenario, the scores through the server in the prediction store, the hot swaps and
the reports. The scenario (SIMULATION): 7 months of 2,500 customers, the shift at month 3, a window of 2."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common import exit_codes
from data import spans as data_spans
from monitoring.prediction_store import PredictionStore
from simulation import simulate
from tests.e2e.conftest import SIMULATION, SIMULATION_TIMEOUT_S

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SIMULATION_TIMEOUT_S)]  # the shared simulation runs in setup

K = SIMULATION["shift_at"]


def _months(simulated_months: tuple[Path, Any, dict]) -> list[dict[str, Any]]:
    _, proc, result = simulated_months
    assert proc.returncode == exit_codes.OK, proc.stdout[-3000:] + proc.stderr[-3000:]
    return list(result["months"])


def test_every_month_gets_a_line_a_json_entry_and_a_chart_point(simulated_months: tuple[Path, Any, dict]) -> None:
    months = _months(simulated_months)
    out, proc, _ = simulated_months
    assert [m["month"] for m in months] == list(range(SIMULATION["months"]))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("month ")]
    assert len(lines) == SIMULATION["months"]
    assert all(m["status"] is not None for m in months[1:])  # every month but the first is judged once labelled
    assert "no served model" in lines[0] and "no served model" in lines[1]  # before the first model
    html = (out / simulate.REPORT_FILE).read_text()
    assert "<svg" in html and "drift: " + data_spans.SHIFTED_FEATURES[0] in html
    assert html.count("<circle") == sum(m[k] is not None for m in months
                                        for k in ("served_auc", "candidate_auc", "bayes_auc"))


def test_no_drift_is_flagged_before_the_shift(simulated_months: tuple[Path, Any, dict]) -> None:
    before = [m for m in _months(simulated_months)[:K] if m["drift_compared"]]
    assert len(before) == K - 1  # month 0 has no previous month
    assert all(m["drifted"] == [] for m in before), [m["drifted"] for m in before]


def test_drift_is_flagged_at_the_shift_on_the_features_that_changed(simulated_months: tuple[Path, Any, dict]) -> None:
    at_shift = _months(simulated_months)[K]
    assert at_shift["shifted"] and at_shift["drift_compared"]
    assert {d["feature"] for d in at_shift["drifted"]} == set(data_spans.SHIFTED_FEATURES)
    assert all(d["distance"] > d["threshold"] for d in at_shift["drifted"])


def test_the_stale_models_auc_falls_after_the_shift(simulated_months: tuple[Path, Any, dict]) -> None:
    """The model served at month K was trained before K. Before K: the run judged on month K-1 scored it as the
    served model (baseline) on that month's eval rows. At K: its REST scores on all of month K's customers.
    Its AUC falls, and its distance to the Bayes AUC (on the same rows each time) grows by more than 0.03."""
    months = _months(simulated_months)
    before, after = months[K - 1], months[K]
    stale = after["served_version"]
    assert stale is not None and stale in {m["pushed_version"] for m in months[:K - 1]}  # trained before K
    assert before["baseline_auc"] is not None and before["bayes_auc_eval"] is not None
    assert after["served_auc"] < before["baseline_auc"]
    gap_before = before["bayes_auc_eval"] - before["baseline_auc"]
    gap_after = after["bayes_auc"] - after["served_auc"]
    assert gap_after - gap_before > 0.03, (gap_before, gap_after)


def test_the_retrained_model_is_within_0_03_of_the_bayes_auc_by_two_months_after_the_shift(
        simulated_months: tuple[Path, Any, dict]) -> None:
    """The candidate judged on month K+2 trained on months since the shift only (window 2: K and K+1); on its
    eval rows it is within 0.03 of the Bayes AUC on the same rows."""
    row = _months(simulated_months)[K + 2]
    assert row["train_spans"] == [K, K + 1]
    assert row["candidate_auc"] >= row["bayes_auc_eval"] - 0.03, row


def test_each_served_month_is_in_the_prediction_store(simulated_months: tuple[Path, Any, dict]) -> None:
    months = _months(simulated_months)
    out = simulated_months[0]
    with PredictionStore(f"sqlite:///{out / simulate.STORE_FILE}", create=False) as store:
        rows = store.read()
    served = {m["date"]: m for m in months if m["served_version"] is not None}
    assert set(rows["period"]) == set(served)
    for period, group in rows.groupby("period"):
        month = served[period]
        assert len(group) == month["customers"] and group["customer_id"].is_unique
        assert set(group["model_version"]) == {month["served_version"]}
        assert set(group["source"]) == {simulate.STORE_SOURCE}
        assert group["scored_at"].dt.strftime("%Y-%m").eq(period).all()


def test_the_server_hot_swaps_to_each_pushed_model(simulated_months: tuple[Path, Any, dict]) -> None:
    """A model pushed by the run judged on month m (made once month m+1 is over) scores month m+2."""
    months = _months(simulated_months)
    pushed = [(m["month"], m["pushed_version"]) for m in months if m["pushed_version"] is not None]
    assert pushed, "no run pushed a model"
    for month, version in pushed:
        if month + 2 < len(months):
            assert months[month + 2]["served_version"] == version
    assert len({m["served_version"] for m in months if m["served_version"] is not None}) >= 2  # a swap happened
