"""The prediction store against SQLite and a real PostgreSQL server (started by the test)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from common.facts import PROJECT_ROOT
from modules.threshold import FALLBACK
from monitoring import prediction_store as ps
from monitoring.prediction_store import Prediction, PredictionStore, PredictionStoreError
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.monitoring.postgres import postgres_server
from tests.serving.conftest import make_config
from tests.serving.models import WITH_IDS_THRESHOLD, build_churn_with_ids_model

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


def test_predictions_from_rows_keeps_the_answer_with_its_ids() -> None:
    rows = [{"Customer_ID": 17, "churn_probability": 0.4, "churn": 1}, {"Customer_ID": "C-9", "churn_probability": 0.2}]
    found = ps.predictions_from_rows(rows, model_version=3, signature="serving_with_ids", source="grpc",
                                     threshold=0.3, scored_at=T0)
    assert [(p.customer_id, p.decision, p.threshold, p.model_version) for p in found] == [
        ("17", 1, 0.3, 3), ("C-9", None, 0.3, 3)]  # the model's own decision when the answer has it
    with pytest.raises(PredictionStoreError, match="answer row 0 has no Customer_ID: call a signature that returns"):
        ps.predictions_from_rows([{"churn_probability": 0.5}], 1, "serving_default", "rest")


def test_model_threshold_reads_the_version_folder_or_falls_back(tmp_path: Path) -> None:
    from modules import threshold

    threshold.write(str(tmp_path / "3"), threshold.Threshold(value=0.35, method=threshold.GIVEN))
    assert ps.model_threshold(tmp_path / "3") == 0.35
    assert ps.model_threshold(tmp_path / "missing") == FALLBACK


def _docs_example() -> str:
    """The Python block of docs/monitoring.md that records predictions made by real TF Serving."""
    text = (PROJECT_ROOT / "docs" / "monitoring.md").read_text()
    section = text.split("An application does the same", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_docs_example_records_what_a_served_model_answered(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented block, run as written against a served `serving_with_ids` (our server speaks TF Serving's
    REST API), from a checkout whose pushed version folder holds the model's threshold."""
    base = tmp_path / "serving_model" / "m"
    build_churn_with_ids_model(base / "4")
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ps.STORE_URL_ENV, url)
    server = ModelServer(make_config((ModelConfig("m", base),)), CollectorRegistry())
    server.start()
    try:
        namespace: dict = {}
        exec(compile(_docs_example(), "docs/monitoring.md", "exec"), namespace)
        customers = [{"Customer_ID": 501, "Age": 40, "Gender": "Male", "Annual_Income": 50.0, "Total_Spend": 900.0},
                     {"Customer_ID": 502, "Age": 70, "Gender": "Female", "Annual_Income": 20.0, "Total_Spend": 10.0}]
        rows = namespace["score_and_record"](customers, 4, server=f"http://127.0.0.1:{server.rest_port}", model="m")
    finally:
        server.stop()
    with PredictionStore(url) as store:
        kept = store.read().sort_values("customer_id").to_dict("records")
    assert [(r["customer_id"], r["model_version"], r["source"], r["signature"]) for r in kept] == [
        ("501", 4, "rest", "serving_with_ids"), ("502", 4, "rest", "serving_with_ids")]
    assert [r["probability"] for r in kept] == pytest.approx([r["churn_probability"] for r in rows])
    assert [r["decision"] for r in kept] == [r["churn"] for r in rows]
    assert {r["threshold"] for r in kept} == {WITH_IDS_THRESHOLD}
