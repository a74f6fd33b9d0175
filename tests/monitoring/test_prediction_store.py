"""The prediction store against SQLite and a real PostgreSQL server (started by the test)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from modules.threshold import FALLBACK
from monitoring import prediction_store as ps
from monitoring.prediction_store import Prediction, PredictionStore, PredictionStoreError
from tests.monitoring.postgres import postgres_server

T0 = datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def postgres_url():
    yield from postgres_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sub' / 'predictions.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = PredictionStore(url)
    with s.engine.begin() as conn:
        conn.execute(ps.predictions.delete())
    yield s
    s.close()


def _p(cid: str, prob: float, at: datetime = T0, **kw) -> Prediction:
    return Prediction(cid, kw.pop("model_version", 1), "serving_default", at, prob, kw.pop("source", "batch"), **kw)


def test_rows_round_trip_with_derived_period_and_decision(store: PredictionStore):
    local = datetime(2026, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 2026-03-31 23:30 UTC
    n = store.append([_p("C-1", 0.7, segment="lapsed", action="call"), _p("C-2", 0.3, at=local, threshold=0.31),
                      _p("C-3", 0.2, source="grpc", decision=1, period="2026-04")])
    assert n == 3
    rows = store.read().sort_values("customer_id").reset_index(drop=True)
    assert list(rows.columns) == list(ps.COLUMNS)
    assert list(rows["period"]) == ["2026-03", "2026-03", "2026-04"]
    assert list(rows["decision"]) == [1, 0, 1]
    assert list(rows["scored_at"]) == [pd.Timestamp("2026-03-31 23:30")] * 3
    assert rows.loc[0, "segment"] == "lapsed" and rows.loc[0, "action"] == "call"
    assert rows.loc[1, "segment"] is None and rows.loc[2, "source"] == "grpc"
    assert list(rows["threshold"]) == [FALLBACK, 0.31, FALLBACK]  # the model's own, else the documented fallback


def test_invalid_chunk_is_not_written_and_earlier_chunks_stay(store: PredictionStore):
    rows = [_p("C-1", 0.1), _p("C-2", 0.2), _p("C-3", 1.5)]
    with pytest.raises(PredictionStoreError, match=r"C-3.*probability must be in \[0, 1\]"):
        store.append(rows, chunk_rows=2)
    assert sorted(store.read()["customer_id"]) == ["C-1", "C-2"]
    with pytest.raises(PredictionStoreError, match="source must be one of batch, rest, grpc"):
        store.append([_p("C-4", 0.1, source="kafka")])
    with pytest.raises(PredictionStoreError, match="customer id must be a non-empty string"):
        store.append([_p("", 0.1)])


def test_failed_write_raises_and_rolls_back_the_chunk(store: PredictionStore):
    # The database itself refuses the second row (its CHECK constraint), so the whole chunk is rolled back.
    with pytest.raises(PredictionStoreError, match="writing 2 prediction"):
        store._insert([ps._row(_p("C-1", 0.1)), {**ps._row(_p("C-2", 0.1)), "source": "fax"}])
    assert store.read().empty


def test_indexes_serve_the_outcome_join(store: PredictionStore):
    indexes = {i["name"]: i["column_names"] for i in sa.inspect(store.engine).get_indexes(ps.TABLE_NAME)}
    assert indexes["ix_predictions_customer_version_time"] == ["customer_id", "model_version", "scored_at"]
    assert indexes["ix_predictions_scored_at"] == ["scored_at"]


def test_read_before_and_retention(store: PredictionStore):
    store.append([_p("C-1", 0.1, at=T0 - timedelta(days=400)), _p("C-2", 0.2, at=T0)])
    assert list(store.read(before=T0)["customer_id"]) == ["C-1"]
    assert store.delete_before(T0 - timedelta(days=365)) == 1
    assert list(store.read()["customer_id"]) == ["C-2"]


def test_append_frame(store: PredictionStore):
    frame = pd.DataFrame({"customer_id": ["A", "B"], "model_version": [2, 2], "signature": "serving_default",
                          "scored_at": pd.to_datetime(["2026-01-05", "2026-02-05"]), "probability": [0.9, 0.1],
                          "source": "rest", "segment": ["x", None]})
    assert store.append_frame(frame) == 2
    rows = store.read().sort_values("customer_id")
    assert list(rows["period"]) == ["2026-01", "2026-02"] and list(rows["segment"]) == ["x", None]
    with pytest.raises(PredictionStoreError, match="lacks column.*probability"):
        store.append_frame(frame.drop(columns="probability"))


def test_url_resolution_and_bad_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv(ps.STORE_URL_ENV, raising=False)
    assert ps.resolve_url(None) == f"sqlite:///{ps.DEFAULT_STORE_PATH}"
    monkeypatch.setenv(ps.STORE_URL_ENV, "postgresql+psycopg2://u@h/db")
    assert ps.resolve_url(None) == "postgresql+psycopg2://u@h/db"
    assert ps.resolve_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"
    with pytest.raises(PredictionStoreError, match="not a database URL"):
        PredictionStore("no url")
    with pytest.raises(PredictionStoreError, match="cannot open the prediction store"):
        PredictionStore("postgresql+psycopg2://nobody@127.0.0.1:1/none")


def test_append_frame_checks_like_append(store: PredictionStore):
    frame = pd.DataFrame({"customer_id": ["A", "B"], "model_version": [1, 1], "signature": "serving_default",
                          "scored_at": pd.to_datetime(["2026-01-05 01:00"]).tz_localize("Europe/Berlin").repeat(2),
                          "probability": [0.4, 0.6], "source": "grpc", "decision": [1, None]})
    store.append_frame(frame)
    rows = store.read().sort_values("customer_id")
    assert list(rows["decision"]) == [1, 1] and list(rows["period"]) == ["2026-01", "2026-01"]
    assert list(rows["scored_at"]) == [pd.Timestamp("2026-01-05 00:00")] * 2
    for column, value, message in [("probability", [0.1, float("nan")], "customer 'B': probability"),
                                   ("source", ["batch", "csv"], "source must be one of"),
                                   ("customer_id", ["A", ""], "customer id must be a non-empty string")]:
        with pytest.raises(PredictionStoreError, match=message):
            store.append_frame(frame.assign(**{column: value}))
    assert len(store.read()) == 2
