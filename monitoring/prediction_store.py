"""The prediction store: one row per scored customer, kept with whom it was for.

A row says which model version scored which customer, when, through which signature and source, what
probability it gave and what it decided at the model's threshold (plus the customer's segment and the
suggested action where the caller knows them). `monitoring.outcomes` joins these rows with labels that
arrive 30-90 days later.

Where it lives: any SQLAlchemy database URL. The default is an embedded SQLite file
(`DEFAULT_STORE_PATH`, no set-up); several writers (replicas, batch jobs) share a PostgreSQL database
through the same code (`postgresql+psycopg2://user@host:port/db`). The URL comes from the `--store`
flag of a command, else the `CHURN_PREDICTION_STORE` environment variable, else the default
(`resolve_url`). Rows hold customer ids: personal data (docs/monitoring.md, "The prediction store").

Ingestion API (the one way rows get in; batch scoring, the model server and applications calling
real TF Serving use it):

    store = PredictionStore(resolve_url(None))
    store.append([Prediction("C-1", 3, "serving_default", datetime.now(timezone.utc), 0.71, "batch")])

`append` writes one transaction per chunk; a chunk that fails to write raises `PredictionStoreError`
and nothing of that chunk is kept (earlier chunks stay committed). `predictions_from_rows` turns a
TF Serving REST answer of `serving_with_ids` into `Prediction`s, `model_threshold` reads a pushed
version's decision threshold. Writers: `insights score --store`, the model server's
`--prediction_store_url` (serving/observability/prediction_log.py), `client.tf_serving predict --record`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from common.facts import PREDICTION_SOURCES, PROJECT_ROOT
from modules.features import CLASS_OUTPUT, ID_KEYS, PROBABILITY_OUTPUT
from modules.threshold import FALLBACK as FALLBACK_THRESHOLD

STORE_URL_ENV = "CHURN_PREDICTION_STORE"
"""Environment variable holding the store's SQLAlchemy URL (used when no `--store` flag is given)."""
DEFAULT_STORE_PATH = PROJECT_ROOT / ".predictions" / "predictions.sqlite"
"""Embedded default (gitignored): personal data, never committed."""
TABLE_NAME = "predictions"
SOURCES = PREDICTION_SOURCES
"""Where a prediction was made: `insights score`, the REST API or the gRPC API (`common.facts`)."""
DEFAULT_CHUNK_ROWS = 10_000
"""Rows per insert transaction in `append`."""
PERIOD_FORMAT = "%Y-%m"
"""A period is the business month of the scoring time, in UTC (`2026-11`)."""
_CREATE_LOCK_KEY = 0x63687572  # "chur": PostgreSQL advisory lock serialising CREATE TABLE IF NOT EXISTS
MAX_ID_LENGTH = 128
MAX_LABEL_LENGTH = 256

metadata = sa.MetaData()
predictions = sa.Table(
    TABLE_NAME, metadata,
    # SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("model_version", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=False), nullable=False, comment="UTC"),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("decision", sa.SmallInteger, nullable=False),
    sa.Column("segment", sa.String(MAX_LABEL_LENGTH), nullable=True),
    sa.Column("action", sa.String(MAX_LABEL_LENGTH), nullable=True),
    sa.Column("source", sa.String(8), nullable=False),
    sa.CheckConstraint("probability >= 0 AND probability <= 1", name="ck_predictions_probability"),
    sa.CheckConstraint("decision IN (0, 1)", name="ck_predictions_decision"),
    sa.CheckConstraint("source IN (" + ", ".join(f"'{s}'" for s in SOURCES) + ")", name="ck_predictions_source"),
    # The outcome join: per customer and model version, the latest row before a cut-off.
    sa.Index("ix_predictions_customer_version_time", "customer_id", "model_version", "scored_at"),
    # Retention (`delete_before`) and period reports.
    sa.Index("ix_predictions_scored_at", "scored_at"),
)
COLUMNS: tuple[str, ...] = tuple(c.name for c in predictions.columns if c.name != "id")


class PredictionStoreError(Exception):
    """The store cannot be opened or written, or a row is invalid; the message says which."""


@dataclass(frozen=True)
class Prediction:
    """One scored customer.

    `scored_at` is converted to UTC (a naive datetime is taken as UTC); `probability` is in [0, 1];
    `decision` defaults to `probability >= threshold` (the model's `churn` output); `threshold` is the
    model's decision threshold (`modules.threshold.read(model_dir)`; pass it: the default is only the
    fallback of models exported before thresholds were stored); `period` defaults to the UTC month of `scored_at`.
    """
    customer_id: str
    model_version: int
    signature: str
    scored_at: datetime
    probability: float
    source: str
    threshold: float = FALLBACK_THRESHOLD
    decision: int | None = None
    period: str | None = None
    segment: str | None = None
    action: str | None = None


def period_of(moment: datetime) -> str:
    """The business month (`YYYY-MM`, UTC) a scoring time belongs to."""
    return _utc_naive(moment).strftime(PERIOD_FORMAT)


def predictions_from_rows(rows: Iterable[Mapping[str, Any]], model_version: int, signature: str, source: str,
                          threshold: float = FALLBACK_THRESHOLD, scored_at: datetime | None = None,
                          period: str | None = None, id_key: str = ID_KEYS[0],
                          probability_key: str = PROBABILITY_OUTPUT,
                          decision_key: str | None = CLASS_OUTPUT) -> list[Prediction]:
    """`Prediction` records of one predict answer in TF Serving's REST row format (`{"predictions": [...]}`, one
    object per customer, as `serving_with_ids` answers: the id, `churn_probability`, `churn`).

    The id (`id_key`) becomes the customer id as text; the decision is the answer's own `decision_key`
    output (the model's `churn`, decided at its threshold) when present, else `probability >= threshold`;
    `threshold` is recorded as the model's (`model_threshold(version folder)` when the caller has the pushed
    folder). `scored_at` defaults to now (UTC). Raises PredictionStoreError naming the row that lacks a key.
    """
    moment = scored_at or datetime.now(timezone.utc)
    found = []
    for number, row in enumerate(rows):
        missing = [k for k in (id_key, probability_key) if k not in row]
        if missing:
            raise PredictionStoreError(f"answer row {number} has no {' or '.join(missing)}: call a signature "
                                       f"that returns the id (e.g. serving_with_ids)")
        decision = row.get(decision_key) if decision_key is not None else None
        found.append(Prediction(str(row[id_key]), int(model_version), signature, moment, float(row[probability_key]),
                                source, threshold, None if decision is None else int(decision), period))
    return found


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def model_threshold(model_dir: str | os.PathLike[str]) -> float:
    """The decision threshold of the SavedModel at `model_dir` (its `churn` output's; `modules.threshold.read`),
    or `FALLBACK_THRESHOLD` when the folder holds no usable threshold record (a model of another project)."""
    from modules.threshold import read

    try:
        return read(model_dir)
    except (ValueError, OSError):
        return FALLBACK_THRESHOLD


def resolve_url(flag: str | None) -> str:
    """The store URL: the flag, else `$CHURN_PREDICTION_STORE`, else SQLite at `DEFAULT_STORE_PATH`."""
    url = flag or os.environ.get(STORE_URL_ENV)
    return url if url else f"sqlite:///{DEFAULT_STORE_PATH}"


def _row(p: Prediction) -> dict[str, Any]:
    """Validated insert parameters for one prediction; raises PredictionStoreError naming the problem."""
    where = f"prediction for customer {p.customer_id!r}"
    if not isinstance(p.customer_id, str) or not p.customer_id or len(p.customer_id) > MAX_ID_LENGTH:
        raise PredictionStoreError(f"customer id must be a non-empty string of at most {MAX_ID_LENGTH} "
                                   f"characters, got {p.customer_id!r}")
    if p.source not in SOURCES:
        raise PredictionStoreError(f"{where}: source must be one of {', '.join(SOURCES)}, got {p.source!r}")
    probability = float(p.probability)
    if not (0.0 <= probability <= 1.0) or math.isnan(probability):
        raise PredictionStoreError(f"{where}: probability must be in [0, 1], got {p.probability!r}")
    if not isinstance(p.scored_at, datetime):
        raise PredictionStoreError(f"{where}: scored_at must be a datetime, got {p.scored_at!r}")
    decision = int(probability >= p.threshold) if p.decision is None else int(p.decision)
    if decision not in (0, 1):
        raise PredictionStoreError(f"{where}: decision must be 0 or 1, got {p.decision!r}")
    scored_at = _utc_naive(p.scored_at)
    return {"customer_id": p.customer_id, "model_version": int(p.model_version), "signature": p.signature,
            "period": p.period or scored_at.strftime(PERIOD_FORMAT), "scored_at": scored_at,
            "probability": probability, "threshold": float(p.threshold), "decision": decision,
            "segment": p.segment, "action": p.action, "source": p.source}


def _frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Validated insert parameters for a DataFrame chunk (see `_row`)."""
    n = len(frame)
    ids = frame["customer_id"]
    bad_id = ~ids.map(lambda v: isinstance(v, str) and 0 < len(v) <= MAX_ID_LENGTH).to_numpy(bool)
    if bad_id.any():
        raise PredictionStoreError(f"customer id must be a non-empty string of at most {MAX_ID_LENGTH} "
                                   f"characters, got {ids[bad_id].iloc[0]!r}")
    source = frame["source"]
    bad = ~source.isin(SOURCES).to_numpy()
    if bad.any():
        raise PredictionStoreError(f"prediction for customer {ids[bad].iloc[0]!r}: source must be one of "
                                   f"{', '.join(SOURCES)}, got {source[bad].iloc[0]!r}")
    probability = pd.to_numeric(frame["probability"], errors="coerce").to_numpy(float)
    bad = ~((probability >= 0) & (probability <= 1))
    if bad.any():
        raise PredictionStoreError(f"prediction for customer {ids[bad].iloc[0]!r}: probability must be in [0, 1], "
                                   f"got {frame['probability'][bad].iloc[0]!r}")
    try:
        scored_at = pd.to_datetime(frame["scored_at"])
    except (ValueError, TypeError) as err:
        raise PredictionStoreError(f"scored_at must hold datetimes: {err}") from None
    if scored_at.dt.tz is not None:
        scored_at = scored_at.dt.tz_convert("UTC").dt.tz_localize(None)
    threshold = frame["threshold"].to_numpy(float) if "threshold" in frame else np.full(n, FALLBACK_THRESHOLD)
    decision = (probability >= threshold).astype(int)
    if "decision" in frame:
        given = frame["decision"]
        decision = np.where(given.isna(), decision, given.fillna(0)).astype(int)
    if not np.isin(decision, (0, 1)).all():
        raise PredictionStoreError("decision must be 0 or 1")
    period = scored_at.dt.strftime(PERIOD_FORMAT)
    if "period" in frame:
        period = frame["period"].where(frame["period"].notna(), period)
    def optional(name: str) -> list[Any]:
        if name not in frame:
            return [None] * n
        return [None if not isinstance(v, str) and pd.isna(v) else v for v in frame[name].tolist()]
    columns = {"customer_id": ids.tolist(), "model_version": frame["model_version"].astype(int).tolist(),
               "signature": frame["signature"].tolist(), "period": period.tolist(),
               "scored_at": list(scored_at.dt.to_pydatetime()), "probability": probability.tolist(),
               "threshold": threshold.tolist(), "decision": decision.tolist(), "segment": optional("segment"),
               "action": optional("action"), "source": source.tolist()}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _chunks(rows: Iterable[Prediction], size: int) -> Iterator[list[Prediction]]:
    chunk: list[Prediction] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class PredictionStore:
    """A prediction store at a SQLAlchemy URL; the table and its indexes are created when missing.

    Raises PredictionStoreError when the URL is malformed or the database cannot be reached.
    """

    def __init__(self, url: str, create: bool = True):
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as err:
            raise PredictionStoreError(f"not a database URL: {url!r} ({err})") from None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(parsed)
            if create:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":  # replicas starting together: one creates, the others wait
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY})
                    metadata.create_all(conn)
            else:
                with self.engine.connect():
                    pass
        except (SQLAlchemyError, ImportError) as err:
            raise PredictionStoreError(f"cannot open the prediction store at {parsed!r}: {_reason(err)}") from None

    def append(self, rows: Iterable[Prediction], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
        """Writes `rows`, one transaction per `chunk_rows`; returns the number written.

        Raises PredictionStoreError on an invalid row (before its chunk is written) or a failed write
        (that chunk is rolled back; earlier chunks stay).
        """
        written = 0
        for chunk in _chunks(rows, chunk_rows):
            params = [_row(p) for p in chunk]
            self._insert(params)
            written += len(params)
        return written

    def append_frame(self, frame: pd.DataFrame, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> int:
        """`append` for a DataFrame with the Prediction fields as columns (bulk ingestion, checked column-wise).

        `scored_at` is a datetime column (tz-aware is converted to UTC, naive is taken as UTC). Same checks,
        defaults and errors as `append`.
        """
        missing = [c for c in ("customer_id", "model_version", "signature", "scored_at", "probability", "source")
                   if c not in frame.columns]
        if missing:
            raise PredictionStoreError(f"prediction frame lacks column(s): {', '.join(missing)}")
        for start in range(0, len(frame), chunk_rows):
            self._insert(_frame_rows(frame.iloc[start:start + chunk_rows]))
        return len(frame)

    def _insert(self, params: Sequence[dict[str, Any]]) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(predictions.insert(), list(params))
        except SQLAlchemyError as err:
            raise PredictionStoreError(f"writing {len(params)} prediction(s) to the store failed: "
                                       f"{_reason(err)}") from None

    def read(self, before: datetime | None = None, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
        """Rows scored before `before` (all when None) as a DataFrame with `columns`; `scored_at` is UTC.

        Rows come from the driver as they are (timestamps are parsed by pandas, column-wise), which is what
        makes a million-row read take seconds rather than minutes.
        """
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise PredictionStoreError(f"unknown prediction column(s): {', '.join(unknown)}")
        # type_coerce(String) skips SQLAlchemy's per-row datetime parsing (SQLite keeps ISO strings).
        selected = [sa.type_coerce(predictions.c[c], sa.String) if c == "scored_at" else predictions.c[c]
                    for c in columns]
        query = sa.select(*selected)
        if before is not None:
            query = query.where(predictions.c.scored_at < _utc_naive(before))
        try:
            with self.engine.connect() as conn:
                cursor = conn.execute(query).cursor
                frame = pd.DataFrame.from_records(cursor.fetchall(), columns=list(columns))
        except SQLAlchemyError as err:
            raise PredictionStoreError(f"reading the prediction store failed: {_reason(err)}") from None
        if "scored_at" in frame:
            frame["scored_at"] = pd.to_datetime(frame["scored_at"])
        return frame

    def delete_before(self, cutoff: datetime) -> int:
        """Retention: deletes rows scored before `cutoff`; returns how many."""
        try:
            with self.engine.begin() as conn:
                return conn.execute(predictions.delete().where(predictions.c.scored_at < _utc_naive(cutoff))).rowcount
        except SQLAlchemyError as err:
            raise PredictionStoreError(f"deleting old predictions failed: {_reason(err)}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(err: Exception) -> str:
    """The database's own message, without SQLAlchemy's statement dump."""
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).strip().splitlines()[0]
