"""monitoring/webhook.py: the local webhook receiver Alertmanager notifies (real HTTP on a free port)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monitoring import webhook


def _note(status: str, period: str) -> dict:
    """An Alertmanager webhook payload (version 4) with one alert."""
    return {"version": "4", "status": status, "receiver": "webhook", "groupLabels": {"period": period},
            "alerts": [{"status": status, "labels": {"alertname": "ChurnModelOutcomeQualityDown",
                                                     "model_version": "3", "period": period,
                                                     "severity": "critical"},
                        "annotations": {"summary": f"Churn model 3: outcome AUC in {period} at most 0.700"}}]}


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_notifications_are_kept_recorded_and_announced(tmp_path: Path) -> None:
    record = tmp_path / "out" / "alerts.jsonl"
    lines: list[str] = []
    with webhook.WebhookReceiver(record, lambda alert: lines.append(webhook.format_alert(alert))) as receiver:
        assert receiver.url.endswith(webhook.WEBHOOK_PATH)
        assert _post(receiver.url, json.dumps(_note("firing", "2026-07")).encode()) == 200
        assert _post(receiver.url, json.dumps(_note("resolved", "2026-07")).encode()) == 200
        assert [a["status"] for a in receiver.alerts()] == ["firing", "resolved"]
        assert all(webhook.RECEIVED_AT in a for a in receiver.alerts())
    kept = webhook.read_record(record)
    assert [n["status"] for n in kept] == ["firing", "resolved"] and kept == receiver.received
    assert lines == ["alert firing: ChurnModelOutcomeQualityDown model_version=3 period=2026-07: "
                     "Churn model 3: outcome AUC in 2026-07 at most 0.700",
                     "alert resolved: ChurnModelOutcomeQualityDown model_version=3 period=2026-07: "
                     "Churn model 3: outcome AUC in 2026-07 at most 0.700"]


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""])
def test_a_body_that_is_no_notification_gets_400_and_is_not_kept(tmp_path: Path, body: bytes) -> None:
    with webhook.WebhookReceiver(tmp_path / "alerts.jsonl") as receiver:
        assert _post(receiver.url, body) == 400
        assert receiver.received == []
    assert webhook.read_record(tmp_path / "alerts.jsonl") == []


def test_read_record_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert webhook.read_record(tmp_path / "none.jsonl") == []
