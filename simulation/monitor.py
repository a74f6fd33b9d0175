"""The simulated year's outcome job: each month, once its labels are revealed, judge the served model on them.

`python -m simulation` (simulation/simulate.py) calls `MonthOutcomes.judge` when month m's labels become
known (at step m+1, before the pipeline's run judged on month m). It

1. writes month m's labels as the outcome job's labels input, `<output>/labels/labels-month-<m>.csv`
   with monitoring.outcomes' LABEL_COLUMNS (`Customer_ID`, `Target_Churn`, `as_of_date`); the as-of date
   is the last day of month m+1 (a month-m customer's churn is the churn during month m+1), and the
   outcome window is the days of month m+1 before it (`outcome_window_days`), so only the scores made at
   the end of month m (or earlier) can be judged on it;
2. runs the outcome join through monitoring.outcomes' public API (`read_labels`, `join`, `report`: the
   one place labels are read and joined) on the simulation's prediction store, keeping the predictions of
   period m: the outcome AUC with its 95 % DeLong interval per served model version;
3. with a Pushgateway (`--pushgateway`, default `$CHURN_PUSHGATEWAY`), pushes them with their `period`
   label (monitoring.outcomes.outcome_metrics / push_metrics, job `churn_outcomes`), with each version's
   eval AUC (the pipeline's AUC of the candidate when it was pushed) and the blessing bound, which the
   alert `ChurnModelOutcomeQualityDown` (monitoring/rules/quality.yml) compares with. A push replaces the
   job's previous one, so the alert always judges the latest revealed month.

`python -m simulation --monitor` starts Prometheus (with the quality rules), a Pushgateway, Alertmanager and a
local webhook receiver next to the simulation (`start_stack`: monitoring/serve.py's start-up code, storage in
`<output>/monitor/`) and pushes there, so the quality alert fires and resolves as the months go by: each
notification is recorded in `<output>/alerts.jsonl` (ALERTS_FILE), printed as a line and marked in
simulation.html. The push of a month replaces the previous month's (one Pushgateway group, job
`churn_outcomes`), so an alert about one (model_version, period) resolves when the next month is pushed and
fires again for the next period only if that month's outcome meets the rule too. `replay` pushes a
finished simulation's months again, in order, from its labels files and prediction store.
"""
from __future__ import annotations

import calendar
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from modules.features import ID_KEYS, LABEL_KEY
from monitoring import outcomes
from monitoring.prediction_store import PredictionStore
from pipeline.config import DEFAULT_MIN_AUC

MONITOR_DIR = "monitor"
"""`<output>/monitor/`: the --monitor stack's storage and logs (one folder per process)."""
LABELS_DIR = "labels"
LABELS_FILE = "labels-month-{month}.csv"
"""`<output>/labels/`: month m's labels as the outcome job reads them (`python -m monitoring.outcomes --labels`)."""


def next_month_end(date: str) -> str:
    """The last day (YYYY-MM-DD) of the month after `date` (YYYY-MM): month `date`'s labels are known then.
    Raises ValueError for a malformed date."""
    year, month = (int(part) for part in date.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-{calendar.monthrange(year, month)[1]:02d}"


def outcome_window_days(date: str) -> int:
    """Days of the outcome window before `next_month_end(date)`: the month after `date` up to its last day,
    so the window starts at 00:00 on its first day, after month `date`'s scores (made at its end)."""
    return int(next_month_end(date)[-2:]) - 1


def write_labels(frame: pd.DataFrame, date: str, path: Path) -> Path:
    """Month `date`'s customers (data/spans.py's columns) as an outcome labels CSV at `path`: one row per
    customer, columns monitoring.outcomes.LABEL_COLUMNS, as-of date `next_month_end(date)`. Returns `path`."""
    labels = pd.DataFrame({outcomes.ID_COLUMN: frame[ID_KEYS[0]].astype(str).to_numpy(),
                           LABEL_KEY: frame[LABEL_KEY].astype(int).to_numpy(),
                           outcomes.AS_OF_COLUMN: next_month_end(date)})
    path.parent.mkdir(parents=True, exist_ok=True)
    labels.to_csv(path, index=False)
    return path


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The outcome quality of one served model version on one month's labels (monitoring.outcomes.Quality's
    overall figures). AUCs are in [0, 1]; None where undefined (one class only)."""

    model_version: int
    period: str
    labelled: int
    churn_rate: float
    auc: float | None
    auc_low: float | None
    auc_high: float | None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def period_outcomes(store: PredictionStore, labels_path: Path, period: str) -> tuple[list[outcomes.Row], pd.DataFrame]:
    """The outcome join of `labels_path` (read_labels) with the store's predictions of `period`, windowed by
    `outcome_window_days(period)`: (monitoring.outcomes.report's rows, overall and per segment; the joined
    frame). Raises monitoring.outcomes.OutcomeError for unreadable labels, PredictionStoreError for the store."""
    labels = outcomes.read_labels(str(labels_path))
    predictions = store.read(columns=outcomes.JOIN_COLUMNS)
    predictions = predictions[predictions["period"] == period]
    joined = outcomes.join(labels, predictions, outcome_window_days(period))
    return (outcomes.report(joined) if not joined.empty else []), joined


def summarise(rows: Sequence[outcomes.Row]) -> list[Outcome]:
    """The overall (segment None) rows as Outcome, by model version."""
    return [Outcome(r.model_version, r.period, r.quality.labelled, round(r.quality.churn_rate, 4),
                    _number(r.quality.auc), _number(r.quality.auc_low), _number(r.quality.auc_high))
            for r in rows if r.segment is None]


def format_outcomes(found: Sequence[Outcome]) -> str:
    """The per-month line's part, e.g. `outcome v3 0.781 [0.752, 0.810]`; `outcome: no labelled scores`."""
    if not found:
        return "outcome: no labelled scores"
    return "  ".join(f"outcome v{o.model_version} " + ("n/a" if o.auc is None else
                                                        f"{o.auc:.3f} [{o.auc_low:.3f}, {o.auc_high:.3f}]")
                     for o in found)


class MonthOutcomes:
    """The simulation's outcome job (module docstring): `judge(month, date, frame)` per revealed month."""

    def __init__(self, output: Path, store: PredictionStore, pushgateway: str | None = None,
                 blessing_auc: float = DEFAULT_MIN_AUC) -> None:
        self.output, self.store, self.pushgateway, self.blessing_auc = output, store, pushgateway, blessing_auc

    def labels_path(self, month: int) -> Path:
        return self.output / LABELS_DIR / LABELS_FILE.format(month=month)

    def judge(self, month: int, date: str, frame: pd.DataFrame, eval_auc: Mapping[int, float]) -> list[Outcome]:
        """Writes month `month`'s labels, joins them with its stored scores and, with a Pushgateway, pushes the
        outcome metrics (with `eval_auc`: model version -> its AUC on the pipeline's eval split). Returns the
        month's outcomes per served version (empty when nobody scored it). Raises OutcomeError (a push that
        failed, unreadable labels) and PredictionStoreError."""
        rows, _ = period_outcomes(self.store, write_labels(frame, date, self.labels_path(month)), date)
        self.push(rows, eval_auc)
        return summarise(rows)

    def push(self, rows: Sequence[outcomes.Row], eval_auc: Mapping[int, float]) -> None:
        """Pushes `rows`' outcome metrics with the eval AUC of their versions and the blessing bound, when there
        is a Pushgateway and something to push (replacing the previous month's). Raises OutcomeError."""
        if self.pushgateway and rows:
            versions = {r.model_version for r in rows}
            outcomes.push_metrics(outcomes.outcome_metrics(
                rows, {v: a for v, a in eval_auc.items() if v in versions}, self.blessing_auc), self.pushgateway)


def eval_aucs(months: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Model version -> the AUC it was pushed with (the candidate's out-of-time eval AUC), from
    simulation.json's months (`pushed_version`, `candidate_auc`)."""
    return {int(m["pushed_version"]): float(m["candidate_auc"]) for m in months
            if m.get("pushed_version") is not None and m.get("candidate_auc") is not None}


def replay(output: Path, pushgateway: str, after_push: Callable[[Mapping[str, Any], list[Outcome]], None],
           blessing_auc: float = DEFAULT_MIN_AUC) -> list[list[Outcome]]:
    """Pushes a finished simulation's served months again, in order: month m's outcome from its labels file
    (`<output>/labels/`) joined with `<output>/predictions.sqlite`, with the eval AUC its version was pushed
    with; `after_push(month, outcomes)` runs after each push (to wait for the alert rules' evaluation).
    Returns the outcomes per pushed month. Raises OSError / KeyError for a folder that holds no finished
    simulation, OutcomeError for a failed push."""
    from simulation import simulate

    months = json.loads((output / simulate.RESULT_FILE).read_text(encoding="utf-8"))["months"]
    evals = eval_aucs(months)
    pushed = []
    with PredictionStore(f"sqlite:///{output / simulate.STORE_FILE}", create=False) as store:
        job = MonthOutcomes(output, store, pushgateway, blessing_auc)
        for month in months:
            if not month["outcomes"]:
                continue
            rows, _ = period_outcomes(store, job.labels_path(month["month"]), month["date"])
            job.push(rows, evals)
            found = summarise(rows)
            after_push(month, found)
            pushed.append(found)
    return pushed


ALERTS_FILE = "alerts.jsonl"
"""`<output>/alerts.jsonl`: every notification Alertmanager sent to the --monitor stack's webhook receiver (one JSON
object a line, Alertmanager's webhook payload plus `received_at`; monitoring/webhook.py)."""
GROUP_WAIT, GROUP_INTERVAL = "10s", "30s"
"""The --monitor Alertmanager's grouping (monitoring/alertmanager.yml's route otherwise): a simulated month lasts
minutes, not a month, so a notification (and its resolve) must not wait alertmanager.yml's 30 s / 5 min."""
SETTLE_TIMEOUT_S = 120.0
"""After the last month, how long `Stack.settle` waits for the resolves of alerts Prometheus no longer fires."""
SETTLE_MIN_S = 35.0
"""`Stack.settle` waits this long first while an alert is firing: two of prometheus.yml's 15 s scrape and rule
evaluation intervals, so the last push has been scraped and judged."""


@dataclasses.dataclass
class Stack:
    """Prometheus (quality rules), Pushgateway, Alertmanager and its webhook receiver started for a simulation
    (`start_stack`)."""

    children: list[Any]
    """monitoring.serve.Child of each started process."""
    pushgateway: str | None
    alertmanager: str | None
    prometheus: str | None
    webhook: Any = None
    """monitoring.webhook.WebhookReceiver Alertmanager notifies (None without Alertmanager)."""

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert notified to the webhook so far (monitoring.webhook.WebhookReceiver.alerts)."""
        return self.webhook.alerts() if self.webhook is not None else []

    def settle(self, timeout: float = SETTLE_TIMEOUT_S, poll: float = 1.0) -> None:
        """Waits (at most `timeout` s; first SETTLE_MIN_S when an alert was notified firing) until every alert
        whose last notification says firing is still firing in Prometheus, i.e. the resolves of alerts that
        stopped firing have reached the webhook. Returns at once without Prometheus or a webhook."""
        import time
        import urllib.request

        if self.webhook is None or self.prometheus is None:
            return
        deadline = time.monotonic() + timeout
        if any(alert.get("status") == "firing" for alert in self.alerts()):
            time.sleep(min(SETTLE_MIN_S, timeout))
        while time.monotonic() < deadline:
            last: dict[tuple[tuple[str, str], ...], str] = {}
            for alert in self.alerts():
                last[tuple(sorted(alert.get("labels", {}).items()))] = alert.get("status", "")
            notified = {key for key, status in last.items() if status == "firing"}
            try:
                with urllib.request.urlopen(f"http://{self.prometheus}/api/v1/alerts", timeout=5) as response:
                    active = json.loads(response.read())["data"]["alerts"]
            except (OSError, ValueError, KeyError):
                return
            firing = {tuple(sorted(a["labels"].items())) for a in active if a.get("state") == "firing"}
            if notified <= firing:
                return
            time.sleep(poll)

    def stop(self) -> None:
        """Stops Prometheus first, then Alertmanager and the Pushgateway (each one SIGTERM, then kill after 30 s),
        then the webhook receiver."""
        import subprocess

        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            child.log.close()
        if self.webhook is not None:
            self.webhook.close()


def start_stack(output: Path, model_server: str, echo: Callable[[str], None] | None = None) -> Stack:
    """Starts the Pushgateway, a webhook receiver (monitoring/webhook.py: every notification appended to
    `<output>/alerts.jsonl`, `echo` called with a line per firing/resolved alert), Alertmanager
    (monitoring/alertmanager.yml's routes, its webhook pointed at that receiver, GROUP_WAIT / GROUP_INTERVAL) and
    Prometheus (the quality rules; scraping the Pushgateway and the model server at `model_server`, `host:port`)
    through monitoring/serve.py's start-up code, on their usual ports (common.facts; a free one when taken),
    storage and logs in `<output>/monitor/`. A process that is not installed is left out (serve.py prints how to
    install it); the Stack's address is then None. Raises OSError when the receiver cannot bind a port."""
    import yaml

    from common.facts import ALERTMANAGER_PORT, METRICS_PATH, PROMETHEUS_PORT, PUSHGATEWAY_PORT
    from monitoring import alerting, serve
    from monitoring.webhook import WebhookReceiver, format_alert

    base = output / MONITOR_DIR
    base.mkdir(parents=True, exist_ok=True)
    gateway = serve.start_pushgateway(PUSHGATEWAY_PORT, base / "pushgateway")
    webhook = WebhookReceiver(output / ALERTS_FILE, (lambda alert: echo(format_alert(alert))) if echo else None)
    config = base / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alerting.alertmanager_config(webhook.url, GROUP_WAIT, GROUP_INTERVAL)),
                      encoding="utf-8")
    manager = serve.start_alertmanager(ALERTMANAGER_PORT, base / "alertmanager", config)
    if manager is None:
        webhook.close()
        webhook = None
    children = [c for c in (gateway, manager) if c]
    prometheus = serve.start_prometheus((model_server, METRICS_PATH), PROMETHEUS_PORT, base / "prometheus", None,
                                        gateway.address if gateway else None, manager.address if manager else None)
    children += [prometheus] if prometheus else []
    return Stack(children, gateway.address if gateway else None, manager.address if manager else None,
                 prometheus.address if prometheus else None, webhook)
