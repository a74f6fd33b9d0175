"""The simulated year's outcome job (simulation/monitor.py) on the shared `simulated_months` run
(tests/e2e/conftest.py): each served month's outcome AUC, joined by monitoring.outcomes from the labels file
the simulation wrote and its prediction store, is the AUC of the generator's own labels on the same rows, and
the decay after the shift shows in it."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from common import exit_codes
from data import spans as data_spans
from data.generate import roc_auc
from modules.features import ID_KEYS, LABEL_KEY
from monitoring.outcomes import AS_OF_COLUMN, LABEL_COLUMNS, quality_down
from monitoring.prediction_store import PredictionStore
from pipeline.config import DEFAULT_MIN_AUC
from simulation import monitor, simulate
from tests.e2e.conftest import SIMULATION, SIMULATION_TIMEOUT_S
from tests.monitoring.alerting_stack import Receiver, alerting_stack
from tests.monitoring.conftest import query_prometheus

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SIMULATION_TIMEOUT_S)]  # the shared simulation runs in setup


def _months(simulated_months: tuple[Path, Any, dict]) -> list[dict[str, Any]]:
    _, proc, result = simulated_months
    assert proc.returncode == exit_codes.OK, proc.stdout[-3000:] + proc.stderr[-3000:]
    return list(result["months"])


def _generated(out: Path, month: int) -> pd.DataFrame:
    return pd.read_csv(next(data_spans.span_dir(out / simulate.GENERATED_DIR, month).glob("*.csv")))


def test_monthly_outcome_auc_is_the_auc_of_the_generators_labels_on_the_same_rows(
        simulated_months: tuple[Path, Any, dict]) -> None:
    out, proc, _ = simulated_months
    months = _months(simulated_months)
    served = [m for m in months if m["served_version"] is not None]
    assert served, "no month was scored by a served model"
    with PredictionStore(f"sqlite:///{out / simulate.STORE_FILE}", create=False) as store:
        stored = store.read()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("month ")]
    for m in months:
        if m["served_version"] is None:
            assert m["outcomes"] == []
            continue
        generated = _generated(out, m["month"])
        labels = pd.read_csv(out / monitor.LABELS_DIR / monitor.LABELS_FILE.format(month=m["month"]))
        assert list(labels.columns) == list(LABEL_COLUMNS)  # the outcome job's labels input
        assert labels[ID_KEYS[0]].tolist() == generated[ID_KEYS[0]].tolist()
        assert labels[LABEL_KEY].tolist() == generated[LABEL_KEY].tolist()
        assert set(labels[AS_OF_COLUMN]) == {monitor.next_month_end(m["date"])}
        scores = stored[stored["period"] == m["date"]]
        rows = generated.assign(customer_id=generated[ID_KEYS[0]].astype(str)).merge(
            scores, on="customer_id", validate="one_to_one")
        assert len(rows) == len(generated)  # every customer of the month was scored once
        (outcome,) = m["outcomes"]
        assert outcome["model_version"] == m["served_version"] and outcome["period"] == m["date"]
        assert outcome["labelled"] == len(rows)
        direct = roc_auc(rows[LABEL_KEY].to_numpy(), rows["probability"].to_numpy())
        assert outcome["auc"] == pytest.approx(direct, abs=1e-4)
        assert outcome["auc_low"] < outcome["auc"] < outcome["auc_high"]
        line = next(line for line in lines if line.startswith(f"month {m['month']:2d} "))
        assert f"outcome v{outcome['model_version']} {outcome['auc']:.3f} [" in line
    html = (out / simulate.REPORT_FILE).read_text()
    assert all(f"v{m['served_version']} {m['outcomes'][0]['auc']:.3f}" in html for m in served)


def test_the_decay_after_the_shift_is_visible_in_the_outcome_auc(simulated_months: tuple[Path, Any, dict]) -> None:
    """After the shift each served model trained and judged before it (pushed by a run judged on a month before
    the shift) has an outcome AUC below the AUC it was pushed with (its out-of-time eval AUC), and far below what
    the month allows (the Bayes AUC), while before the shift the candidates came within a few points of the Bayes
    AUC on their eval rows. (A model judged on a shifted month was pushed with a shifted month's AUC.)"""
    months = _months(simulated_months)
    eval_auc = {m["pushed_version"]: m["candidate_auc"] for m in months if m["pushed_version"] is not None}
    stale = {m["pushed_version"] for m in months if m["pushed_version"] is not None
             and m["month"] < SIMULATION["shift_at"]}
    after = [m for m in months if m["shifted"] and m["outcomes"] and m["served_version"] in stale]
    assert after, "no served month after the shift"
    before_gap = max(m["bayes_auc_eval"] - m["candidate_auc"] for m in months
                     if not m["shifted"] and m["candidate_auc"] is not None and m["bayes_auc_eval"] is not None)
    for m in after:
        (outcome,) = m["outcomes"]
        assert outcome["auc"] < eval_auc[outcome["model_version"]], m
        assert m["bayes_auc"] - outcome["auc"] > max(before_gap, 0.0) + 0.03, (m, before_gap)
    assert SIMULATION["shift_at"] <= min(m["month"] for m in after)


# ---- the simulation's months replayed into a real Prometheus + Pushgateway + Alertmanager --------------

QUALITY_ALERT = "ChurnModelOutcomeQualityDown"


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:  # Prometheus not ready yet (503) or not listening
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, str, int]]:
    """tests/monitoring/alerting_stack.py's stack: (receiver, gateway, Prometheus port)."""
    with alerting_stack(tmp_path_factory.mktemp("sim_alerting")) as started:
        yield started


def _fires(outcome: monitor.Outcome, eval_auc: float) -> bool:
    """monitoring/rules/quality.yml's condition for one month's outcome (monitoring.outcomes.quality_down, whose
    margin tests/monitoring/test_outcomes.py checks against the rule file)."""
    assert outcome.auc_high is not None
    return quality_down(outcome.auc_high, eval_auc, DEFAULT_MIN_AUC)


def test_the_replayed_months_fire_the_quality_alert_after_the_shift_and_resolve_it_after_the_retrain(
        simulated_months: tuple[Path, Any, dict], stack: tuple[Receiver, str, int]) -> None:
    """Each served month's outcome is pushed in order, as the simulation's outcome job pushes it (one push per
    month replaces the previous month's, so only the latest revealed month is judged). After Prometheus has
    scraped and evaluated it, the quality alert is active exactly when the rule's condition holds for that month;
    a firing month reaches the webhook with its labels and summary. On this scenario the condition is not a
    formality: the month of the shift, scored by a model trained before it, fires; the last month, scored by a
    model retrained on labels from after the shift, does not, and no month after the last firing one fires again;
    the alert about the stale model is resolved (the webhook gets `status: resolved`) when the next month is
    pushed (the push replaces the stale model's series)."""
    out, _, _ = simulated_months
    months = _months(simulated_months)
    receiver, gateway, port = stack
    evals = monitor.eval_aucs(months)
    decided: list[tuple[str, str, bool]] = []

    def after_push(month: Mapping[str, Any], found: list[monitor.Outcome]) -> None:
        (outcome,) = found
        period, version = month["date"], str(outcome.model_version)
        _wait(lambda: any(r["metric"].get("period") == period
                          for r in query_prometheus(port, "churn_outcome_auc_upper")),
              f"month {period}'s outcome in Prometheus")
        time.sleep(3)  # a few 1 s rule evaluations on the new sample
        firing = f'ALERTS{{alertname="{QUALITY_ALERT}",alertstate="firing"}}'
        active = [r["metric"] for r in query_prometheus(port, firing)]
        fires = _fires(outcome, evals[outcome.model_version])
        assert [(a["period"], a["model_version"]) for a in active] == ([(period, version)] if fires else []), month
        if fires:
            note = receiver.wait(lambda n: any(a["status"] == "firing" and a["labels"].get("period") == period
                                               for a in n["alerts"]), "firing")
            alert = next(a for a in note["alerts"] if a["labels"].get("period") == period)
            assert alert["labels"]["model_version"] == version and alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"].startswith(f"Churn model {version}: outcome AUC in {period}")
        for earlier, _, fired in decided:
            if fired and not fires:
                receiver.wait(lambda n, p=earlier: any(a["status"] == "resolved" and a["labels"].get("period") == p
                                                       for a in n["alerts"]), "resolved")
        decided.append((period, version, fires))

    pushed = monitor.replay(out, gateway, after_push)
    assert len(pushed) == sum(bool(m["outcomes"]) for m in months) > 0
    by_period = {period: (version, fires) for period, version, fires in decided}
    shift = months[SIMULATION["shift_at"]]
    stale_version, fired = by_period[shift["date"]]
    assert fired, f"the quality alert did not fire on the month of the shift: {decided}"
    trained_before = {str(m["pushed_version"]) for m in months if m["pushed_version"] is not None
                      and m["month"] < SIMULATION["shift_at"]}
    assert stale_version in trained_before  # judged on months before the shift only
    last = months[-1]
    retrained, last_fires = by_period[last["date"]]
    pusher = next(m for m in months if str(m["pushed_version"]) == retrained)
    assert max(pusher["train_spans"]) >= SIMULATION["shift_at"] and not last_fires, decided  # retrained: quiet
    resolved = [a for n in receiver.received for a in n["alerts"]
                if a["status"] == "resolved" and a["labels"].get("period") == shift["date"]]
    assert resolved and resolved[0]["labels"]["model_version"] == stale_version
    last_fired = max(i for i, (_, _, fires) in enumerate(decided) if fires)
    assert not any(fires for _, _, fires in decided[last_fired + 1:])  # quiet from the retrain on


def test_drift_eval_scores_default_to_the_run_that_pushed_the_served_version(
        simulated_months: tuple[Path, Any, dict]) -> None:
    """`python -m monitoring.drift --eval-scores` without a CSV: on the simulation's real ML Metadata (several
    runs, several pushed versions), each version's eval scores are those its own run kept, not the newest run's."""
    from monitoring import drift

    out = simulated_months[0]
    pushed = [m for m in _months(simulated_months) if m["pushed_version"] is not None]
    assert len(pushed) >= 2
    for month in pushed:
        summary = json.loads((out / simulate.LOG_DIR / simulate.RUN_SUMMARY.format(month=month["month"])).read_text())
        found = drift.served_eval_scores(out / simulate.PIPELINE_DIR, month["pushed_version"])
        assert found == Path(summary["eval_scores"]), month["month"]
    found = {drift.served_eval_scores(out / simulate.PIPELINE_DIR, m["pushed_version"]) for m in pushed}
    assert len(found) == len(pushed)
