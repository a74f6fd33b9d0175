"""The simulated year: `python -m simulation` (`make simulate`) runs generated months end to end.

What one command does (docs/pipeline.md, "The simulated year"):

1. data/spans.py writes every month of the scenario (`--months`, `--shift-at`, `--customers` per month) to
   `<output>/generated/` (the simulator's ground truth, which the pipeline never reads);
2. each month t = 0, 1, ..., months - 1:
   - the **served model scores month t's customers through the running model server** (REST,
     client.tf_serving.RestClient, on the version the server reports AVAILABLE), and the scores are appended
     to the prediction store (monitoring.prediction_store, SQLite `<output>/predictions.sqlite`; period = the
     business month, source `rest`, the model version);
   - month t-1's labels are revealed (its customers who churned during month t are known now): span t-1 is
     copied to `<output>/spans/`, the span folder the pipeline reads;
   - the pipeline (local_pipeline.py, a subprocess) retrains on the window (`--window`, default 3,
     `--on-drift warn`) and judges the candidate out of time on span t-1 against the served model; a blessed
     model is pushed to `<output>/serving/customer-model/<version>/` and the running server hot-swaps to it
     (the simulation waits until the model-status API reports that version AVAILABLE, `--swap-timeout`);
3. after the last month, its labels are revealed too, so every month gets its out-of-time candidate.

Bootstrap: no model exists before the first run, so months 0 and 1 are scored by nobody (the line says "no
served model"); the first runs have fewer labelled spans than `--window` + 1, so they train on every
labelled span before the evaluated one (a window of 1, then 2, ...; `bootstrap_window`). The model server
starts once the first model is pushed.

Each month m gets one line (`format_line`), printed once its labels are revealed, and one entry in
`<output>/simulation.json`; `<output>/simulation.html` charts them. Per month: the served model's AUC on
all of month m's customers (its REST scores against month m's labels), the candidate's AUC (the pipeline's
eval split of span m, out of time), the Bayes AUC (data/spans.py's exact churn probability as the score)
on all of month m's customers and on the candidate's eval rows, the drift the gate found (span m against
span m-1), blessed / pushed, and the wall time.

Once month m's labels are revealed, the outcome job judges its served scores (simulation/monitor.py): the
outcome AUC with its 95 % interval per served version goes into the line, simulation.json (`outcomes`) and
simulation.html, and to a Pushgateway with `--pushgateway` (default $CHURN_PUSHGATEWAY); `--monitor` starts
Prometheus (quality rules), a Pushgateway, Alertmanager and a local webhook receiver for the run: every alert
notification is recorded in `<output>/alerts.jsonl`, printed as a line and marked in simulation.html
(docs/monitoring.md, "Watch a simulated year").

Exit codes (common.exit_codes): 0 done, 1 a pipeline run, the model server or a hot swap failed (one line
naming the log), 2 bad usage (one line), 130 interrupted.
"""
from __future__ import annotations

import argparse
import calendar
import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from common import exit_codes
from common.facts import DEFAULT_HOST, MODEL_NAME, PROJECT_ROOT
from modules.features import CLASS_OUTPUT, ID_KEYS, LABEL_KEY, PROBABILITY_OUTPUT
from pipeline import config as cfg

DEFAULT_OUTPUT = PROJECT_ROOT / "simulation_output"
"""Where `make simulate` writes (git-ignored: generated data, models, predictions)."""
DEFAULT_SWAP_TIMEOUT_S = 300.0
"""How long a pushed version may take to become AVAILABLE on the running server (load + warmup)."""
STATUS_POLL_S = 0.5
SCORE_BATCH = 1_000
"""Customers per REST predict request (below serving.constants.DEFAULT_MAX_INSTANCES)."""
SERVER_START_TIMEOUT_S = 120.0
"""How long the model server may take to open its REST port."""
SIGNATURE = "serving_default"
STORE_SOURCE = "rest"
"""monitoring.prediction_store SOURCES: the scores came through the REST API."""
PIPELINE_SCRIPT = PROJECT_ROOT / "local_pipeline.py"
RESULT_FILE = "simulation.json"
REPORT_FILE = "simulation.html"
STORE_FILE = "predictions.sqlite"
GENERATED_DIR = "generated"
SPANS_DIR = "spans"
PIPELINE_DIR = "pipeline"
SERVING_DIR = "serving"
LOG_DIR = "logs"
SERVER_LOG = "server.log"
PIPELINE_LOG = "pipeline-month-{month}.log"
"""`<output>/logs/`: what the pipeline run judged on month m printed."""
RUN_SUMMARY = "run_summary-month-{month}.json"
"""`<output>/logs/`: that run's run_summary.json (the pipeline's own file is overwritten by the next run)."""
SETTLE_SECONDS = 0
"""The model server's `--file_system_settle_seconds`: the pipeline's Pusher renames each version folder into
place complete (pipeline/pusher.py), so no version is ever half-written and a hot swap need not wait out the
server's default settle time (5 s) after each push."""
TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "simulation.html.j2"


class SimulationError(Exception):
    """A step of the simulation failed; the message is one line (and names the log to read)."""


class UsageError(Exception):
    """Bad flags or an output folder that cannot be used."""


# ---- the plan ----------------------------------------------------------------------------------

def check_args(months: int, shift_at: int, customers: int, window: int) -> None:
    """Raises UsageError: window < 1, months < window + 2 (the first full window is trained at month
    window + 1 and needs a later month to serve), shift_at outside 1..months - 1, or fewer customers per month
    than the drift gate needs (pipeline.config.DRIFT_MIN_ROWS)."""
    if window < 1:
        raise UsageError(f"--window must be >= 1, got {window}")
    if months < window + 2:
        raise UsageError(f"--months must be >= --window + 2 = {window + 2} (the window's first full run and a "
                         f"month to serve its model), got {months}")
    if not 1 <= shift_at <= months - 1:
        raise UsageError(f"--shift-at must be in 1..{months - 1} (a month of the simulation), got {shift_at}")
    if customers < cfg.DRIFT_MIN_ROWS:
        raise UsageError(f"--customers must be >= {cfg.DRIFT_MIN_ROWS} (the drift gate's minimum rows per month), "
                         f"got {customers}")


def bootstrap_window(labelled: int, window: int) -> int | None:
    """The `--window` of the run made when `labelled` spans (0..labelled-1) have labels: `window` once there
    are window + 1 of them, every labelled span but the newest before that (the bootstrap), None with fewer
    than 2 (nothing to train and evaluate on)."""
    if labelled < 2:
        return None
    return min(window, labelled - 1)


def month_end(date: str) -> datetime:
    """Noon UTC on the last day of `date` (YYYY-MM): when that month's snapshot is scored (its period is
    `date`). Raises ValueError for a malformed date."""
    year, month = (int(part) for part in date.split("-"))
    return datetime(year, month, calendar.monthrange(year, month)[1], 12, tzinfo=timezone.utc)


def check_port(host: str, port: int) -> int:
    """`port` if it can be bound on `host` now, else UsageError; 0 gives a free port the OS picks."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            raise UsageError(f"--rest-port {port} on {host} is not free ({err.strerror or err})") from None
        return int(sock.getsockname()[1])


# ---- one month's figures -----------------------------------------------------------------------

@dataclasses.dataclass
class MonthResult:
    """One month of the simulation (month index m = span m). AUCs are in [0, 1]; None when not measured."""

    month: int
    date: str
    shifted: bool
    customers: int
    bayes_auc: float
    """Data/spans.py's exact churn probability as the score, on all of month m's customers."""
    served_version: int | None = None
    """The model version that scored month m through the server; None before the first model."""
    served_auc: float | None = None
    """That version's REST scores against month m's labels, all customers."""
    candidate_auc: float | None = None
    """The candidate judged on span m (eval split, out of time: it trained on earlier spans only)."""
    baseline_auc: float | None = None
    """The model served when the candidate was judged, on the same eval rows (the pipeline's baseline)."""
    bayes_auc_eval: float | None = None
    """The Bayes AUC on the candidate's eval rows (the same rows as candidate_auc)."""
    train_spans: list[int] | None = None
    drift_compared: bool = False
    drifted: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """The drift gate's features over threshold, span m against span m-1 (feature, measure, distance, threshold)."""
    blessed: bool | None = None
    pushed_version: int | None = None
    """The version the candidate was pushed as (and the server swapped to); None: not pushed."""
    status: str | None = None
    """The pipeline run's status (run_summary.json), None when no run judged month m."""
    seconds: float = 0.0
    """Wall time spent on month m: scoring it through the server, then its pipeline run and hot swap."""
    outcomes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """The outcome job on month m's labels (simulation/monitor.py): per served version, the outcome AUC and
    its 95 % interval (monitor.Outcome as a dict); empty when nobody scored month m."""

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _auc(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def format_line(row: MonthResult) -> str:
    """The month's printed line, e.g. `month 7 2026-08 shift  served v3 0.781  candidate 0.845  Bayes 0.865
    (eval 0.861)  drift: none  blessed, pushed v5  212.4 s`."""
    served = ("no served model" if row.served_version is None
              else f"served v{row.served_version} {_auc(row.served_auc)}")
    candidate = "no candidate" if row.status is None else f"candidate {_auc(row.candidate_auc)}"
    if not row.drift_compared:
        drift = "drift: not compared"
    elif row.drifted:
        drift = "drift: " + ", ".join(f"{d['feature']} {float(d['distance']):.3f}" for d in row.drifted)
    else:
        drift = "drift: none"
    if row.status is None:
        verdict = "not run"
    elif row.pushed_version is not None:
        verdict = f"blessed, pushed v{row.pushed_version}"
    elif row.blessed:
        verdict = "blessed, not pushed"
    else:
        verdict = f"not blessed ({row.status})"
    if row.served_version is not None and row.outcomes:
        from simulation.monitor import Outcome, format_outcomes

        served += "  " + format_outcomes([Outcome(**o) for o in row.outcomes])
    bayes = f"Bayes {_auc(row.bayes_auc)}" + (f" (eval {_auc(row.bayes_auc_eval)})" if row.bayes_auc_eval else "")
    return (f"month {row.month:2d} {row.date} {'shift' if row.shifted else '     '}  {served}  {candidate}  "
            f"{bayes}  {drift}  {verdict}  {row.seconds:.1f} s")


# ---- the chart and the files -------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN = 760, 320, 48
SERIES = (("served_auc", "served model (all customers)", "#1f77b4"),
          ("candidate_auc", "candidate (out-of-time eval split)", "#ff7f0e"),
          ("bayes_auc", "Bayes AUC (all customers)", "#2ca02c"))


def chart(rows: Sequence[MonthResult]) -> dict[str, Any]:
    """SVG coordinates of the AUC chart: one polyline per series (a gap where a month has no value), the
    y range (AUC, rounded to 0.05 around the values), x ticks per month and the drifted months' x."""
    values = [getattr(r, key) for r in rows for key, _, _ in SERIES if getattr(r, key) is not None]
    low = math.floor((min(values, default=0.5) - 0.01) * 20) / 20
    high = math.ceil((max(values, default=1.0) + 0.01) * 20) / 20
    high = max(high, low + 0.05)
    width, height, margin = CHART_WIDTH, CHART_HEIGHT, CHART_MARGIN
    step = (width - 2 * margin) / max(len(rows) - 1, 1)

    def x(i: int) -> float:
        return round(margin + i * step, 1)

    def y(v: float) -> float:
        return round(height - margin - (v - low) / (high - low) * (height - 2 * margin), 1)

    series = []
    for key, label, colour in SERIES:
        segments: list[list[tuple[float, float]]] = [[]]
        points = []
        for i, row in enumerate(rows):
            value = getattr(row, key)
            if value is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append((x(i), y(value)))
            points.append((x(i), y(value), f"{value:.3f}"))
        series.append({"label": label, "colour": colour, "points": points,
                       "lines": [" ".join(f"{a},{b}" for a, b in s) for s in segments if len(s) > 1]})
    ticks = [low + k * 0.05 for k in range(int(round((high - low) / 0.05)) + 1)]
    return {"width": width, "height": height, "margin": margin, "series": series,
            "y_ticks": [(y(t), f"{t:.2f}") for t in ticks],
            "x_ticks": [(x(i), str(r.month), r.date) for i, r in enumerate(rows)],
            "drift": [(x(i), ", ".join(d["feature"] for d in r.drifted)) for i, r in enumerate(rows) if r.drifted],
            "shift": next((x(i) for i, r in enumerate(rows) if r.shifted), None)}


def month_alerts(alerts: Sequence[dict[str, Any]], date: str) -> list[str]:
    """The notified alerts about period `date` (labels.period), as `firing ChurnModelOutcomeQualityDown v3 at
    <received_at>` strings in arrival order (alerts: monitoring.webhook.WebhookReceiver.alerts())."""
    found = []
    for alert in alerts:
        labels = alert.get("labels", {})
        if labels.get("period") == date:
            version = f" v{labels['model_version']}" if "model_version" in labels else ""
            found.append(f"{alert.get('status')} {labels.get('alertname')}{version} at {alert.get('received_at', '?')}")
    return found


def render_html(rows: Sequence[MonthResult], settings: dict[str, Any],
                alerts: Sequence[dict[str, Any]] = ()) -> str:
    """simulation.html: the settings, the AUC chart (inline SVG, no network), the per-month table with the
    alerts the webhook received about each month (`alerts`: monitoring.webhook.WebhookReceiver.alerts()) and the
    list of those notifications (autoescaped Jinja2 template templates/simulation.html.j2)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    from monitoring.webhook import format_alert

    return env.get_template(TEMPLATE).render(rows=rows, settings=settings, chart=chart(rows),
                                             lines=[format_line(r) for r in rows],
                                             alerts={r.date: month_alerts(alerts, r.date) for r in rows},
                                             notifications=[(a.get("received_at", "?"), format_alert(a))
                                                            for a in alerts])


def write_results(output: Path, rows: Sequence[MonthResult], settings: dict[str, Any],
                  alerts: Sequence[dict[str, Any]] = ()) -> None:
    """`<output>/simulation.json` ({"settings", "months": [MonthResult...]}) and `<output>/simulation.html`
    (with `alerts`, see render_html), each written to a temporary name and renamed."""
    for name, text in ((RESULT_FILE, json.dumps({"settings": settings, "months": [r.as_json() for r in rows]},
                                                indent=2) + "\n"),
                       (REPORT_FILE, render_html(rows, settings, alerts))):
        partial = output / (name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, output / name)


# ---- the model server --------------------------------------------------------------------------

def wait_for_version(status: Callable[[], Any], version: int, timeout: float,
                     alive: Callable[[], bool] = lambda: True, poll: float = STATUS_POLL_S) -> float:
    """Poll `status()` (the REST model-status API's JSON, GET /v1/models/<name>) until `version` is AVAILABLE;
    return the seconds waited. Raises SimulationError after `timeout` seconds, or as soon as `alive()` is
    false (the server exited). Errors of `status()` (server not answering yet) count as not available."""
    from client.tf_serving import ClientError

    started = time.monotonic()
    last = "no answer"
    while True:
        if not alive():
            raise SimulationError(f"the model server exited while waiting for version {version}")
        try:
            states = {str(s.get("version")): s.get("state") for s in status().get("model_version_status", [])}
            if states.get(str(version)) == "AVAILABLE":
                return time.monotonic() - started
            last = ", ".join(f"v{v} {s}" for v, s in sorted(states.items())) or "no version"
        except ClientError as err:
            last = str(err)
        if time.monotonic() - started > timeout:
            raise SimulationError(f"version {version} was not AVAILABLE after {timeout:g} s (server reports: {last})")
        time.sleep(poll)


class Server:
    """`python -m serving` on `<serving dir>/customer-model`, REST on `rest_port`, log in `log`."""

    def __init__(self, base_path: Path, rest_port: int, log: Path, host: str = DEFAULT_HOST,
                 extra_args: Sequence[str] = ()) -> None:
        self.base_path, self.rest_port, self.host, self.log = base_path, rest_port, host, log
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        grpc_port = check_port(self.host, 0)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "serving", f"--port={grpc_port}", f"--rest_api_port={self.rest_port}",
                 f"--host={self.host}", f"--model_name={MODEL_NAME}", f"--model_base_path={self.base_path}",
                 "--file_system_poll_wait_seconds=1", f"--file_system_settle_seconds={SETTLE_SECONDS}",
                 *self.extra_args],
                cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, version: int | None = None, timeout: float = 120.0) -> Any:
        """client.tf_serving.RestClient for the model, or one pinned to `version` (/versions/<v>)."""
        from client.tf_serving import RestClient

        model = MODEL_NAME if version is None else f"{MODEL_NAME}/versions/{version}"
        return RestClient(self.host, self.rest_port, model, timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def score_month(client: Any, frame: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Month's customers (a DataFrame of data/spans.py's columns) scored through the REST API, SCORE_BATCH
    rows a request: (churn probability, churn decision), shape (len(frame),) each. Raises ClientError."""
    dtypes = client.input_dtypes()
    from client.tf_serving import to_instances

    records = frame.drop(columns=[LABEL_KEY, *ID_KEYS]).to_dict("records")
    probabilities: list[float] = []
    decisions: list[int] = []
    for start in range(0, len(records), SCORE_BATCH):
        for prediction in client.predict(to_instances(records[start:start + SCORE_BATCH], dtypes)):
            probabilities.append(float(prediction[PROBABILITY_OUTPUT]))
            decisions.append(int(prediction[CLASS_OUTPUT]))
    return np.asarray(probabilities, dtype=float), np.asarray(decisions, dtype=np.int64)


# ---- the simulation ----------------------------------------------------------------------------

def eval_customer_ids(pipeline_output: Path, span: int) -> set[int]:
    """Customer ids in the eval split of `span`'s Examples written by the evaluated span's ExampleGen under
    `pipeline_output` (the pipeline's --output), found in its ML Metadata: the newest such artifact. With
    --reuse-pipeline-root that ExampleGen is cached and its artifact is an earlier run's folder, so the newest
    folder on disk would be another span's. Empty when no run has written one."""
    import tensorflow as tf

    from pipeline.spans import EVAL_EXAMPLE_GEN_ID, span_examples_uris

    root = (pipeline_output / "tfx" / EVAL_EXAMPLE_GEN_ID / "examples").resolve()
    uris = [Path(u) for u in span_examples_uris(pipeline_output / cfg.METADATA_FILE, span)]
    folders = [u for u in uris if u.resolve().parent == root]
    ids: set[int] = set()
    if not folders:
        return ids
    for path in sorted((folders[-1] / f"Split-{cfg.EVAL_SPLIT}").glob("*.gz")):
        for record in tf.data.TFRecordDataset(str(path), compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            ids.update(example.features.feature[ID_KEYS[0]].int64_list.value)
    return ids


@dataclasses.dataclass(frozen=True)
class Settings:
    months: int
    shift_at: int
    customers: int
    window: int
    output: Path
    rest_port: int
    seed: int
    max_epochs: int | None
    swap_timeout: float
    host: str = DEFAULT_HOST
    pushgateway: str | None = None
    """Where the monthly outcome metrics are pushed (simulation/monitor.py); None: not pushed."""
    server_args: tuple[str, ...] = ()
    """More model-server flags (--monitor: its monitoring config, so Prometheus can scrape it)."""

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "output": str(self.output)}


class Simulation:
    """One simulated run (module docstring); `run()` returns the months' results."""

    def __init__(self, settings: Settings, echo: Callable[[str], None] = print,
                 alerts: Callable[[], list[dict[str, Any]]] = list) -> None:
        self.settings = settings
        self.echo = echo
        self.alerts = alerts
        """The alerts the --monitor webhook received so far (simulation.html marks them per month)."""
        out = settings.output
        self.generated, self.spans = out / GENERATED_DIR, out / SPANS_DIR
        self.pipeline_output, self.serving = out / PIPELINE_DIR, out / SERVING_DIR
        self.logs = out / LOG_DIR
        self.server = Server(self.serving / MODEL_NAME, settings.rest_port, out / SERVER_LOG, settings.host,
                             settings.server_args)
        self.rows: list[MonthResult] = []
        self.truth: list[Any] = []

    def run(self) -> list[MonthResult]:
        from data import spans as data_spans
        from monitoring.prediction_store import PredictionStore

        s = self.settings
        for folder in (self.generated, self.spans, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        data_spans.write_spans(self.generated, s.months, s.shift_at, s.customers, s.seed)
        self.manifest = json.loads((self.generated / data_spans.MANIFEST).read_text(encoding="utf-8"))
        self.store = PredictionStore(f"sqlite:///{s.output / STORE_FILE}")
        from simulation.monitor import MonthOutcomes  # the outcome job's hook (_judge_outcomes)

        self.outcome_job = MonthOutcomes(s.output, self.store, s.pushgateway)
        self.echo(f"simulating {s.months} months of {s.customers} customers (shift at month {s.shift_at}, "
                  f"window {s.window}) into {s.output}")
        try:
            for month in data_spans.iter_months(s.months, s.shift_at, s.customers, s.seed):
                self.truth.append(month)
                self.rows.append(MonthResult(month.index, month.date, month.shifted, len(month.frame),
                                             round(month.bayes_auc, 4)))
                started = time.monotonic()
                self._score(month)
                self.rows[-1].seconds += time.monotonic() - started
                self.save()  # the month's served AUC is kept even if its run is interrupted
                self._reveal_and_retrain(month.index)
                self.save()
            self._reveal_and_retrain(s.months)
            self.save()
        finally:
            self.server.stop()
            self.store.close()
        return self.rows

    def save(self) -> None:
        """Writes simulation.json and simulation.html as they stand (months so far, alerts received so far)."""
        write_results(self.settings.output, self.rows, self.settings.as_json(), self.alerts())

    def _served_version(self) -> int | None:
        base = self.serving / MODEL_NAME
        versions = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
        return max(versions) if versions else None

    def _score(self, month: Any) -> None:
        """Month `month.index`'s customers through the server (nothing without a served model)."""
        from client.tf_serving import ClientError
        from data.generate import roc_auc
        from modules import threshold
        from monitoring.prediction_store import PredictionStoreError

        version = self._served_version()
        if version is None:
            return
        if not self.server.alive():
            raise SimulationError(f"the model server exited before month {month.index} was scored "
                                  f"(server log: {self.server.log})")
        row = self.rows[month.index]
        try:
            probabilities, decisions = score_month(self.server.client(version), month.frame)
        except ClientError as err:
            raise SimulationError(f"scoring month {month.index} through the server failed: {err} "
                                  f"(server log: {self.server.log})") from None
        labels = month.frame[LABEL_KEY].to_numpy()
        row.served_version, row.served_auc = version, round(roc_auc(labels, probabilities), 4)
        import pandas as pd

        frame = pd.DataFrame({
            "customer_id": month.frame[ID_KEYS[0]].astype(str).to_numpy(), "model_version": version,
            "signature": SIGNATURE, "scored_at": month_end(month.date), "probability": probabilities,
            "threshold": threshold.read(self.serving / MODEL_NAME / str(version)), "decision": decisions,
            "period": month.date, "source": STORE_SOURCE})
        try:
            self.store.append_frame(frame)
        except PredictionStoreError as err:
            raise SimulationError(f"appending month {month.index}'s scores to the prediction store: {err}") from None

    def _reveal(self, span: int) -> None:
        """Span `span`'s labels are known: copy it into the pipeline's span folder, with a spans.json listing
        only the revealed spans (their dates)."""
        from data import spans as data_spans

        target = data_spans.span_dir(self.spans, span)
        if not target.exists():
            shutil.copytree(data_spans.span_dir(self.generated, span), target)
        manifest = {**self.manifest, "spans": [e for e in self.manifest["spans"] if e["span"] <= span]}
        (self.spans / data_spans.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def _reveal_and_retrain(self, t: int) -> None:
        """Step t: month t-1's labels are revealed, then the pipeline judges a candidate on span t-1."""
        if t < 1:
            return
        span = t - 1
        started = time.monotonic()
        self._reveal(span)
        self._judge_outcomes(span)
        window = bootstrap_window(t, self.settings.window)
        row = self.rows[span]
        if window is not None:
            summary = self._run_pipeline(span, window)
            self._record(row, summary, span)
            if row.pushed_version is not None:
                self._swap(row.pushed_version)
        row.seconds += time.monotonic() - started
        self.echo(format_line(row))

    def _judge_outcomes(self, span: int) -> None:
        """Month `span`'s labels are known: the outcome job judges its served scores (simulation/monitor.py)."""
        from monitoring.outcomes import OutcomeError
        from monitoring.prediction_store import PredictionStoreError

        month, row = self.truth[span], self.rows[span]
        eval_auc = {r.pushed_version: r.candidate_auc for r in self.rows
                    if r.pushed_version is not None and r.candidate_auc is not None}
        try:
            row.outcomes = [o.as_json() for o in self.outcome_job.judge(span, month.date, month.frame, eval_auc)]
        except (OutcomeError, PredictionStoreError) as err:
            raise SimulationError(f"the outcome job on month {span}'s labels failed: {err}") from None

    def _run_pipeline(self, span: int, window: int) -> dict[str, Any]:
        s = self.settings
        log = self.logs / PIPELINE_LOG.format(month=span)
        args = [sys.executable, str(PIPELINE_SCRIPT), "--data", str(self.spans), "--window", str(window),
                "--on-drift", cfg.ON_DRIFT_WARN, "--output", str(self.pipeline_output),
                "--serving-dir", str(self.serving)]
        if s.max_epochs is not None:
            args += ["--max-epochs", str(s.max_epochs)]
        with open(log, "wb") as handle:
            proc = subprocess.run(args, cwd=PROJECT_ROOT, stdout=handle, stderr=subprocess.STDOUT, check=False)
        summary_path = self.pipeline_output / "run_summary.json"
        summary: dict[str, Any] = (json.loads(summary_path.read_text(encoding="utf-8"))
                                   if summary_path.is_file() else {})
        if proc.returncode == exit_codes.INTERRUPTED:
            raise KeyboardInterrupt
        if summary_path.is_file():
            shutil.copyfile(summary_path, self.logs / RUN_SUMMARY.format(month=span))
        if proc.returncode not in (exit_codes.OK, exit_codes.NOT_BLESSED) or summary.get("spans", {}).get(
                "eval_span") != span:
            raise SimulationError(f"the pipeline run judged on month {span} failed (exit {proc.returncode}); "
                                  f"its output: {log}")
        return summary

    def _record(self, row: MonthResult, summary: dict[str, Any], span: int) -> None:
        from data.generate import roc_auc

        metrics = summary.get("metrics") or {}
        row.candidate_auc = (metrics.get("overall") or {}).get("auc")
        row.baseline_auc = (metrics.get("baseline") or {}).get("auc")
        spans = summary["spans"]
        row.train_spans = list(spans["train_spans"])
        row.drift_compared = bool(spans["drift"]["compared"])
        row.drifted = list(spans["drift"]["drifted"])
        row.blessed, row.status = summary.get("blessed"), summary.get("status")
        if summary.get("status") == "pushed" and summary.get("newly_pushed") and summary.get("model_version"):
            row.pushed_version = int(summary["model_version"])
        ids = eval_customer_ids(self.pipeline_output, span)
        month = self.truth[span]
        in_eval = month.frame[ID_KEYS[0]].isin(ids).to_numpy()
        labels = month.frame[LABEL_KEY].to_numpy()[in_eval]
        if 0 < labels.sum() < labels.size:
            row.bayes_auc_eval = round(roc_auc(labels, month.probability[in_eval]), 4)

    def _swap(self, version: int) -> None:
        """Start the server on the first model, or wait for the running one to hot-swap to `version`."""
        if not self.server.alive():
            self.server.start()
        try:
            wait_for_version(self.server.client().status, version, self.settings.swap_timeout, self.server.alive)
        except SimulationError as err:
            raise SimulationError(f"{err} (server log: {self.server.log})") from None


# ---- command line ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from data import spans as data_spans
    from data.generate import DEFAULT_ROWS, DEFAULT_SEED
    from monitoring.batch_metrics import PUSHGATEWAY_ENV

    p = argparse.ArgumentParser(
        prog="python -m simulation",
        description="Simulate months of churn end to end: each month the served model scores the month's "
                    "customers through the model server (REST), the previous month's labels are revealed, the "
                    "pipeline retrains on the window, judges the candidate out of time, pushes it if blessed and "
                    "the server hot-swaps to it. Writes simulation.json and simulation.html in --output.")
    p.add_argument("--months", type=int, default=data_spans.DEFAULT_MONTHS,
                   help="months to simulate (default: %(default)s)")
    p.add_argument("--shift-at", type=int, default=data_spans.DEFAULT_SHIFT_AT,
                   help="month from which the churn mechanism and the e-mail mix change (default: %(default)s)")
    p.add_argument("--customers", type=int, default=DEFAULT_ROWS, help="customers per month (default: %(default)s)")
    p.add_argument("--window", type=int, default=cfg.DEFAULT_WINDOW,
                   help="training spans before the evaluated one (default: %(default)s)")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                   help="folder for the months, pipeline runs, models, predictions and reports; replaced if it holds "
                        "an earlier simulation (default: %(default)s)")
    p.add_argument("--rest-port", type=int, default=0,
                   help="the model server's REST port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data seed (default: %(default)s)")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="passed to each pipeline run (default: the pipeline's own bound)")
    p.add_argument("--reuse-pipeline-root", action="store_true",
                   help="keep --output's pipeline root (TFX's cache and ML Metadata) from an earlier simulation: "
                        "unchanged steps are served from the cache (make bench-simulate's cached case; the "
                        "served-model baseline of early months is then that earlier simulation's newest model)")
    p.add_argument("--pushgateway", default=os.environ.get(PUSHGATEWAY_ENV) or None, metavar="HOST:PORT",
                   help="push each month's outcome metrics (job churn_outcomes, label period) to this Prometheus "
                        f"Pushgateway (default: ${PUSHGATEWAY_ENV}, else no push)")
    p.add_argument("--monitor", action="store_true",
                   help="start Prometheus (quality rules), a Pushgateway, Alertmanager and a webhook receiver (its "
                        "notifications recorded in <output>/alerts.jsonl) next to the simulation and "
                        "push each month's outcome there, to watch the quality alert (simulation/monitor.py)")
    p.add_argument("--swap-timeout", type=float, default=DEFAULT_SWAP_TIMEOUT_S,
                   help="seconds a pushed version may take to become AVAILABLE on the server (default: %(default)s)")
    return p


def prepare_output(output: Path, reuse_pipeline_root: bool = False) -> None:
    """Create `output` (its parent must exist); an earlier simulation's folder is emptied first, except its
    pipeline root (`<output>/pipeline`: TFX's cache and ML Metadata) with `reuse_pipeline_root`. Raises
    UsageError: the parent is missing, `output` is a file, or a non-empty folder that is not a simulation's."""
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: its parent folder {output.parent} does not exist")
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a folder")
    if output.is_dir() and any(output.iterdir()):
        if not (output / GENERATED_DIR).is_dir():
            raise UsageError(f"--output {output} is a non-empty folder that holds no earlier simulation")
        for entry in output.iterdir():
            if reuse_pipeline_root and entry.name == PIPELINE_DIR:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    try:
        output.mkdir(exist_ok=True)
    except OSError as err:
        raise UsageError(f"--output {output}: {err.strerror or err}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m simulation`; returns the exit code (module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        check_args(args.months, args.shift_at, args.customers, args.window)
        if args.max_epochs is not None and args.max_epochs < 1:
            raise UsageError(f"--max-epochs must be >= 1, got {args.max_epochs}")
        if args.swap_timeout <= 0:
            raise UsageError(f"--swap-timeout must be > 0, got {args.swap_timeout:g}")
        if args.seed < 0:
            raise UsageError(f"--seed must be >= 0, got {args.seed}")
        if not 0 <= args.rest_port <= 65535:
            raise UsageError(f"--rest-port must be in 0..65535, got {args.rest_port}")
        output = args.output.resolve()
        rest_port = check_port(DEFAULT_HOST, args.rest_port)
        prepare_output(output, args.reuse_pipeline_root)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.USAGE
    stack = None
    if args.monitor:  # the outcome job's hook: the stack it pushes to (simulation/monitor.py)
        from common.facts import MONITORING_CONFIG_FILE
        from simulation.monitor import start_stack

        echo_alert = lambda line: print(line, flush=True)  # noqa: E731 (the receiver's thread prints each alert)
        stack = start_stack(output, f"{DEFAULT_HOST}:{rest_port}", echo_alert)
        args.pushgateway = stack.pushgateway or args.pushgateway
        started = [f"{name} http://{address}" for name, address in (("Prometheus", stack.prometheus),
                   ("Pushgateway", stack.pushgateway), ("Alertmanager", stack.alertmanager)) if address]
        if stack.webhook is not None:
            from simulation.monitor import ALERTS_FILE

            started.append(f"alerts to the webhook {stack.webhook.url} (recorded in {output / ALERTS_FILE})")
        print(f"monitoring: {', '.join(started) or 'nothing started'} (logs in {output / 'monitor'})", flush=True)
    settings = Settings(args.months, args.shift_at, args.customers, args.window, output, rest_port, args.seed,
                        args.max_epochs, args.swap_timeout, pushgateway=args.pushgateway,
                        server_args=(f"--monitoring_config_file={MONITORING_CONFIG_FILE}",) if stack else ())
    simulation = Simulation(settings, echo=lambda line: print(line, flush=True),
                            alerts=stack.alerts if stack is not None else list)
    try:
        simulation.run()
        if stack is not None:  # the last months' resolves reach the webhook before the stack stops
            stack.settle()
            simulation.save()
    except SimulationError as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED
    finally:
        if stack is not None:
            stack.stop()
    print(f"results: {output / RESULT_FILE}\nreport: {output / REPORT_FILE}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
