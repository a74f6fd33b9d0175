"""`local_pipeline.py --data <span folder> --window N --on-drift stop|warn`, end to end on generated months.

The windowed runs are the shared simulation's (`simulated_months`, tests/e2e/conftest.py: 7 months, the shift
at 3, window 2), which ran local_pipeline.py once per month on its growing span folder (`<sim>/spans`), one
output folder for all (`<sim>/pipeline`), and kept each run's summary and output in `<sim>/logs`. The first run
(judged on month 1) ingests its window (the backfill); the run judged on month 3, where data/spans.py's shift
starts (Email_Opt_In's mix changes), trains on 1, 2 and reuses span 1's ingestion; the last run (judged on month 6)
is the newest in ML Metadata. One more run, `--on-drift stop` on months 0..3, stops before anything is ingested.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from common import exit_codes
from data import spans as data_spans
from modules import features
from pipeline import config as cfg
from pipeline import spans
from pipeline.mlmd import read_only_store
from simulation import simulate
from tests.e2e.conftest import SIMULATION, SIMULATION_TIMEOUT_S
from tests.helpers import run_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SIMULATION_TIMEOUT_S)]  # the shared simulation runs in setup

SHIFT_AT = SIMULATION["shift_at"]
LAST = SIMULATION["months"] - 1


def _run(sim: tuple[Path, subprocess.CompletedProcess[str], dict], month: int) -> tuple[dict[str, Any], str]:
    """The summary and printed output of the simulation's pipeline run judged on `month`."""
    out, proc, _ = sim
    assert proc.returncode == exit_codes.OK, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = out / simulate.LOG_DIR
    summary = json.loads((logs / simulate.RUN_SUMMARY.format(month=month)).read_text())
    return summary, (logs / simulate.PIPELINE_LOG.format(month=month)).read_text()


@pytest.fixture(scope="module")
def stopped(simulated_months: tuple[Path, subprocess.CompletedProcess[str], dict],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """`--on-drift stop` on months 0..SHIFT_AT (the newest span drifted) into a fresh output folder."""
    tmp = tmp_path_factory.mktemp("span_stop")
    generated = simulated_months[0] / simulate.GENERATED_DIR
    folder = tmp / "spans"
    for month in range(SHIFT_AT + 1):
        shutil.copytree(data_spans.span_dir(generated, month), data_spans.span_dir(folder, month))
    shutil.copyfile(generated / data_spans.MANIFEST, folder / data_spans.MANIFEST)
    proc, summary = run_pipeline(tmp, "--data", str(folder), "--on-drift", "stop",
                                 "--window", str(SIMULATION["window"]))
    return tmp, proc, summary


def _store(output: Path) -> metadata_store.MetadataStore:
    return read_only_store(output / cfg.METADATA_FILE)


def _inputs_of_newest_run(store: metadata_store.MetadataStore,
                          node: str) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """Input key -> artifacts of `node`'s execution in the newest pipeline run (cached or not)."""
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    node_context = store.get_context_by_type_and_name("node", f"{cfg.PIPELINE_NAME}.{node}")
    in_run = {e.id for e in store.get_executions_by_context(run.id)}
    executions = [e for e in store.get_executions_by_context(node_context.id) if e.id in in_run]
    assert len(executions) == 1, f"{node}: {len(executions)} executions in the newest run"
    events = [e for e in store.get_events_by_execution_ids([executions[0].id])
              if e.type == metadata_store_pb2.Event.INPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    result: dict[str, list[metadata_store_pb2.Artifact]] = {}
    for event in events:
        result.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
    return result


def _span(artifact: metadata_store_pb2.Artifact) -> int:
    """The span ExampleGen recorded on an Examples artifact (TFX writes it as a custom property)."""
    return int(artifact.custom_properties["span"].int_value)


def _customer_ids(examples_uri: str, split: str) -> set[int]:
    ids: set[int] = set()
    for path in sorted(Path(examples_uri, f"Split-{split}").glob("*.gz")):
        for record in tf.data.TFRecordDataset(str(path), compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            ids.update(example.features.feature["Customer_ID"].int64_list.value)
    return ids


def _csv_ids(folder: Path, span: int) -> set[int]:
    import pandas as pd

    return set(pd.read_csv(next((folder / f"span-{span}").glob("*.csv")))["Customer_ID"])


def test_first_run_ingests_its_window_and_evaluates_out_of_time(simulated_months: tuple) -> None:
    summary, _ = _run(simulated_months, 1)  # the first run: months 0 and 1 labelled (bootstrap window 1)
    assert summary["spans"]["train_spans"] == [0]
    assert summary["spans"]["eval_span"] == 1
    assert summary["spans"]["month"] == "2026-02"
    assert summary["spans"]["ingested"] == [0, 1]  # the backfill: one ExampleGen run per span
    assert summary["spans"]["reused"] == []
    assert summary["spans"]["drift"]["compared"] and summary["spans"]["drift"]["drifted"] == []
    assert summary["status"] == "pushed"


def test_a_later_month_reuses_ingested_spans_flags_drift_and_judges_against_the_served_model(
        simulated_months: tuple) -> None:
    summary, output = _run(simulated_months, SHIFT_AT)  # blessed only if it beats the served model
    assert summary["exit_code"] in (exit_codes.OK, exit_codes.NOT_BLESSED)
    window = summary["spans"]
    assert (window["train_spans"], window["eval_span"], window["month"]) == ([1, 2], 3, "2026-04")
    assert window["reused"] == [1]  # span 1's ExampleGen execution of the run judged on month 2, from TFX's cache
    assert window["ingested"] == [2, 3]
    drifted = {d["feature"]: d for d in window["drift"]["drifted"]}
    assert set(drifted) == set(data_spans.SHIFTED_FEATURES), drifted
    assert drifted["Email_Opt_In"]["distance"] > drifted["Email_Opt_In"]["threshold"]
    assert "drift: Email_Opt_In: L_INFTY" in output
    # The candidate and the served model, both scored on span 3's eval customers.
    assert summary["metrics"]["baseline"] is not None and summary["metrics"]["baseline"]["auc"] is not None
    assert summary["metrics"]["overall"]["auc"] is not None
    assert "baseline (last blessed)" in output  # the printed summary shows both AUCs


def test_no_model_reads_a_row_or_label_of_a_later_month(simulated_months: tuple) -> None:
    """The last run's model: Transform and the Trainer read its two window spans only; the last span (labels
    the newest) reaches only the Evaluator, and its eval customers are never in a training split."""
    _run(simulated_months, LAST)
    out = simulated_months[0] / simulate.PIPELINE_DIR
    store = _store(out)
    transform = _inputs_of_newest_run(store, "Transform")["examples"]
    assert sorted(_span(a) for a in transform) == [LAST - 2, LAST - 1]
    trainer = _inputs_of_newest_run(store, "Trainer")["examples"]  # Transform's rows of the two spans, one each
    assert len(trainer) == 2 and all(Path(a.uri).is_relative_to(out / "tfx" / "Transform") for a in trainer)
    evaluator = _inputs_of_newest_run(store, "Evaluator")["examples"]
    assert [_span(a) for a in evaluator] == [LAST]
    trained_on = set().union(*(_customer_ids(a.uri, s) for a in transform
                               for s in (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT)))
    folder = simulated_months[0] / simulate.SPANS_DIR
    month_ids = {n: _csv_ids(folder, n) for n in range(LAST + 1)}
    assert trained_on <= month_ids[LAST - 2] | month_ids[LAST - 1]
    assert not trained_on & (month_ids[LAST] - month_ids[LAST - 1])  # the last month's new customers
    evaluated = _customer_ids(evaluator[0].uri, cfg.EVAL_SPLIT)
    assert evaluated and not evaluated & trained_on  # split by customer id: out of time and out of sample


def test_on_drift_stop_exits_3_with_nothing_ingested_or_trained(stopped: tuple) -> None:
    tmp, proc, summary = stopped
    assert proc.returncode == exit_codes.DATA_VALIDATION, proc.stderr[-3000:]
    assert summary["status"] == "stopped_by_drift"
    assert [d["feature"] for d in summary["spans"]["drift"]["drifted"]] == ["Email_Opt_In"]
    assert summary["spans"]["drift"]["stopped"] is True
    assert "Email_Opt_In" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp / "out" / "metadata.sqlite").exists()
    assert not (tmp / "serving").exists()


def test_a_window_the_folder_cannot_fill_is_a_usage_error(simulated_months: tuple, tmp_path: Path) -> None:
    folder = simulated_months[0] / simulate.SPANS_DIR
    proc, _ = run_pipeline(tmp_path, "--data", str(folder), "--window", str(LAST + 1))
    assert proc.returncode == exit_codes.USAGE
    assert f"--window {LAST + 1} needs {LAST + 2} labelled spans" in proc.stderr and "Traceback" not in proc.stderr


def _producer_input_base(store: metadata_store.MetadataStore, artifact: metadata_store_pb2.Artifact) -> Path:
    """The input_base of the ExampleGen execution that wrote `artifact` (the staged layout it read; a cached
    execution that reused the artifact records the same one)."""
    producers = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                 if e.type == metadata_store_pb2.Event.OUTPUT]
    (input_base,) = {e.custom_properties[spans.INPUT_BASE_PROPERTY].string_value
                     for e in store.get_executions_by_id(producers)}
    return Path(input_base)


def _examples(uri: str, splits: tuple[str, ...]) -> list[dict[str, object]]:
    """Every tf.Example of `splits` under an Examples artifact's uri, as feature -> its one value."""
    rows = []
    for split in splits:
        files = [str(p) for p in sorted(Path(uri, f"Split-{split}").glob("*.gz"))]
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            row: dict[str, object] = {}
            for name, feature in tf.train.Example.FromString(record.numpy()).features.feature.items():
                kind = feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value)
                row[name] = values[0].decode() if kind == "bytes_list" else values[0]
            rows.append(row)
    return rows


def _same_value(example_value: object, staged_value: object) -> bool:
    if isinstance(example_value, float):
        return bool(np.isclose(example_value, float(staged_value), rtol=1e-6))  # float32 in the example
    if isinstance(example_value, int):
        return example_value == int(staged_value)
    return example_value == str(staged_value)


def test_the_model_of_a_month_reads_no_row_or_label_that_did_not_exist_yet(simulated_months: tuple) -> None:
    """No leak, proved on the simulation's newest run (judged on its last month) from its ML Metadata and its
    real staged inputs.

    The run's month m is its evaluation span's (summary `month`). Span s's rows exist from the end of month
    s, its labels (churn during month s+1) from the end of month s+1. So what the model learns from
    (Transform's analysis and the Trainer's train/validation rows) may hold only rows and labels that
    existed at the end of month m: the N newest spans labelled by then. Month m's own labels (revealed once
    m+1 has passed, when the run happens) only judge the model. Every example Transform read is checked,
    value by value, against the staged row of its span, and the Trainer's rows are Transform's output of
    exactly those examples.
    """
    summary = _run(simulated_months, LAST)[0]["spans"]
    folder = simulated_months[0] / simulate.SPANS_DIR
    manifest = json.loads((folder / data_spans.MANIFEST).read_text(encoding="utf-8"))
    run_month = summary["month"]

    def labels_exist_from(span: int) -> str:
        return data_spans.month_date(manifest["start"], span + 1)

    evaluated_span = next(e["span"] for e in manifest["spans"] if e["date"] == run_month)
    labelled_by_m = [e["span"] for e in manifest["spans"] if labels_exist_from(e["span"]) <= run_month]
    window_size = SIMULATION["window"]
    window = spans.training_window([*labelled_by_m, evaluated_span], window_size)  # resolved for month m
    assert window.evaluate == evaluated_span == summary["eval_span"] == LAST
    assert list(window.train) == labelled_by_m[-window_size:] == summary["train_spans"] == [LAST - 2, LAST - 1]

    store = _store(simulated_months[0] / simulate.PIPELINE_DIR)
    transform = _inputs_of_newest_run(store, "Transform")["examples"]
    assert sorted(_span(a) for a in transform) == list(window.train)
    label = cfg.PipelineConfig().label_key
    read_rows: dict[str, int] = {}
    for artifact in transform:
        span = _span(artifact)
        assert labels_exist_from(span) <= run_month  # the labels it holds existed at the end of month m
        version = int(artifact.custom_properties["version"].int_value)
        assert version == summary["versions"][str(span)] == 0
        staged_dir = _producer_input_base(store, artifact) / f"span-{span}" / f"version-{version}"
        staged = pd.concat([pd.read_csv(f) for f in sorted(staged_dir.glob("*.csv"))]).set_index("Customer_ID")
        examples = _examples(artifact.uri, (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT))
        assert examples
        for example in examples:
            row = staged.loc[int(example["Customer_ID"])]  # KeyError: a customer not in span `span`
            assert set(example) == {"Customer_ID", *staged.columns}
            mismatched = [c for c in staged.columns if not _same_value(example[c], row[c])]
            assert not mismatched, (span, example["Customer_ID"], mismatched)  # the row and label of span `span`
        read_rows[artifact.uri] = len(examples)

    # The Trainer learns from Transform's rows of those examples only: one transformed artifact per input,
    # as many rows, made by this run's Transform.
    trainer = _inputs_of_newest_run(store, "Trainer")["examples"]
    transformed = sorted(len(_examples(a.uri, (cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT))) for a in trainer)
    assert transformed == sorted(read_rows.values())
    assert all(features.transformed_name(label) in _examples(a.uri, (cfg.TRAIN_SPLIT,))[0] for a in trainer)
    # Every span any ExampleGen of the run ingested (or reused from its cache) existed at the end of month
    # m; only the evaluation span's examples (labels revealed when month m+1 passed) reach the judging
    # components.
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    outputs = store.get_events_by_execution_ids([e.id for e in store.get_executions_by_context(run.id)])
    examples = [a for a in store.get_artifacts_by_id([e.artifact_id for e in outputs
                                                      if e.type == metadata_store_pb2.Event.OUTPUT])
                if a.type_id == store.get_artifact_type("Examples").id and "span" in a.custom_properties]
    assert sorted(_span(a) for a in examples) == [*window.train, window.evaluate]
    evaluated = [_span(a) for a in _inputs_of_newest_run(store, "Evaluator")["examples"]]
    assert evaluated == [window.evaluate] and data_spans.month_date(manifest["start"], window.evaluate) == run_month
