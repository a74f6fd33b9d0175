"""`python -m monitoring.outcomes`: is the served model still right, now that the labels are in?

    python -m monitoring.outcomes --labels labels.csv [--store URL] [--window-days 90] [--html outcomes.html]
    python -m monitoring.outcomes --labels churn_labels --store postgresql+psycopg2://user@host/db
    python -m monitoring.outcomes --labels labels.csv --pushgateway 127.0.0.1:9091

The one place labels are read and joined with the prediction store (`monitoring.prediction_store`).
Labels are a CSV file, or a table of that name in the store's database, with three columns:
`Customer_ID` (`modules.features.ID_KEYS[0]`), `Target_Churn` (`modules.features.LABEL_KEY`, 0 or 1) and
`as_of_date` (the day the outcome was known, `YYYY-MM-DD`). The outcome window is the `--window-days`
(default 90) before the as-of date; each label is joined, per model version, with that customer's latest
prediction made before the window (`scored_at < as_of_date - window`), so a prediction is only judged
on an outcome it could not have seen.

Reported per model version and period (the prediction's business month), and the same per segment:
counts, churn rate, AUC with a 95 % interval (DeLong et al. 1988, "Comparing the areas under two or more
correlated ROC curves", Biometrics 44; computed with the O(n log n) algorithm of Sun & Xu 2014, IEEE
Signal Processing Letters 21), precision and recall of the stored decision (made at the model's
threshold), top-decile lift (churn rate among the 10 % highest scores / overall churn rate), Brier
score and a 10-bin reliability curve. Output: a table on stdout, an HTML report (`--html`), and with
`--pushgateway` (or `$CHURN_PUSHGATEWAY`) the metrics pushed to a Prometheus Pushgateway (job `churn_outcomes`;
every value has a `period` label, so a business month is not confused with scrape time), with the eval AUC per version
(`--eval-auc`) and the blessing bound that the alert `ChurnModelOutcomeQualityDown` compares with.

Exit codes: 0 report written; 2 bad usage or unreadable labels / store (the message says what to fix);
3 no label matched a prediction made before its outcome window (nothing to judge).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from scipy import stats

from common import exit_codes
from modules.features import ID_KEYS, LABEL_KEY
from monitoring.batch_metrics import PUSHGATEWAY_ENV
from monitoring.prediction_store import PredictionStore, PredictionStoreError, resolve_url
from pipeline.config import DEFAULT_MIN_AUC

ID_COLUMN = ID_KEYS[0]
AS_OF_COLUMN = "as_of_date"
LABEL_COLUMNS = (ID_COLUMN, LABEL_KEY, AS_OF_COLUMN)
DEFAULT_WINDOW_DAYS = 90
"""Churn labels arrive 30-90 days after a score: the outcome window is the 90 days before the as-of date."""
CONFIDENCE = 0.95
LIFT_FRACTION = 0.10
RELIABILITY_BINS = 10
DEFAULT_HTML = Path("outcomes.html")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "outcomes.html.j2"
PUSH_JOB = "churn_outcomes"
"""Pushgateway job name of the outcome metrics (each run replaces the previous run's push)."""
METRIC_PREFIX = "churn_outcome_"
QUALITY_AUC_MARGIN = 0.05
"""ChurnModelOutcomeQualityDown (monitoring/rules/quality.yml, checked equal by tests/monitoring/test_outcomes.py)
fires when the upper end of the outcome AUC's 95 % interval is below the model's eval AUC minus this margin (or
below the blessing bound): `quality_down`."""
JOIN_COLUMNS = ("customer_id", "model_version", "period", "scored_at", "probability", "decision", "segment")
"""The prediction store columns the join and the report need."""


class OutcomeError(Exception):
    """Bad input; the message is printed as-is and the exit code is 2."""


@dataclass(frozen=True)
class Quality:
    """Outcome quality of one group of labelled predictions. Undefined values (e.g. AUC with one class) are NaN."""
    labelled: int
    churned: int
    churn_rate: float
    auc: float
    auc_low: float
    auc_high: float
    precision: float
    recall: float
    lift_top_decile: float
    brier: float
    reliability: list[tuple[float, float, float, int]] = field(default_factory=list)
    """Per non-empty bin of [0, 1] in RELIABILITY_BINS equal widths: (bin low, mean probability, churn rate, rows)."""


@dataclass(frozen=True)
class Row:
    model_version: int
    period: str
    segment: str | None
    quality: Quality


def delong_auc(y: npt.NDArray[Any], p: npt.NDArray[Any], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """AUC of scores `p` (shape [n]) for 0/1 labels `y` (shape [n]) with its DeLong confidence interval.

    Returns (auc, low, high), the interval clipped to [0, 1]; all NaN when either class is absent.
    Ties count one half (the Mann-Whitney statistic). Source: DeLong et al. 1988; fast midrank
    algorithm of Sun & Xu 2014.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    pos, neg = p[y], p[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return math.nan, math.nan, math.nan
    tx, ty = stats.rankdata(pos), stats.rankdata(neg)
    tz = stats.rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(max(var, 0.0))
    return float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half))


def top_fraction_lift(y: npt.NDArray[Any], p: npt.NDArray[Any], fraction: float = LIFT_FRACTION) -> float:
    """Churn rate of the `fraction` highest-scored rows (at least one) over the overall churn rate.

    Shapes [n]; NaN when nobody churned."""
    y = np.asarray(y, dtype=float)
    base = y.mean() if len(y) else 0.0
    if base == 0:
        return math.nan
    k = max(1, int(math.ceil(len(y) * fraction)))
    top = np.argsort(-np.asarray(p, dtype=float), kind="stable")[:k]
    return float(y[top].mean() / base)


def reliability_curve(y: npt.NDArray[Any], p: npt.NDArray[Any],
                      bins: int = RELIABILITY_BINS) -> list[tuple[float, float, float, int]]:
    """(bin low, mean probability, churn rate, rows) per non-empty bin of [0, 1] split in `bins` equal widths."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    sum_p = np.bincount(index, weights=p, minlength=bins)
    sum_y = np.bincount(index, weights=y, minlength=bins)
    return [(b / bins, float(sum_p[b] / counts[b]), float(sum_y[b] / counts[b]), int(counts[b]))
            for b in range(bins) if counts[b]]


def quality(y: npt.NDArray[Any], p: npt.NDArray[Any], decision: npt.NDArray[Any]) -> Quality:
    """Outcome quality of labels `y` (0/1), probabilities `p` and the stored decisions (0/1), all shape [n]."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    decision = np.asarray(decision, dtype=int)
    n, churned = len(y), int(y.sum())
    auc, low, high = delong_auc(y, p)
    true_positive = int((decision & y).sum())
    flagged = int(decision.sum())
    return Quality(
        labelled=n, churned=churned, churn_rate=churned / n if n else math.nan, auc=auc, auc_low=low, auc_high=high,
        precision=true_positive / flagged if flagged else math.nan,
        recall=true_positive / churned if churned else math.nan,
        lift_top_decile=top_fraction_lift(y, p), brier=float(np.mean((p - y) ** 2)) if n else math.nan,
        reliability=reliability_curve(y, p))


def read_labels(source: str, store: PredictionStore | None = None) -> pd.DataFrame:
    """Labels from a CSV file, or from a table of that name in the store's database.

    Returns columns `Customer_ID` (str), `Target_Churn` (int 0/1), `as_of_date` (datetime64).
    Raises OutcomeError naming the file/table and what is wrong (missing, unreadable, columns, values).
    """
    path = Path(source)
    if path.is_file():
        try:
            frame = pd.read_csv(path, dtype={ID_COLUMN: str, LABEL_KEY: str, AS_OF_COLUMN: str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise OutcomeError(f"labels file {source} is not a readable CSV file: {err}") from None
    elif store is not None and source.isidentifier() and sa.inspect(store.engine).has_table(source):
        with store.engine.connect() as conn:
            table = sa.Table(source, sa.MetaData(), autoload_with=conn)
            frame = pd.DataFrame.from_records(conn.execute(sa.select(table)).fetchall(),
                                              columns=[c.name for c in table.columns])
    else:
        raise OutcomeError(f"labels {source!r}: no such file, nor a table of that name in the prediction store")
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomeError(f"labels {source}: missing column(s) {', '.join(missing)} "
                           f"(expected {', '.join(LABEL_COLUMNS)}; found {', '.join(map(str, frame.columns))})")
    frame = frame[list(LABEL_COLUMNS)].copy()
    if frame.empty:
        raise OutcomeError(f"labels {source}: no rows")
    for column in LABEL_COLUMNS:
        blank = frame[column].isna()
        if column == ID_COLUMN:
            blank |= frame[column].astype(str).str.strip() == ""
        if blank.any():
            raise OutcomeError(f"labels {source}: {int(blank.sum())} row(s) with an empty {column} "
                               f"(first at data row {int(np.argmax(blank.to_numpy())) + 1})")
    frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    label = frame[LABEL_KEY].astype(str).str.strip()
    bad = ~label.isin(["0", "1"])
    if bad.any():
        raise OutcomeError(f"labels {source}: {LABEL_KEY} must be 0 or 1; {int(bad.sum())} row(s) are not "
                           f"(first: {frame[LABEL_KEY][bad].iloc[0]!r})")
    frame[LABEL_KEY] = (label == "1").astype(int)
    dates = pd.to_datetime(frame[AS_OF_COLUMN].astype(str), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        raise OutcomeError(f"labels {source}: {AS_OF_COLUMN} must be a YYYY-MM-DD date; "
                           f"{int(dates.isna().sum())} row(s) are not "
                           f"(first: {frame[AS_OF_COLUMN][dates.isna()].iloc[0]!r})")
    frame[AS_OF_COLUMN] = dates
    return frame


def join(labels: pd.DataFrame, predictions: pd.DataFrame, window_days: int = DEFAULT_WINDOW_DAYS) -> pd.DataFrame:
    """Each label with, per model version, the customer's latest prediction before its outcome window.

    `labels`: `read_labels`' columns; `predictions`: `PredictionStore.read()`'s. A label is kept once per
    model version that scored the customer before `as_of_date - window_days`; unmatched labels are dropped.
    Returns the labels' columns plus the prediction's.
    """
    left = labels.assign(_cutoff=labels[AS_OF_COLUMN] - pd.Timedelta(days=window_days))
    left = left.rename(columns={ID_COLUMN: "customer_id"})
    # Integer codes for the ids: merge_asof's `by` on integers is several times faster than on strings.
    codes, _ = pd.factorize(pd.concat([left["customer_id"], predictions["customer_id"]], ignore_index=True))
    left["_customer"] = codes[:len(left)]
    right = predictions.drop(columns="customer_id").assign(_customer=codes[len(left):])
    left = left.sort_values("_cutoff", kind="stable")
    parts = []
    for _, preds in right.groupby("model_version", sort=True):
        preds = preds.sort_values("scored_at", kind="stable")
        merged = pd.merge_asof(left, preds, left_on="_cutoff", right_on="scored_at", by="_customer",
                               allow_exact_matches=False, direction="backward")
        parts.append(merged.dropna(subset=["model_version"]))
    if not parts:
        return pd.DataFrame(columns=[*left.columns, *right.columns]).drop(columns=["_cutoff", "_customer"])
    out = pd.concat(parts, ignore_index=True).drop(columns=["_cutoff", "_customer"])
    out["model_version"] = out["model_version"].astype(int)
    return out


def report(joined: pd.DataFrame) -> list[Row]:
    """Quality per (model version, period), then per (model version, period, segment), sorted."""
    rows: list[Row] = []
    y, p, d = LABEL_KEY, "probability", "decision"
    for (version, period), g in joined.groupby(["model_version", "period"], sort=True):
        rows.append(Row(int(version), str(period), None, quality(g[y].to_numpy(), g[p].to_numpy(), g[d].to_numpy())))
        for segment, s in g.groupby(g["segment"].fillna(""), sort=True):
            if segment != "":  # type: ignore[comparison-overlap]  # pandas-stubs 1.5 types a group key as a tuple
                rows.append(Row(int(version), str(period), str(segment),
                                quality(s[y].to_numpy(), s[p].to_numpy(), s[d].to_numpy())))
    return rows


_TABLE_COLUMNS = ("version", "period", "segment", "labelled", "churn", "AUC [95% CI]", "precision", "recall",
                  "lift@10%", "Brier")


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table_cells(row: Row) -> list[str]:
    q = row.quality
    auc = "n/a" if math.isnan(q.auc) else f"{q.auc:.3f} [{q.auc_low:.3f}, {q.auc_high:.3f}]"
    return [str(row.model_version), row.period, row.segment or "(all)", str(q.labelled), _fmt(q.churn_rate),
            auc, _fmt(q.precision), _fmt(q.recall), _fmt(q.lift_top_decile, 2), _fmt(q.brier)]


def format_table(rows: Sequence[Row]) -> str:
    cells = [list(_TABLE_COLUMNS)] + [table_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(_TABLE_COLUMNS))]
    return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(widths))).rstrip() for c in cells)


def render_html(rows: Sequence[Row], labels_source: str, window_days: int) -> str:
    """The HTML report (autoescaped Jinja2 template `templates/outcomes.html.j2`)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE_NAME).render(
        columns=_TABLE_COLUMNS, rows=[(table_cells(r), r) for r in rows], labels_source=labels_source,
        window_days=window_days, generated=datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"))


def outcome_metrics(rows: Sequence[Row], eval_auc: dict[int, float] | None = None,
                    blessing_auc: float | None = None) -> CollectorRegistry:
    """A registry with the overall (not per segment) outcome gauges, labelled `model_version` and `period`.

    Gauges: churn_outcome_auc, _auc_lower, _auc_upper (95 % interval), _lift_top_decile, _brier, _precision,
    _recall, _churn_rate, _labelled (rows); NaN values are left out. With `eval_auc` (model version -> AUC
    on the pipeline's eval split) also churn_outcome_eval_auc{model_version}, with `blessing_auc` (the
    Evaluator's AUC lower bound) churn_outcome_blessing_auc: the quality alert compares with both.
    """
    names = {"auc": "outcome AUC", "auc_low": "lower end of the outcome AUC's 95 % interval",
             "auc_high": "upper end of the outcome AUC's 95 % interval", "lift_top_decile": "top-decile lift",
             "brier": "Brier score", "precision": "precision at the model's threshold",
             "recall": "recall at the model's threshold", "churn_rate": "observed churn rate",
             "labelled": "labelled predictions"}
    metric = {"auc_low": "auc_lower", "auc_high": "auc_upper"}
    registry = CollectorRegistry()
    gauges = {key: Gauge(METRIC_PREFIX + metric.get(key, key), f"Churn model {text} on late labels, per model "
                         "version and period (business month of the prediction)", ["model_version", "period"],
                         registry=registry) for key, text in names.items()}
    for row in rows:
        if row.segment is not None:
            continue
        values = asdict(row.quality)
        for key, gauge in gauges.items():
            value = float(values[key])
            if not math.isnan(value):
                gauge.labels(model_version=str(row.model_version), period=row.period).set(value)
    if eval_auc:
        gauge = Gauge(METRIC_PREFIX + "eval_auc", "AUC of the model version on the pipeline's eval split",
                      ["model_version"], registry=registry)
        for version, value in eval_auc.items():
            gauge.labels(model_version=str(version)).set(value)
    if blessing_auc is not None:
        Gauge(METRIC_PREFIX + "blessing_auc", "The Evaluator's AUC lower bound for blessing a model",
              registry=registry).set(blessing_auc)
    return registry


def quality_down(auc_upper: float, eval_auc: float | None, blessing_auc: float | None) -> bool:
    """ChurnModelOutcomeQualityDown's condition (monitoring/rules/quality.yml) for one model version and period:
    `auc_upper` (upper end of the outcome AUC's 95 % interval) < `eval_auc` - QUALITY_AUC_MARGIN, or <
    `blessing_auc`; a bound that is None (not pushed) does not count. AUCs in [0, 1]."""
    return ((eval_auc is not None and auc_upper < eval_auc - QUALITY_AUC_MARGIN)
            or (blessing_auc is not None and auc_upper < blessing_auc))


def push_metrics(registry: CollectorRegistry, gateway: str, job: str = PUSH_JOB) -> None:
    """Pushes `registry` to a Pushgateway (`host:port` or URL) as job `job`, replacing that job's previous push.

    The Pushgateway keeps the last push until the next one, so the alerts judge the periods of the latest
    outcome run; earlier values stay in Prometheus' history. Raises OutcomeError when the gateway cannot be
    reached or refuses the push.
    """
    try:
        push_to_gateway(gateway, job=job, registry=registry, timeout=10)
    except OSError as err:
        raise OutcomeError(f"pushing the outcome metrics to the Pushgateway at {gateway} failed: {err}") from None


def _version_auc(text: str) -> tuple[int, float]:
    version, sep, auc = text.partition("=")
    try:
        value = float(auc)
        if not sep or not 0 <= value <= 1:
            raise ValueError
        return int(version), value
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected VERSION=AUC with AUC in [0, 1], got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitoring.outcomes",
                                description="Join late churn labels with the prediction store and report the "
                                            "model's outcome quality per version and period.")
    p.add_argument("--labels", required=True, metavar="FILE|TABLE",
                   help=f"CSV file, or a table in the store's database, with columns {', '.join(LABEL_COLUMNS)}")
    p.add_argument("--store", default=None, metavar="URL",
                   help="prediction store SQLAlchemy URL (default: $CHURN_PREDICTION_STORE, else the embedded SQLite)")
    p.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS,
                   help="outcome window before the as-of date; predictions must precede it (default: %(default)s)")
    p.add_argument("--html", type=Path, default=DEFAULT_HTML, help="HTML report path (default: %(default)s)")
    p.add_argument("--pushgateway", default=os.environ.get(PUSHGATEWAY_ENV) or None, metavar="HOST:PORT",
                   help="also push the metrics to this Prometheus Pushgateway (job churn_outcomes, label period; "
                        f"default: ${PUSHGATEWAY_ENV}, else no push)")
    p.add_argument("--eval-auc", type=_version_auc, action="append", default=[], metavar="VERSION=AUC",
                   help="a model version's AUC on the eval split, pushed for the quality alert (repeatable)")
    p.add_argument("--blessing-auc", type=float, default=DEFAULT_MIN_AUC,
                   help="the Evaluator's AUC lower bound, pushed for the quality alert (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.window_days < 0:
            raise OutcomeError("--window-days must be 0 or more")
        with PredictionStore(resolve_url(args.store), create=False) as store:
            labels = read_labels(args.labels, store)
            if not sa.inspect(store.engine).has_table("predictions"):
                raise OutcomeError(f"the store at {store.engine.url!r} holds no predictions table")
            predictions = store.read(before=labels[AS_OF_COLUMN].max() - pd.Timedelta(days=args.window_days),
                                     columns=JOIN_COLUMNS)
        joined = join(labels, predictions, args.window_days)
        if joined.empty:
            print(f"no label in {args.labels} matched a prediction made before its outcome window "
                  f"({args.window_days} days); nothing to judge", file=sys.stderr)
            return exit_codes.NO_MATCH
        rows = report(joined)
        args.html.write_text(render_html(rows, args.labels, args.window_days), encoding="utf-8")
        if args.pushgateway:
            push_metrics(outcome_metrics(rows, dict(args.eval_auc), args.blessing_auc), args.pushgateway)
    except (OutcomeError, PredictionStoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.USAGE
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.USAGE
    print(format_table(rows))
    print(f"\n{len(joined)} labelled prediction(s); report written to {args.html}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
