"""simulation/monitor.py: a month's labels as the outcome job's input, the outcome join on a real SQLite
prediction store (only the month's scores, only scores made before its outcome window), and the push of the
month's outcome metrics to a real Pushgateway."""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from data.generate import roc_auc
from modules.features import ID_KEYS, LABEL_KEY
from monitoring.outcomes import AS_OF_COLUMN, LABEL_COLUMNS, METRIC_PREFIX, OutcomeError
from monitoring.prediction_store import PredictionStore
from simulation import monitor
from simulation.simulate import month_end
from tests.helpers import free_port
from tests.monitoring.pushgateway import pushgateway, samples

N = 400


def _month(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A month's customers (id, label) and scores that rank churners higher, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, N)
    frame = pd.DataFrame({ID_KEYS[0]: np.arange(1000, 1000 + N), LABEL_KEY: labels, "Age": rng.integers(20, 70, N)})
    scores = np.clip(0.3 + 0.3 * labels + rng.normal(0, 0.25, N), 0, 1)
    return frame, scores


def _append(store: PredictionStore, frame: pd.DataFrame, scores: np.ndarray, version: int, period: str) -> None:
    store.append_frame(pd.DataFrame({
        "customer_id": frame[ID_KEYS[0]].astype(str).to_numpy(), "model_version": version,
        "signature": "serving_default", "scored_at": month_end(period), "probability": scores, "threshold": 0.5,
        "decision": (scores >= 0.5).astype(int), "period": period, "source": "rest"}))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PredictionStore]:
    with PredictionStore(f"sqlite:///{tmp_path / 'predictions.sqlite'}") as s:
        yield s


@pytest.mark.parametrize(("date", "end", "days"), [("2026-01", "2026-02-28", 27), ("2026-04", "2026-05-31", 30),
                                                  ("2026-12", "2027-01-31", 30), ("2028-01", "2028-02-29", 28)])
def test_labels_are_known_at_the_end_of_the_next_month_and_its_window_starts_after_the_scores(
        date: str, end: str, days: int) -> None:
    assert monitor.next_month_end(date) == end
    assert monitor.outcome_window_days(date) == days
    cutoff = pd.Timestamp(end) - pd.Timedelta(days=days)  # the outcome window's start: the next month's first day
    assert cutoff > pd.Timestamp(month_end(date)).tz_localize(None) and cutoff.day == 1


def test_write_labels_is_the_outcome_jobs_labels_input(tmp_path: Path) -> None:
    frame, _ = _month(1)
    path = monitor.write_labels(frame, "2026-04", tmp_path / "labels" / "m.csv")
    written = pd.read_csv(path)
    assert list(written.columns) == list(LABEL_COLUMNS)
    assert written[ID_KEYS[0]].tolist() == frame[ID_KEYS[0]].tolist()
    assert written[LABEL_KEY].tolist() == frame[LABEL_KEY].tolist()
    assert set(written[AS_OF_COLUMN]) == {"2026-05-31"}


def test_judge_gives_the_months_auc_of_the_served_version_only(store: PredictionStore, tmp_path: Path) -> None:
    frame, scores = _month(2)
    old_frame, old_scores = _month(3)
    _append(store, old_frame, old_scores, 1, "2026-03")  # the same customers, a month earlier, another version
    _append(store, frame, scores, 2, "2026-04")
    job = monitor.MonthOutcomes(tmp_path, store)
    (outcome,) = job.judge(4, "2026-04", frame, {1: 0.8, 2: 0.85})
    assert (outcome.model_version, outcome.period, outcome.labelled) == (2, "2026-04", N)
    assert outcome.auc == pytest.approx(roc_auc(frame[LABEL_KEY].to_numpy(), scores), abs=1e-4)
    assert outcome.auc_low < outcome.auc < outcome.auc_high
    assert outcome.churn_rate == pytest.approx(frame[LABEL_KEY].mean(), abs=1e-4)
    assert job.labels_path(4).is_file()
    line = monitor.format_outcomes([outcome])
    assert line == f"outcome v2 {outcome.auc:.3f} [{outcome.auc_low:.3f}, {outcome.auc_high:.3f}]"


def test_a_month_nobody_scored_has_no_outcome(store: PredictionStore, tmp_path: Path) -> None:
    frame, scores = _month(4)
    _append(store, frame, scores, 1, "2026-03")
    assert monitor.MonthOutcomes(tmp_path, store).judge(3, "2026-04", frame, {}) == []
    assert monitor.format_outcomes([]) == "outcome: no labelled scores"


def test_judge_pushes_the_months_outcome_with_its_period_and_eval_auc(store: PredictionStore, tmp_path: Path) -> None:
    frame, scores = _month(5)
    _append(store, frame, scores, 2, "2026-04")
    gateway = pushgateway()
    address = next(gateway)
    try:
        (outcome,) = monitor.MonthOutcomes(tmp_path, store, address, blessing_auc=0.6).judge(
            4, "2026-04", frame, {1: 0.7, 2: 0.85})
        pushed = samples(address, METRIC_PREFIX)
    finally:
        gateway.close()
    upper = next(v for k, v in pushed.items() if k.startswith(METRIC_PREFIX + "auc_upper{"))
    assert upper == pytest.approx(outcome.auc_high, abs=1e-4)
    key = next(k for k in pushed if k.startswith(METRIC_PREFIX + "auc{"))
    assert 'period="2026-04"' in key and 'model_version="2"' in key
    evals = {k: v for k, v in pushed.items() if k.startswith(METRIC_PREFIX + "eval_auc{")}
    assert list(evals.values()) == [0.85] and 'model_version="2"' in next(iter(evals))  # the served version only
    assert [v for k, v in pushed.items() if k.startswith(METRIC_PREFIX + "blessing_auc")] == [0.6]


def test_an_unreachable_pushgateway_is_a_clear_error(store: PredictionStore, tmp_path: Path) -> None:
    frame, scores = _month(6)
    _append(store, frame, scores, 2, "2026-04")
    with pytest.raises(OutcomeError, match="Pushgateway at 127.0.0.1:9"):
        monitor.MonthOutcomes(tmp_path, store, "127.0.0.1:9").judge(4, "2026-04", frame, {2: 0.85})


def _get(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=5).read())["data"]


def test_start_stack_runs_prometheus_with_the_quality_rules_the_pushgateway_and_alertmanager(tmp_path: Path) -> None:
    stack = monitor.start_stack(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        assert stack.pushgateway and stack.alertmanager and stack.prometheus
        base = f"http://{stack.prometheus}"
        deadline = time.monotonic() + 60
        while True:
            try:
                rules = [r["name"] for g in _get(f"{base}/api/v1/rules")["groups"] for r in g["rules"]]
                managers = _get(f"{base}/api/v1/alertmanagers")["activeAlertmanagers"]
                if managers:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not come up with its Alertmanager"
            time.sleep(0.5)
        assert "ChurnModelOutcomeQualityDown" in rules
        assert any(stack.alertmanager in m["url"] for m in managers)
        targets = [t["scrapeUrl"] for t in _get(f"{base}/api/v1/targets")["activeTargets"]]
        assert any(stack.pushgateway in url for url in targets)
        assert (tmp_path / monitor.MONITOR_DIR / "prometheus" / "prometheus.log").is_file()
    finally:
        stack.stop()
    assert all(child.process.poll() is not None for child in stack.children)


def test_the_monitor_stack_s_alerts_reach_its_webhook_and_are_recorded(store: PredictionStore, tmp_path: Path) -> None:
    """`--monitor`'s stack end to end (real Prometheus, Pushgateway, Alertmanager): a month whose outcome meets
    the quality rule fires ChurnModelOutcomeQualityDown, Alertmanager notifies the stack's webhook receiver, which
    records it in <output>/alerts.jsonl and announces it; the next month's push (a version judged against an
    eval AUC it keeps) replaces it and the alert resolves, which `settle` waits for."""
    from monitoring.webhook import read_record

    lines: list[str] = []
    stack = monitor.start_stack(tmp_path, f"127.0.0.1:{free_port()}", lines.append)
    try:
        assert stack.webhook is not None
        job = monitor.MonthOutcomes(tmp_path, store, stack.pushgateway, blessing_auc=0.6)
        frame, scores = _month(5)
        _append(store, frame, scores, 2, "2026-07")
        deadline = time.monotonic() + 30
        while True:  # the Pushgateway may still be starting
            try:
                (bad,) = job.judge(6, "2026-07", frame, {2: 0.99})
                break
            except OutcomeError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert bad.auc_high is not None and bad.auc_high < 0.99 - 0.05
        deadline = time.monotonic() + 120
        while not any(a["status"] == "firing" for a in stack.alerts()):
            assert time.monotonic() < deadline, "no firing notification"
            time.sleep(1)
        frame, scores = _month(6)
        frame[ID_KEYS[0]] += N
        _append(store, frame, scores, 3, "2026-08")
        (good,) = job.judge(7, "2026-08", frame, {3: _good_eval(scores, frame)})
        stack.settle()
        statuses = [(a["status"], a["labels"]["period"]) for a in stack.alerts()
                    if a["labels"]["alertname"] == "ChurnModelOutcomeQualityDown"]
    finally:
        stack.stop()
    assert statuses == [("firing", "2026-07"), ("resolved", "2026-07")], statuses
    recorded = [(a["status"], a["labels"]["period"]) for n in read_record(tmp_path / monitor.ALERTS_FILE)
                for a in n["alerts"] if a["labels"]["alertname"] == "ChurnModelOutcomeQualityDown"]
    assert recorded == statuses
    assert any(line.startswith("alert firing: ChurnModelOutcomeQualityDown model_version=2 period=2026-07: "
                               "Churn model 2: outcome AUC in 2026-07") for line in lines), lines
    assert any(line.startswith("alert resolved: ChurnModelOutcomeQualityDown model_version=2") for line in lines)


def _good_eval(scores: np.ndarray, frame: pd.DataFrame) -> float:
    """An eval AUC the month's outcome is within the rule's margin of: its own AUC."""
    return roc_auc(frame[LABEL_KEY].to_numpy(), scores)
