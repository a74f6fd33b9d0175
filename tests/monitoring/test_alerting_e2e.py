"""End to end: outcome metrics pushed to a real Pushgateway, scraped by a real Prometheus with the quality
rules, sent to a real Alertmanager, delivered to a small local webhook receiver; then resolved."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from monitoring.outcomes import Row, outcome_metrics, push_metrics, quality
from tests.monitoring.alerting_stack import alerting_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("alerting")
    with alerting_stack(tmp) as (receiver, gateway_address, _):
        yield receiver, gateway_address, tmp


def _rows(auc_like_noise: float, period: str) -> list[Row]:
    """One version-7 row whose scores separate churners with the given noise."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 + (0.3 * (2 * y - 1)) * (1 - auc_like_noise) + rng.normal(0, 0.2, 2000), 0, 1)
    return [Row(7, period, None, quality(y, p, (p >= 0.5).astype(int)))]


def _alert(note: dict, status: str, period: str) -> dict | None:
    for alert in note["alerts"]:
        labels = alert["labels"]
        if (alert["status"] == status and labels["alertname"] == "ChurnModelOutcomeQualityDown"
                and labels.get("period") == period):
            return alert
    return None


def test_quality_drop_reaches_the_webhook_and_resolves_after_a_good_period(stack) -> None:
    receiver, gateway, tmp = stack
    bad = _rows(1.0, "2026-05")   # no signal: AUC about 0.5
    assert bad[0].quality.auc_high < 0.9 - 0.05
    push_metrics(outcome_metrics(bad, {7: 0.9}, 0.6), gateway)
    note = receiver.wait(lambda n: _alert(n, "firing", "2026-05") is not None, "firing")
    alert = _alert(note, "firing", "2026-05")
    assert alert["labels"]["model_version"] == "7" and alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"].startswith("Churn model 7: outcome AUC in 2026-05 at most 0.")
    good = _rows(0.0, "2026-06")  # the retrained model's period
    assert good[0].quality.auc_high > 0.9 - 0.05
    push_metrics(outcome_metrics(good, {7: 0.9}, 0.6), gateway)
    receiver.wait(lambda n: _alert(n, "resolved", "2026-05") is not None, "resolved")
    assert not any(_alert(n, "firing", "2026-06") for n in receiver.received)

