"""Tests for pipeline/spans.py: span folders are found, checked and staged, and the pipeline's CsvExampleGen
ingests exactly one span per execution through TFX's own `{SPAN}` resolution."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from data import spans as data_spans
from pipeline import config as cfg
from pipeline import csv_examples, drift_gate, spans

LABEL, POSITIVE = "Target_Churn", "1"


@pytest.fixture(scope="module")
def span_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("months") / "spans"
    data_spans.write_spans(folder, 3, shift_at=2, rows=400, seed=5)
    return folder


@pytest.fixture(scope="module")
def staged(span_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> spans.StagedSpans:
    return spans.stage_spans(span_folder, tmp_path_factory.mktemp("staging"), LABEL, POSITIVE, "auto")


def test_find_spans_sorts_by_number_and_ignores_other_entries(tmp_path: Path) -> None:
    for n in (0, 1, 2, 9, 10, 3, 4, 5, 6, 7, 8):
        (tmp_path / f"span-{n}").mkdir()
        (tmp_path / f"span-{n}" / "m.csv").write_text("a\n1\n")
    (tmp_path / "span-11.partial").mkdir()
    (tmp_path / "spans.json").write_text("{}")
    assert list(spans.find_spans(tmp_path)) == list(range(11))
    assert spans.is_span_folder(tmp_path) and not spans.is_span_folder(tmp_path / "span-0" / "m.csv")


@pytest.mark.parametrize("layout, message", [
    ({}, "holds no span-<n> folder"),
    ({"span-0": True, "span-2": True, "span-4": True}, "span(s) 1, 3 missing"),
    ({"span-0": True, "span-1": False}, "holds no .csv file (span 1)"),
    ({"span-01": True}, "holds no span-<n> folder"),
])
def test_bad_span_folders_are_refused_with_what_is_wrong(tmp_path: Path, layout: dict[str, bool],
                                                         message: str) -> None:
    for name, with_csv in layout.items():
        (tmp_path / name).mkdir()
        if with_csv:
            (tmp_path / name / "m.csv").write_text("a\n1\n")
        else:
            (tmp_path / name / "notes.txt").write_text("no data")
    with pytest.raises(spans.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spans.find_spans(tmp_path)
    with pytest.raises(spans.InputError, match="not found"):
        spans.find_spans(tmp_path / "missing")


def test_staged_layout_has_one_link_per_span_with_the_span_s_rows(span_folder: Path,
                                                                  staged: spans.StagedSpans) -> None:
    assert sorted(p.name for p in staged.directory.iterdir()) == ["span-0", "span-1", "span-2"]
    assert staged.newest == 2 and staged.spans[0].id_keys == ("Customer_ID",)
    for number in range(3):
        (source,) = (span_folder / f"span-{number}").glob("*.csv")
        (copy,) = (staged.directory / f"span-{number}" / "version-0").glob("*.csv")  # no version folder: 0
        assert pd.read_csv(copy)["Customer_ID"].tolist() == pd.read_csv(source)["Customer_ID"].tolist()
        assert staged.spans[number].rows == 400


def test_restaging_reuses_the_layout_and_a_corrected_span_gets_a_new_one(tmp_path: Path, span_folder: Path) -> None:
    folder = tmp_path / "spans"
    data_spans.write_spans(folder, 2, shift_at=2, rows=400, seed=5)
    first = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    assert spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto").directory == first.directory
    (csv,) = (folder / "span-1").glob("*.csv")
    pd.read_csv(csv).iloc[:-1].to_csv(csv, index=False)  # span 1 corrected: one row fewer
    second = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    assert second.directory != first.directory and second.spans[1].rows == 399
    assert second.spans[0].directory == first.spans[0].directory


def test_a_span_with_other_columns_or_too_few_rows_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "spans"
    data_spans.write_spans(folder, 2, shift_at=2, rows=400, seed=5)
    (csv,) = (folder / "span-1").glob("*.csv")
    pd.read_csv(csv).drop(columns="Age").to_csv(csv, index=False)
    with pytest.raises(spans.InputError, match="every span must have the same columns"):
        spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    pd.read_csv(folder / "span-0" / "customers-2026-01.csv").iloc[:20].to_csv(csv, index=False)
    with pytest.raises(spans.InputError, match=r"^span 1: .*only 20 labelled rows"):
        spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")


def _ingest(staged: spans.StagedSpans, out: Path, range_config: range_config_pb2.RangeConfig | None,
            id_column: str | None) -> tuple[int, dict[str, set[int]]]:
    """TFX's ExampleGen driver step (span resolution) then the pipeline's executor: (span, ids per split)."""
    config = spans.input_config()
    _, span, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        str(staged.directory), config.splits, range_config)
    properties = {
        standard_component_specs.INPUT_BASE_KEY: str(staged.directory),
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(config),
        standard_component_specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(spans.output_config(id_column)),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    context = BaseBeamExecutor.Context(beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    csv_examples.Executor(context).Do({}, {"examples": [examples]}, properties)
    ids = {}
    for split in cfg.SPLIT_BUCKETS:
        files = [str(p) for p in sorted((out / f"Split-{split}").glob("*.gz"))]
        ids[split] = {tf.train.Example.FromString(r.numpy()).features.feature["Customer_ID"].int64_list.value[0]
                      for r in tf.data.TFRecordDataset(files, compression_type="GZIP")}
    return span, ids


def test_one_example_gen_run_ingests_exactly_the_chosen_span_split_by_customer_id(
        tmp_path: Path, span_folder: Path, staged: spans.StagedSpans) -> None:
    span, ids = _ingest(staged, tmp_path / "span-1", spans.range_config(1), "Customer_ID")
    assert span == 1
    expected = set(pd.read_csv(next((span_folder / "span-1").glob("*.csv")))["Customer_ID"])
    assert set().union(*ids.values()) == expected and sum(map(len, ids.values())) == len(expected)
    newest, newest_ids = _ingest(staged, tmp_path / "newest", None, "Customer_ID")  # no range: TFX takes the newest
    assert newest == 2
    for split, members in ids.items():  # a customer present in both months is in the same split in both
        for other in set(cfg.SPLIT_BUCKETS) - {split}:
            assert not members & newest_ids[other]


def test_span_example_gen_carries_the_span_range_and_the_id_split(staged: spans.StagedSpans) -> None:
    component = spans.span_example_gen(staged.directory, 2, "Customer_ID")
    properties = component.exec_properties
    assert properties[standard_component_specs.INPUT_BASE_KEY] == str(staged.directory)
    range_config = proto_utils.json_to_proto(properties[standard_component_specs.RANGE_CONFIG_KEY],
                                             range_config_pb2.RangeConfig())
    assert (range_config.static_range.start_span_number, range_config.static_range.end_span_number) == (2, 2)
    output = proto_utils.json_to_proto(properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
    assert output.split_config.partition_feature_name == "Customer_ID"
    assert [(s.name, s.hash_buckets) for s in output.split_config.splits] == list(cfg.SPLIT_BUCKETS.items())
    assert not spans.output_config().split_config.HasField("partition_feature_name")
    with pytest.raises(ValueError, match="span"):
        spans.range_config(-1)


@pytest.fixture(scope="module")
def gate_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, spans.StagedSpans]:
    """Three months of 2,000 customers: with the documented shift at the newest month, and without."""
    root = tmp_path_factory.mktemp("gate")
    staged = {}
    for name, shift_at in (("shift", 2), ("stationary", 3)):
        data_spans.write_spans(root / name, 3, shift_at=shift_at, rows=2_000, seed=8)
        staged[name] = spans.stage_spans(root / name, root / "staging", LABEL, POSITIVE, "auto")
    return staged


@pytest.mark.parametrize("schema", [cfg.CURATED_SCHEMA, None])
def test_drift_gate_names_the_shifted_feature_and_stops_only_when_asked(
        gate_folders: dict[str, spans.StagedSpans], schema: Path | None) -> None:
    warn = spans.span_drift_gate(gate_folders["shift"], schema=schema)
    assert warn.on_drift == drift_gate.ON_DRIFT_WARN == drift_gate.DEFAULT_ON_DRIFT and not warn.stop
    assert warn.verdict is not None
    assert [d.feature for d in warn.verdict.drifted] == list(data_spans.SHIFTED_FEATURES)
    summary = warn.summary()
    assert (summary["current_span"], summary["previous_span"], summary["stopped"]) == (2, 1, False)
    (entry,) = summary["drifted"]
    assert entry["feature"] == "Email_Opt_In" and entry["measure"] == drift_gate.L_INFINITY
    assert entry["distance"] > drift_gate.CATEGORICAL_THRESHOLD
    assert spans.span_drift_gate(gate_folders["shift"], drift_gate.ON_DRIFT_STOP, schema).stop


def test_drift_gate_lets_stationary_months_through_and_skips_a_single_span(
        gate_folders: dict[str, spans.StagedSpans]) -> None:
    stationary = spans.span_drift_gate(gate_folders["stationary"], drift_gate.ON_DRIFT_STOP)
    assert stationary.verdict is not None and stationary.verdict.distances and not stationary.verdict.drifted
    assert not stationary.stop and stationary.summary()["drifted"] == []
    only_first = spans.StagedSpans(gate_folders["shift"].directory, {0: gate_folders["shift"].spans[0]})
    single = spans.span_drift_gate(only_first, drift_gate.ON_DRIFT_STOP)
    assert single.verdict is None and not single.stop and single.summary()["compared"] is False
    with pytest.raises(drift_gate.DriftGateError, match="--on-drift must be one of stop, warn"):
        spans.span_drift_gate(gate_folders["shift"], "halt")


def test_ingested_spans_come_from_ml_metadata_and_the_rest_are_backfilled(
        tmp_path: Path, staged: spans.StagedSpans) -> None:
    """A real CsvExampleGen run (LocalDagRunner) ingests span 1; ML Metadata then says so, for this layout only."""
    store = tmp_path / "metadata.sqlite"
    assert spans.ingested_spans(store, staged.directory) == set()
    assert spans.spans_to_ingest(staged.spans, set()) == [0, 1, 2]  # first run: a backfill of every span
    LocalDagRunner().run(tfx_pipeline.Pipeline(
        pipeline_name="spans-test", pipeline_root=str(tmp_path / "tfx"),
        components=[spans.span_example_gen(staged.directory, 1, "Customer_ID")],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(store))))
    ingested = spans.ingested_spans(store, staged.directory)
    assert ingested == {1}
    assert spans.spans_to_ingest(staged.spans, ingested) == [0, 2]
    assert spans.ingested_spans(store, staged.directory.with_name("spans-other")) == set()


def test_training_window_is_the_n_labelled_spans_before_the_newest_which_is_evaluated() -> None:
    window = spans.training_window(range(12), 3)
    assert window == spans.Window(train=(8, 9, 10), evaluate=11)
    assert window.evaluate not in window.train and max(window.train) < window.evaluate  # out of time
    assert spans.training_window([4, 2, 3], 2) == spans.Window((2, 3), 4)
    with pytest.raises(ValueError, match=r"needs 4 labelled spans .* found 3: 0, 1, 2"):
        spans.training_window([0, 1, 2], 3)
    with pytest.raises(ValueError, match="missing: 9"):
        spans.training_window([7, 8, 10, 11], 3)
    with pytest.raises(ValueError, match="window must be >= 1"):
        spans.training_window([0, 1], 0)


def test_command_stops_on_drift_before_ingesting_and_otherwise_backfills_every_span_once(
        tmp_path: Path, gate_folders: dict[str, spans.StagedSpans], capsys: pytest.CaptureFixture[str]) -> None:
    data = gate_folders["shift"].directory  # a span folder (links to staged copies) with the shift at span 2
    output = tmp_path / "run"
    assert spans.main(["--data", str(data), "--output", str(output), "--on-drift", "stop"]) == 3
    out = capsys.readouterr().out
    assert "drift: Email_Opt_In: L_INFTY" in out and "nothing ingested" in out
    summary = json.loads((output / spans.SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["ingested"] == [] and summary["drift"]["stopped"] is True
    assert summary["drift"]["drifted"][0]["feature"] == "Email_Opt_In"
    config = cfg.PipelineConfig(output=output.resolve())
    assert not config.metadata_path.exists()

    def ingested(summary: dict) -> set[int]:  # per span, on its own layout
        return {int(n) for n, layout in summary["layouts"].items()
                if int(n) in spans.ingested_spans(config.metadata_path, Path(layout))}

    assert spans.main(["--data", str(data), "--output", str(output)]) == 0  # warn (default): backfill all
    assert "ingested: 0, 1, 2 (already ingested: none)" in capsys.readouterr().out
    summary = json.loads((output / spans.SUMMARY_FILE).read_text(encoding="utf-8"))
    assert ingested(summary) == {0, 1, 2} and summary["versions"] == {"0": 0, "1": 0, "2": 0}
    assert spans.main(["--data", str(data), "--output", str(output)]) == 0
    assert "ingested: nothing new (already ingested: 0, 1, 2)" in capsys.readouterr().out


def test_command_ingests_a_corrected_span_again_and_only_that_span(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, output = tmp_path / "spans", tmp_path / "run"
    data_spans.write_spans(folder, 2, shift_at=2, rows=drift_gate.MIN_ROWS, seed=4)
    assert spans.main(["--data", str(folder), "--output", str(output)]) == 0
    assert "ingested: 0, 1 (already ingested: none)" in capsys.readouterr().out
    (csv,) = (folder / "span-0").glob("*.csv")
    (folder / "span-0" / "version-1").mkdir()
    pd.read_csv(csv).to_csv(folder / "span-0" / "version-1" / csv.name, index=False, float_format="%.3f")
    assert spans.main(["--data", str(folder), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "corrected spans: span 0 version 1 (span-0/version-1)" in out
    assert "ingested: 0 (already ingested: 1)" in out
    summary = json.loads((output / spans.SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["versions"] == {"0": 1, "1": 0} and summary["ingested"] == [0]


def test_command_refuses_a_bad_span_folder_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "span-0").mkdir()
    (tmp_path / "span-2").mkdir()
    assert spans.main(["--data", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "span(s) 1 missing" in err and "Traceback" not in err


def test_command_refuses_an_output_folder_another_run_is_using(
        tmp_path: Path, gate_folders: dict[str, spans.StagedSpans], capsys: pytest.CaptureFixture[str]) -> None:
    import fcntl

    config = cfg.PipelineConfig(output=tmp_path.resolve())
    with config.lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert spans.main(["--data", str(gate_folders["shift"].directory), "--output", str(tmp_path)]) == 2
    assert "another run is using" in capsys.readouterr().err
    assert not (tmp_path / spans.SUMMARY_FILE).exists()


def test_each_span_gets_its_own_layout_which_a_corrected_span_changes(tmp_path: Path) -> None:
    folder = tmp_path / "spans"
    data_spans.write_spans(folder, 3, shift_at=3, rows=400, seed=5)
    staged = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    layouts = {n: spans.span_layout(staged, n) for n in staged.spans}
    for n, layout in layouts.items():
        assert [p.name for p in layout.iterdir()] == [f"span-{n}"]
        assert len(pd.read_csv(next((layout / f"span-{n}" / "version-0").glob("*.csv")))) == 400
    frame = pd.read_csv(next((folder / "span-2").glob("*.csv")))
    frame.loc[0, "Age"] = 99  # a corrected span 2
    frame.to_csv(next((folder / "span-2").glob("*.csv")), index=False)
    restaged = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    assert spans.span_layout(restaged, 1) == layouts[1]  # unchanged span: same input_base, TFX's cache applies
    assert spans.span_layout(restaged, 2) != layouts[2]  # corrected: ingested again


def test_window_inputs_train_on_the_spans_before_the_newest_split_by_customer_id(staged: spans.StagedSpans) -> None:
    inputs = spans.window_inputs(staged, 2)
    assert inputs.window == spans.Window((0, 1), 2)
    assert sorted(inputs.layouts) == [0, 1, 2]
    assert inputs.id_column == "Customer_ID"
    evaluate, train = spans.window_example_gens(inputs)
    assert evaluate.id == spans.EVAL_EXAMPLE_GEN_ID == spans.example_gen_id(inputs.window, 2)
    assert [g.id for g in train] == [spans.example_gen_id(inputs.window, n) for n in (0, 1)]
    assert [g.id for g in train] == ["CsvExampleGen_span_0", "CsvExampleGen_span_1"]
    for gen, span in ((evaluate, 2), (train[0], 0), (train[1], 1)):
        range_config = proto_utils.json_to_proto(gen.exec_properties[standard_component_specs.RANGE_CONFIG_KEY],
                                                 range_config_pb2.RangeConfig())
        assert range_config.static_range.start_span_number == range_config.static_range.end_span_number == span
        assert gen.exec_properties[standard_component_specs.INPUT_BASE_KEY] == str(inputs.layouts[span])
    with pytest.raises(ValueError, match="--window 3 needs 4 labelled spans"):
        spans.window_inputs(staged, 3)


def test_prepare_run_reads_the_month_gates_the_newest_span_and_refuses_a_window_too_long(
        gate_folders: dict[str, spans.StagedSpans]) -> None:
    staged = gate_folders["shift"]
    folder = staged.directory.parent.parent / "shift"
    run = spans.prepare_run(staged, folder, 1, drift_gate.ON_DRIFT_WARN, cfg.CURATED_SCHEMA)
    assert run.month == json.loads((folder / spans.MANIFEST).read_text())["spans"][2]["date"] == "2026-03"
    assert (run.gate.current_span, run.gate.previous_span, run.gate.stop) == (2, 1, False)
    summary = run.summary(cached=["CsvExampleGen_span_1"])
    assert (summary["train_spans"], summary["eval_span"], summary["ingested"], summary["reused"]) == ([1], 2, [2], [1])
    assert [d["feature"] for d in summary["drift"]["drifted"]] == ["Email_Opt_In"]
    assert "ingested" not in run.summary()
    assert "evaluate out of time on 2 (2026-03)" in spans.describe_run(run)
    assert "drift: Email_Opt_In: L_INFTY" in spans.describe_run(run)
    assert spans.prepare_run(staged, folder, 1, drift_gate.ON_DRIFT_STOP, cfg.CURATED_SCHEMA).gate.stop
    with pytest.raises(spans.InputError, match="--window 3 needs 4 labelled spans"):
        spans.prepare_run(staged, folder, 3, drift_gate.ON_DRIFT_WARN, cfg.CURATED_SCHEMA)
    assert spans.span_month(folder.parent, 0) is None  # no spans.json: no month


def _csv(folder: Path, name: str = "m.csv") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("a\n1\n")


def test_the_newest_version_folder_of_a_span_is_the_one_read(tmp_path: Path) -> None:
    _csv(tmp_path / "span-0")  # no version folder: version 0, as before
    _csv(tmp_path / "span-1")
    for version in (1, 2, 10):  # a corrected span 1: version 10 beats 2 (a number, not text)
        _csv(tmp_path / "span-1" / f"version-{version}")
    (tmp_path / "span-1" / "version-x").mkdir()  # not a version folder: ignored
    _csv(tmp_path / "span-2" / "version-3")  # only a version folder
    sources = spans.find_span_sources(tmp_path)
    assert {n: s.version for n, s in sources.items()} == {0: 0, 1: 10, 2: 3}
    assert sources[0].folder == tmp_path / "span-0" and sources[1].folder == tmp_path / "span-1" / "version-10"
    assert spans.find_spans(tmp_path)[2] == tmp_path / "span-2" / "version-3"


@pytest.mark.parametrize("layout, message", [
    (["span-0/m.csv", "span-0/version-0/m.csv"], "holds .csv files and a version-0 folder (span 0)"),
    (["span-0/m.csv", "span-0/version-2/"], "version-2 holds no .csv file (span 0, version 2"),
    (["span-0/version-1/"], "version-1 holds no .csv file (span 0, version 1"),
])
def test_unreadable_span_versions_are_refused_with_what_is_wrong(tmp_path: Path, layout: list[str],
                                                                 message: str) -> None:
    for entry in layout:
        if entry.endswith("/"):
            (tmp_path / entry).mkdir(parents=True)
        else:
            _csv((tmp_path / entry).parent, Path(entry).name)
    with pytest.raises(spans.InputError, match=re.escape(message)):
        spans.find_span_sources(tmp_path)


def test_tfx_resolves_the_staged_layout_s_version_as_the_highest_one(tmp_path: Path) -> None:
    """SPAN_PATTERN with TFX's own resolution (the ExampleGen driver's step): the highest version of the
    requested span wins, and a span without a version is not matched (staging always writes one)."""
    for relative in ("span-1/version-0", "span-1/version-2", "span-1/version-11", "span-2/version-0"):
        _csv(tmp_path / relative)
    config = spans.input_config()
    _, span, version = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        str(tmp_path), config.splits, spans.range_config(1))
    assert (span, version) == (1, 11) and config.splits[0].pattern == "span-1/version-11/*"
    _csv(tmp_path / "span-3")  # CSV files directly in span-3/: TFX's {VERSION} finds nothing there
    with pytest.raises(ValueError, match="Cannot find matching"):
        example_gen_utils.calculate_splits_fingerprint_span_and_version(
            str(tmp_path), spans.input_config().splits, spans.range_config(3))


def _examples_of_newest_run(store_path: Path) -> tuple[metadata_store_pb2.Artifact, bool]:
    """The Examples artifact of the newest CsvExampleGen execution in a store, and whether it was cached."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(store_path)
    store = metadata_store.MetadataStore(connection)
    execution = max(store.get_executions_by_type("pipeline.csv_examples.CsvExampleGen"), key=lambda e: e.id)
    (event,) = [e for e in store.get_events_by_execution_ids([execution.id])
                if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.INTERNAL_OUTPUT)]
    (artifact,) = store.get_artifacts_by_id([event.artifact_id])
    return artifact, execution.last_known_state == metadata_store_pb2.Execution.CACHED


def test_a_corrected_span_is_ingested_again_by_a_real_example_gen_and_replaces_the_old_rows(tmp_path: Path) -> None:
    """Span 1 is ingested, then corrected in span-1/version-1/ (other labels, one row fewer): the next run's
    CsvExampleGen (LocalDagRunner, TFX's cache on) ingests version 1, records span 1 version 1 in ML
    Metadata, and its examples are the corrected rows only; span 0 stays served from the cache."""
    folder = tmp_path / "spans"
    data_spans.write_spans(folder, 2, shift_at=2, rows=400, seed=5)
    store = tmp_path / "metadata.sqlite"

    def run(span: int) -> tuple[spans.StagedSpans, metadata_store_pb2.Artifact, bool]:
        staged = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
        LocalDagRunner().run(tfx_pipeline.Pipeline(
            pipeline_name="spans-version-test", pipeline_root=str(tmp_path / "tfx"), enable_cache=True,
            components=[spans.span_example_gen(spans.span_layout(staged, span), span, "Customer_ID")],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(store))))
        return (staged, *_examples_of_newest_run(store))

    assert not run(0)[2]
    first, original, _ = run(1)
    assert first.version(1) == 0 and original.custom_properties["version"].int_value == 0
    (csv,) = (folder / "span-1").glob("*.csv")
    corrected = pd.read_csv(csv).iloc[1:]
    corrected["Target_Churn"] = 1 - corrected["Target_Churn"]  # every label corrected: easy to tell apart
    (folder / "span-1" / "version-1").mkdir()
    corrected.to_csv(folder / "span-1" / "version-1" / csv.name, index=False)

    second, examples, cached = run(1)
    assert second.version(1) == 1 and not cached
    assert (examples.custom_properties["span"].int_value, examples.custom_properties["version"].int_value) == (1, 1)
    labels = {}
    for split in cfg.SPLIT_BUCKETS:
        files = [str(p) for p in sorted(Path(examples.uri, f"Split-{split}").glob("*.gz"))]
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            labels[feature["Customer_ID"].int64_list.value[0]] = feature["Target_Churn"].int64_list.value[0]
    assert labels == dict(zip(corrected["Customer_ID"], corrected["Target_Churn"], strict=True))  # old rows gone
    _, span_0, span_0_cached = run(0)
    assert span_0_cached and span_0.custom_properties["version"].int_value == 0


def test_the_run_summary_and_log_name_each_span_s_version(tmp_path: Path) -> None:
    folder = tmp_path / "spans"
    rows = drift_gate.MIN_ROWS + 10  # the drift gate compares spans of at least MIN_ROWS rows
    data_spans.write_spans(folder, 3, shift_at=3, rows=rows, seed=5)
    (csv,) = (folder / "span-2").glob("*.csv")
    (folder / "span-2" / "version-2").mkdir()
    pd.read_csv(csv).iloc[:-3].to_csv(folder / "span-2" / "version-2" / csv.name, index=False)
    staged = spans.stage_spans(folder, tmp_path / "staging", LABEL, POSITIVE, "auto")
    assert staged.spans[2].rows == rows - 3 and staged.version(2) == 2
    run = spans.prepare_run(staged, folder, 2, drift_gate.ON_DRIFT_WARN, cfg.CURATED_SCHEMA)
    assert run.summary()["versions"] == {"0": 0, "1": 0, "2": 2}
    assert ("corrected spans: span 2 version 2 (span-2/version-2); their earlier versions are not read"
            in spans.describe_run(run))
    assert (spans.span_layout(staged, 2) / "span-2" / "version-2").is_dir()
    assert "corrected spans" not in spans.describe_versions(staged, [0, 1])


def test_months_map_to_spans_and_a_static_window_reads_one_uri_span_by_span() -> None:
    assert spans.month_span("2026-01", "2026-07") == 6 and spans.month_span("2025-11", "2026-02") == 3
    assert spans.add_months("2026-11", 2) == "2027-01" and spans.add_months("2026-03", -3) == "2025-12"
    for first, month, message in (("2026-1", "2026-05", "first month must be YYYY-MM"),
                                  ("2026-01", "2026-00", "month must be YYYY-MM"),
                                  ("2026-05", "2026-01", "before span 0's month 2026-05")):
        with pytest.raises(ValueError, match=message):
            spans.month_span(first, month)
    inputs = spans.static_window_inputs("gs://bucket/spans", 6, 3, "Customer_ID")
    assert inputs.window == spans.Window((3, 4, 5), 6) and set(inputs.layouts.values()) == {"gs://bucket/spans"}
    evaluate, train = spans.window_example_gens(inputs)
    assert evaluate.exec_properties[standard_component_specs.INPUT_BASE_KEY] == "gs://bucket/spans"
    assert [g.id for g in train] == ["CsvExampleGen_span_3", "CsvExampleGen_span_4", "CsvExampleGen_span_5"]
    with pytest.raises(ValueError, match="--window 3 needs 4 labelled spans"):
        spans.static_window_inputs("gs://bucket/spans", 2, 3, None)
