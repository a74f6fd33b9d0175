"""A small local webhook receiver for Alertmanager's `webhook_config`: it keeps every notification it gets.

Alertmanager POSTs one JSON body per notification (version 4 of its webhook payload: `status`, `receiver`,
`groupLabels`, `commonLabels`, `alerts` with each alert's `status` firing/resolved, `labels`, `annotations`,
`startsAt`, `endsAt`; https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
`WebhookReceiver` answers 200, keeps the body in `received`, appends it as one line to a JSON Lines file (when
given) and calls `on_alert(alert)` for each alert in it. `python -m simulation --monitor` routes its
Alertmanager here (`<output>/alerts.jsonl`, a line printed per firing/resolved alert); the end-to-end tests use
it as their receiver. A body that is not JSON gets 400 and is not kept.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitoring.prometheus import PROMETHEUS_HOST

WEBHOOK_PATH = "/alerts"
RECEIVED_AT = "received_at"
"""Key added to each kept notification: when the receiver got it (ISO 8601, UTC)."""
MAX_BODY_BYTES = 10 * 1024 * 1024
"""Larger bodies are refused (413): Alertmanager's notifications are a few kB."""


def format_alert(alert: dict[str, Any]) -> str:
    """One line for an alert of a notification, e.g.
    `alert firing: ChurnModelOutcomeQualityDown model_version=3 period=2026-07: <summary>`."""
    labels = alert.get("labels", {})
    keys = ("model_version", "period", "feature")
    where = " ".join(f"{k}={labels[k]}" for k in keys if k in labels)
    summary = alert.get("annotations", {}).get("summary", "")
    return f"alert {alert.get('status', '?')}: {labels.get('alertname', '?')} {where}: {summary}".replace(" : ", ": ")


class WebhookReceiver:
    """An HTTP server on `host`:`port` (0: a free port) taking Alertmanager's webhook POSTs at WEBHOOK_PATH.

    `received`: the notifications (dicts, each with RECEIVED_AT), in arrival order. `record`: a JSON Lines file
    the notifications are appended to (created with its folder). Raises OSError when the port cannot be bound.
    Use as a context manager or call `close()`.
    """

    def __init__(self, record: Path | None = None, on_alert: Callable[[dict[str, Any]], None] | None = None,
                 host: str = PROMETHEUS_HOST, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.record = record
        lock = threading.Lock()
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.touch()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_error(413, "notification too large")
                    return
                try:
                    note = json.loads(self.rfile.read(length))
                    if not isinstance(note, dict):
                        raise ValueError("not a JSON object")
                except ValueError as err:
                    self.send_error(400, f"the body is not an Alertmanager notification: {err}")
                    return
                note[RECEIVED_AT] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                with lock:
                    receiver.received.append(note)
                    if receiver.record is not None:
                        with receiver.record.open("a", encoding="utf-8") as handle:
                            handle.write(json.dumps(note, sort_keys=True) + "\n")
                    if on_alert is not None:
                        for alert in note.get("alerts", []):
                            on_alert(alert)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}{WEBHOOK_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification so far, in arrival order (each with the notification's RECEIVED_AT)."""
        return [{**alert, RECEIVED_AT: note[RECEIVED_AT]} for note in list(self.received)
                for alert in note.get("alerts", [])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_record(path: Path) -> list[dict[str, Any]]:
    """The notifications of a JSON Lines record written by WebhookReceiver (empty when the file is missing)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
