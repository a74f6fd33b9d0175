"""A folder of monthly spans as pipeline input: find the spans, stage them, and ingest one span per ExampleGen run.

A span folder holds `span-<n>/` sub-folders (n = 0, 1, 2, ...: the month index, as data/generate.py
`--months` writes them), each with one or more CSV files of one header. Staging cleans every span with the
pipeline's reader (pipeline/inputs.py, the rules of docs/data.md) and lays the staged copies out as
`<staging_root>/spans-<hash>/span-<n>/` (links to the content-addressed staged copies), so TFX's
CsvExampleGen reads them with the input pattern `span-{SPAN}/*` and a static range of one span
(`range_config`; TFX 1.16: one ExampleGen execution ingests one span, and ExampleGen's range config takes a
static range only). Splits can hash the customer id (`output_config(id_column=...)`) instead of the whole
row, so a customer is in the same split every month.

`span_drift_gate` is the drift gate on a staged span folder: the newest span's TFDV statistics against the
previous span's (pipeline/drift_gate.py), with the `--on-drift stop|warn` decision.

`training_window` picks `--window N`'s spans: N to train on, the newest labelled one to evaluate on.
`ingested_spans` reads from ML Metadata which spans of a layout CsvExampleGen has already ingested
(`ingested_span_layouts`: each span on its own layout, so a corrected span alone is ingested again), and
`spans_to_ingest` lists the missing ones, oldest first: one ExampleGen run each (a backfill on the first run).

`python -m pipeline.spans --data SPAN_FOLDER [--output DIR] [--on-drift warn|stop]` runs these steps on their own:
stage the spans, run the drift gate on the newest span (with `stop` and a drifted feature: exit 3, nothing
ingested), then ingest every span not ingested yet, one CsvExampleGen run each (LocalDagRunner, split by the
customer id), and write `<output>/spans_summary.json`. Exit codes: 0 done, 2 bad usage or input, 3 stopped
by drift.

`local_pipeline.py --data <span folder> --window N --on-drift stop|warn` (pipeline/cli.py) uses `prepare_run`
(the window, the gate, the run's month) and `window_example_gens` (pipeline/pipeline.py): one ExampleGen per
span of the window, each reading its own `span_layout`, so a span's ExampleGen execution is served from TFX's
cache as long as that span does not change (docs/pipeline.md, "Monthly spans").

A corrected span is a `span-<n>/version-<v>/` folder (inputs.newest_version: the highest version wins, TFX's
`{VERSION}` rule); staging reads only that version and lays it out as `span-<n>/version-<v>/`, CsvExampleGen's
SPAN_PATTERN lets TFX resolve and record span and version, and the span's new layout makes its ExampleGen
ingest it again (docs/data.md, "Correcting a span"). For Kubeflow V2 / Vertex AI, which compile none of TFX's
span resolvers, `month_span` and `static_window_inputs` fix the window's static ranges when the spec is
compiled (pipeline/kubeflow_v2.py `--window --month --first-month`).

Not done yet (issue 16): nothing of this module's part; the simulated year (`make simulate`) is its own module.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import pandas as pd
import tensorflow_data_validation as tfdv
from ml_metadata.errors import NotFoundError
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.proto import example_gen_pb2, range_config_pb2

from common import exit_codes
from pipeline import config as cfg
from pipeline import drift_gate, inputs
from pipeline.config import DEFAULT_WINDOW as DEFAULT_WINDOW
from pipeline.config import SPAN_DIR_PREFIX, VERSION_DIR_PREFIX
from pipeline.csv_examples import CsvExampleGen
from pipeline.mlmd import read_only_store

SPAN_PATTERN = SPAN_DIR_PREFIX + "{SPAN}/" + VERSION_DIR_PREFIX + "{VERSION}/*"
"""CsvExampleGen's input pattern under the staged layout: TFX replaces {SPAN} with the span number and
{VERSION} with that span's highest version, and records both on the Examples artifact."""
LAYOUT_PREFIX = "spans-"

InputError = inputs.InputError
is_span_folder = inputs.is_span_folder
find_spans = inputs.find_spans
find_span_sources = inputs.find_span_sources


@dataclasses.dataclass(frozen=True)
class StagedSpans:
    """The staged layout (`directory`: CsvExampleGen's input_base) and each span's staged data."""

    directory: Path
    spans: dict[int, inputs.StagedData]
    versions: dict[int, int] = dataclasses.field(default_factory=dict)
    """Span -> the version staged (inputs.newest_version); a span not in it is version 0."""

    @property
    def newest(self) -> int:
        return max(self.spans)

    def version(self, span: int) -> int:
        """The staged version of `span`: 0, or V for a corrected span's `version-<V>/` folder."""
        return self.versions.get(span, 0)


def version_path(span: int, version: int) -> str:
    """`span-<n>/version-<v>`: where a span's staged copy sits in a layout (SPAN_PATTERN's match)."""
    return f"{SPAN_DIR_PREFIX}{span}/{VERSION_DIR_PREFIX}{version}"


def _link_layout(layout: Path, links: dict[str, Path]) -> None:
    """Create `layout` (if missing) holding a relative symlink per `links` entry (relative path -> target),
    built in a temporary folder and renamed into place, so a half-built layout is never seen."""
    if layout.is_dir():
        return
    work = Path(tempfile.mkdtemp(prefix=f".{layout.name[:12]}-", dir=layout.parent))
    try:
        for relative, target in links.items():
            link = work / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(target, (layout / relative).parent), link, target_is_directory=True)
        os.replace(work, layout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stage_spans(data: Path, staging_root: Path, label_key: str, positive_label: str,
                id_keys: tuple[str, ...] | str, delimiter: str | None = None, decimal: str | None = None,
                encoding: str | None = None) -> StagedSpans:
    """Stage the newest version of every span of `data` (find_span_sources) like one CSV input
    (inputs.stage_data, same arguments), and lay them out as `<staging_root>/spans-<hash>/span-<n>/version-<v>`
    for CsvExampleGen (SPAN_PATTERN). Older versions of a corrected span are not read (a correction often
    replaces a file the reader refuses).

    The layout's name hashes the staged copies and versions, so unchanged spans give the same folder (TFX's
    cache applies) and a corrected span gives a new one. Raises InputError: a bad span folder
    (find_span_sources), a span that cannot train on its own (inputs.stage_data), or spans whose columns differ.
    """
    sources = find_span_sources(data)
    spans = {number: source.folder for number, source in sources.items()}
    staged: dict[int, inputs.StagedData] = {}
    for number, folder in spans.items():
        try:
            staged[number] = inputs.stage_data(folder, staging_root, label_key, positive_label, id_keys,
                                               delimiter, decimal, encoding)
        except InputError as err:
            raise InputError(f"span {number}: {err}") from None
    first = min(staged)
    for number, span in staged.items():
        if span.columns != staged[first].columns:
            raise InputError(f"{spans[number]} has columns {', '.join(span.columns)}; {spans[first]} has "
                             f"{', '.join(staged[first].columns)}: every span must have the same columns")
    versions = {number: source.version for number, source in sources.items()}
    digest = hashlib.sha256(repr(sorted((n, versions[n], s.directory.name) for n, s in staged.items())).encode())
    layout = staging_root / f"{LAYOUT_PREFIX}{digest.hexdigest()[:16]}"
    _link_layout(layout, {version_path(n, versions[n]): s.directory for n, s in staged.items()})
    return StagedSpans(layout, staged, versions)


def span_frame(staged: StagedSpans, span: int) -> pd.DataFrame:
    """One staged span's rows (every staged CSV of its staged version), as pandas reads the staged copy."""
    files = sorted((staged.directory / version_path(span, staged.version(span))).glob("*.csv"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def span_drift_gate(staged: StagedSpans, on_drift: str = drift_gate.DEFAULT_ON_DRIFT,
                    schema: Path | None = cfg.CURATED_SCHEMA) -> drift_gate.GateDecision:
    """The drift gate: the newest span against the previous one, by the shared comparators and thresholds
    set on `schema` (the curated schema; None: every column of the data, typed as pandas reads it, with
    the label and id columns left out). A single span is not compared.

    Raises DriftGateError: an unknown `on_drift`, an unreadable schema, or a span with fewer than
    drift_gate.MIN_ROWS rows.
    """
    drift_gate.check_on_drift(on_drift)
    newest = staged.newest
    if newest - 1 not in staged.spans:
        return drift_gate.GateDecision(None, on_drift, newest, None)
    current, previous = span_frame(staged, newest), span_frame(staged, newest - 1)
    if schema is not None:
        gate_schema = drift_gate.gate_schema(schema)
    else:
        gate_schema = drift_gate.set_drift_comparators(
            tfdv.infer_schema(drift_gate.statistics_of(previous)),
            skip=(staged.spans[newest].label_key, *staged.spans[newest].id_keys))
    verdict = drift_gate.compare(drift_gate.statistics_of(current), drift_gate.statistics_of(previous), gate_schema)
    return drift_gate.GateDecision(verdict, on_drift, newest, newest - 1)


@dataclasses.dataclass(frozen=True)
class Window:
    """Which spans a run trains on and which one it evaluates on, out of time."""

    train: tuple[int, ...]
    """The `window` labelled spans before `evaluate`, oldest first: training and validation rows."""
    evaluate: int
    """The newest labelled span: the evaluation month, which the model never trains on."""


def training_window(labelled: Iterable[int], window: int) -> Window:
    """`--window N`: train and validate on the N labelled spans before the newest labelled one, evaluate on
    the newest. `labelled` are the spans whose labels exist (month m's once month m+1 has passed).

    Raises ValueError: window < 1, or fewer than window + 1 labelled spans, or a gap among the last
    window + 1 (the message names the spans found).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    spans = sorted(set(labelled))
    if len(spans) < window + 1:
        raise ValueError(f"--window {window} needs {window + 1} labelled spans ({window} to train on, the newest "
                         f"to evaluate on); found {len(spans)}: {', '.join(map(str, spans)) or 'none'}")
    newest = spans[-1]
    wanted = tuple(range(newest - window, newest))
    missing = sorted(set(wanted) - set(spans))
    if missing:
        raise ValueError(f"--window {window} before span {newest} needs spans {wanted[0]}..{wanted[-1]}; "
                         f"missing: {', '.join(map(str, missing))}")
    return Window(wanted, newest)


EXAMPLES_TYPE = "Examples"
SPAN_PROPERTY = "span"
INPUT_BASE_PROPERTY = "input_base"


def _live_span_examples(
        metadata_path: Path) -> tuple[metadata_store.MetadataStore | None, list[metadata_store_pb2.Artifact]]:
    """(the store, its LIVE Examples artifacts that carry a `span`), read-only; (None, []) without a store."""
    if not metadata_path.is_file():
        return None, []
    store = read_only_store(metadata_path)
    try:
        artifacts = [a for a in store.get_artifacts_by_type(EXAMPLES_TYPE)
                     if a.state == metadata_store_pb2.Artifact.LIVE and SPAN_PROPERTY in a.custom_properties]
    except NotFoundError:
        return store, []
    return store, artifacts


def ingested_spans(metadata_path: Path, input_base: Path) -> set[int]:
    """The spans of the layout `input_base` that CsvExampleGen runs recorded in the SQLite ML Metadata at
    `metadata_path` have ingested (LIVE Examples artifacts with a `span`, made by an execution whose
    input_base is `input_base`). Empty when the store does not exist yet (the first run).
    """
    store, artifacts = _live_span_examples(metadata_path)
    if store is None or not artifacts:
        return set()
    producers: dict[int, int] = {}
    for event in store.get_events_by_artifact_ids([a.id for a in artifacts]):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            producers[event.artifact_id] = event.execution_id
    executions = {e.id: e for e in store.get_executions_by_id(sorted(set(producers.values())))}
    wanted = str(input_base)
    spans = set()
    for artifact in artifacts:
        execution = executions.get(producers.get(artifact.id, -1))
        if execution is not None and execution.custom_properties[INPUT_BASE_PROPERTY].string_value == wanted:
            spans.add(artifact.custom_properties[SPAN_PROPERTY].int_value)
    return spans


def span_examples_uris(metadata_path: Path, span: int) -> list[str]:
    """URIs of the LIVE Examples artifacts of `span` recorded in the SQLite ML Metadata at `metadata_path`,
    oldest first (by artifact id). A cached ExampleGen execution reuses an earlier artifact, so this is where
    a run's examples of `span` are, whichever run wrote them. Empty without a store.
    """
    _, artifacts = _live_span_examples(metadata_path)
    return [a.uri for a in sorted(artifacts, key=lambda a: a.id)
            if a.custom_properties[SPAN_PROPERTY].int_value == span]


def ingested_span_layouts(metadata_path: Path, staged: StagedSpans) -> set[int]:
    """The spans of `staged` whose own layout (span_layout: that span's staged version) CsvExampleGen runs
    recorded in the ML Metadata at `metadata_path` have ingested. A corrected span has a new layout, so it is
    not among them until it is ingested again; the other spans stay ingested."""
    return {n for n in staged.spans if n in ingested_spans(metadata_path, span_layout(staged, n))}


def spans_to_ingest(available: Iterable[int], ingested: set[int]) -> list[int]:
    """The available spans not ingested yet, oldest first: what a run ingests, one CsvExampleGen execution each."""
    return sorted(set(available) - ingested)


def input_config() -> example_gen_pb2.Input:
    """One input split over the staged layout, `span-{SPAN}/*`."""
    return example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=SPAN_PATTERN)])


def range_config(span: int) -> range_config_pb2.RangeConfig:
    """A static range of exactly `span` (what one CsvExampleGen execution ingests). Raises ValueError if < 0."""
    if span < 0:
        raise ValueError(f"span must be >= 0, got {span}")
    return range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span))


def output_config(id_column: str | None = None,
                  split_buckets: dict[str, int] = cfg.SPLIT_BUCKETS) -> example_gen_pb2.Output:
    """The pipeline's hash-bucket splits; with `id_column`, TFX hashes that column's value
    (`partition_feature_name`) instead of the whole row, so a customer keeps its split across spans.
    The column must hold one integer or string per row (TFX raises otherwise)."""
    splits = [example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=b) for name, b in split_buckets.items()]
    split_config = example_gen_pb2.SplitConfig(splits=splits)
    if id_column is not None:
        split_config.partition_feature_name = id_column
    return example_gen_pb2.Output(split_config=split_config)


def span_example_gen(input_base: Path | str, span: int, id_column: str | None = None) -> CsvExampleGen:
    """The pipeline's (fast) CsvExampleGen ingesting span `span` of a staged layout (StagedSpans.directory, or
    its copy at a URI such as gs://bucket/spans)."""
    return CsvExampleGen(input_base=str(input_base), input_config=input_config(), range_config=range_config(span),
                         output_config=output_config(id_column))


SPAN_LAYOUT_PREFIX = "span-layout-"
EVAL_EXAMPLE_GEN_ID = "CsvExampleGen"
"""A windowed run's ExampleGen of the evaluation span keeps the single-CSV run's id (summary and report read it)."""
TRAIN_EXAMPLE_GEN_ID = "CsvExampleGen_span_{span}"
"""A windowed run's ExampleGen of one training span: one node (and one cached execution) per span."""
MANIFEST = "spans.json"
"""data/generate.py --months writes each month's date here (data/spans.py MANIFEST)."""


def span_layout(staged: StagedSpans, span: int) -> Path:
    """A layout holding only `span` (`<staging_root>/span-layout-<n>-v<v>-<staged copy>/span-<n>/version-<v>`):
    an ExampleGen input_base that stays the same while that span's data does, so TFX's cache keeps a span
    ingested from month to month; a corrected span (a new version, or changed files) gets a new one and is
    ingested again. Raises KeyError: no such span."""
    data, version = staged.spans[span], staged.version(span)
    layout = staged.directory.parent / f"{SPAN_LAYOUT_PREFIX}{span}-v{version}-{data.directory.name}"
    _link_layout(layout, {version_path(span, version): data.directory})
    return layout


@dataclasses.dataclass(frozen=True)
class SpanInputs:
    """A windowed run's ExampleGen inputs: the window and each of its spans' layout (span_layout)."""

    window: Window
    layouts: dict[int, Path | str]
    """Span -> its ExampleGen input_base, for every span of the window (training spans and the evaluation span):
    a local layout (span_layout), or one URI for every span (static_window_inputs)."""
    id_column: str | None
    """The column whose hash splits rows (a customer in the same split every month); None: the whole row's."""


def window_inputs(staged: StagedSpans, window: int) -> SpanInputs:
    """`--window N` over a staged span folder: every staged span is labelled (staging drops unlabelled rows
    and refuses a span without labels), so the newest one is evaluated and the N before it are trained on.
    Raises ValueError as training_window does."""
    chosen = training_window(staged.spans, window)
    first = staged.spans[min(staged.spans)]
    return SpanInputs(chosen, {n: span_layout(staged, n) for n in (*chosen.train, chosen.evaluate)},
                      first.id_keys[0] if first.id_keys else None)


def _month_number(name: str, text: str) -> int:
    """YYYY-MM as a count of months (year * 12 + month - 1). Raises ValueError naming `name` otherwise."""
    year, _, number = text.partition("-")
    if not (len(text) == 7 and year.isdigit() and number.isdigit() and 1 <= int(number) <= 12 and int(year) >= 1):
        raise ValueError(f"{name} must be YYYY-MM, got {text!r}")
    return int(year) * 12 + int(number) - 1


def add_months(month: str, count: int) -> str:
    """`month` (YYYY-MM) plus `count` months, as YYYY-MM (data/spans.py's month_date, for the pipeline's
    flags). Raises ValueError: a malformed month."""
    total = _month_number("month", month) + count
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def month_span(first_month: str, month: str) -> int:
    """The span of `month` (YYYY-MM) in a folder whose span 0 is `first_month` (YYYY-MM): months between them.
    Raises ValueError: a malformed month, or `month` before `first_month`."""
    first, number = _month_number("first month", first_month), _month_number("month", month)
    if number < first:
        raise ValueError(f"month {month} is before span 0's month {first_month}")
    return number - first


def static_window_inputs(data: str, evaluate: int, window: int, id_column: str | None) -> SpanInputs:
    """`--window N` evaluated on span `evaluate` for an orchestrator without TFX's span resolvers (Kubeflow V2,
    Vertex AI): every ExampleGen reads the span folder `data` (a URI of a staged layout, SPAN_PATTERN) with
    a static range of its one span, fixed when the spec is compiled. Raises ValueError as training_window
    does (too few spans before `evaluate`)."""
    chosen = training_window(range(evaluate + 1), window)
    return SpanInputs(chosen, {n: data for n in (*chosen.train, chosen.evaluate)}, id_column)


def window_example_gens(span_inputs: SpanInputs) -> tuple[CsvExampleGen, list[CsvExampleGen]]:
    """The ExampleGens of a windowed run: the evaluation span's (id EVAL_EXAMPLE_GEN_ID) and one per training
    span (TRAIN_EXAMPLE_GEN_ID), each ingesting exactly its span (static range), split by the id column."""
    window = span_inputs.window
    evaluate = span_example_gen(span_inputs.layouts[window.evaluate], window.evaluate,
                                span_inputs.id_column).with_id(EVAL_EXAMPLE_GEN_ID)
    train = [span_example_gen(span_inputs.layouts[n], n, span_inputs.id_column)
             .with_id(TRAIN_EXAMPLE_GEN_ID.format(span=n))
             for n in window.train]
    return evaluate, train


def span_month(data: Path, span: int) -> str | None:
    """The month (YYYY-MM) of `span` from the folder's spans.json (data/generate.py --months); None without one."""
    try:
        manifest = json.loads((data / MANIFEST).read_text(encoding="utf-8"))
        return next((str(e["date"]) for e in manifest["spans"] if e["span"] == span), None)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def example_gen_id(window: Window, span: int) -> str:
    """The node id of `span`'s ExampleGen in a run over `window` (window_example_gens)."""
    return EVAL_EXAMPLE_GEN_ID if span == window.evaluate else TRAIN_EXAMPLE_GEN_ID.format(span=span)


@dataclasses.dataclass(frozen=True)
class SpanRun:
    """A windowed run's inputs once staged and gated (prepare_run)."""

    staged: StagedSpans
    inputs: SpanInputs
    gate: drift_gate.GateDecision
    month: str | None
    """The evaluation span's month (YYYY-MM) when the folder has a spans.json; the run's month."""

    def summary(self, cached: Collection[str] | None = None) -> dict[str, object]:
        """run_summary.json's `spans` entry: the window, the run's month, the drift gate and, once the run is
        over (`cached`: the node ids TFX served from its cache), which spans this run ingested and which
        ones it reused from an earlier run's ExampleGen execution. `versions`: span -> the version read
        (0, or V of a corrected span's `version-<V>/`)."""
        window = self.inputs.window
        spans = (*window.train, window.evaluate)
        result: dict[str, object] = {
            "layout": str(self.staged.directory), "available": sorted(self.staged.spans),
            "train_spans": list(window.train), "eval_span": window.evaluate, "month": self.month,
            "rows": {str(n): self.staged.spans[n].rows for n in spans},
            "versions": {str(n): self.staged.version(n) for n in spans}, "drift": self.gate.summary()}
        if cached is not None:
            result["ingested"] = [n for n in spans if example_gen_id(window, n) not in cached]
            result["reused"] = [n for n in spans if example_gen_id(window, n) in cached]
        return result


def prepare_run(staged: StagedSpans, data: Path, window: int, on_drift: str, schema: Path | None) -> SpanRun:
    """A staged span folder's windowed run: the window (`--window`) and the drift gate on the newest span
    against the previous one (`schema` as span_drift_gate takes it). Raises InputError for a window the
    folder cannot fill, DriftGateError as span_drift_gate does."""
    try:
        span_inputs = window_inputs(staged, window)
    except ValueError as err:
        raise InputError(f"{data}: {err}") from None
    gate = span_drift_gate(staged, on_drift, schema)
    return SpanRun(staged, span_inputs, gate, span_month(data, span_inputs.window.evaluate))


def describe_versions(staged: StagedSpans, spans: Iterable[int]) -> str:
    """`corrected spans: span 2 version 1 (...)` for the spans of `spans` read from a `version-<v>/` folder
    (v > 0); empty when none is."""
    corrected = [f"span {n} version {staged.version(n)} ({version_path(n, staged.version(n))})"
                 for n in spans if staged.version(n) > 0]
    return f"corrected spans: {', '.join(corrected)}; their earlier versions are not read" if corrected else ""


def describe_run(run: SpanRun) -> str:
    """What a windowed run prints before it starts: the window, the month and the drift gate."""
    window = run.inputs.window
    lines = [(f"spans: train and validate on {', '.join(map(str, window.train))}; evaluate out of time on "
              f"{window.evaluate}{f' ({run.month})' if run.month else ''}; each span not ingested yet is "
              "ingested by its own ExampleGen run")]
    corrected = describe_versions(run.staged, (*window.train, window.evaluate))
    if corrected:
        lines.append(corrected)
    if run.gate.verdict is None:
        lines.append(f"drift: not checked (span {run.gate.current_span} has no previous span)")
    else:
        lines.append(f"drift, span {run.gate.current_span} against span {run.gate.previous_span}:")
        lines.append(drift_gate.format_verdict(run.gate.verdict))
    return "\n".join(lines)


SUMMARY_FILE = "spans_summary.json"
SPANS_PIPELINE_NAME = f"{cfg.PIPELINE_NAME}-spans"
"""The ingest runs' pipeline name: their own context in the run's ML Metadata, beside the training pipeline's."""


def ingest(staged: StagedSpans, config: cfg.PipelineConfig, spans: Sequence[int]) -> None:
    """Run the pipeline's CsvExampleGen once per span in `spans`, each on its own layout (span_layout;
    LocalDagRunner; split by the first id column when there is one), recording each run in `config`'s ML
    Metadata."""
    from tfx.orchestration import metadata
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    first = staged.spans[min(staged.spans)]
    id_column = first.id_keys[0] if first.id_keys else None
    for span in spans:
        LocalDagRunner().run(tfx_pipeline.Pipeline(
            pipeline_name=SPANS_PIPELINE_NAME, pipeline_root=str(config.pipeline_root),
            components=[span_example_gen(span_layout(staged, span), span, id_column)], enable_cache=True,
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(config.metadata_path))))


def build_parser() -> argparse.ArgumentParser:
    defaults = cfg.PipelineConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.spans",
        description="Stage a folder of span-<n> folders, run the drift gate on the newest span against the "
                    "previous one, and ingest the spans not ingested yet (one CsvExampleGen run each).")
    parser.add_argument("--data", type=Path, required=True, help="folder of span-<n>/ folders of CSV files")
    parser.add_argument("--output", type=Path, default=defaults.output, help="default: %(default)s")
    parser.add_argument("--on-drift", choices=drift_gate.ON_DRIFT_CHOICES, default=drift_gate.DEFAULT_ON_DRIFT,
                        help="stop: exit 3 and ingest nothing when a feature drifted; warn: go on (default)")
    parser.add_argument("--label", default=defaults.label_key, help="default: %(default)s")
    parser.add_argument("--positive-label", default=defaults.positive_label, help="default: %(default)s")
    parser.add_argument("--id-columns", default=cfg.AUTO,
                        help="comma-separated id columns, 'auto' (default) or '' for none; the first one splits")
    parser.add_argument("--schema", type=Path, default=cfg.CURATED_SCHEMA,
                        help="schema whose features the drift gate compares (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.spans` (module docstring); returns the exit code."""
    from pipeline.cli import usage_error

    args = build_parser().parse_args(argv)
    config = cfg.PipelineConfig(output=args.output.resolve())
    try:
        config.output.mkdir(parents=True, exist_ok=True)
        lock = config.lock_path.open("w")
    except OSError as err:
        return usage_error(f"cannot write to --output {config.output}: {err.strerror or err}")
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return usage_error(f"another run is using {config.output}; wait for it or choose another --output")
        return _run(args, config)


def _run(args: argparse.Namespace, config: cfg.PipelineConfig) -> int:
    from pipeline.cli import names, usage_error

    id_keys: tuple[str, ...] | str = cfg.AUTO if args.id_columns.strip() == cfg.AUTO else names(args.id_columns)
    try:
        staged = stage_spans(args.data.resolve(), config.output / "inputs", args.label, args.positive_label, id_keys)
        gate = span_drift_gate(staged, args.on_drift, args.schema)
    except (InputError, drift_gate.DriftGateError) as err:
        return usage_error(str(err))
    except OSError as err:
        return usage_error(f"cannot write to --output {config.output}: {err.strerror or err}")
    numbers = sorted(staged.spans)
    print(f"spans {numbers[0]}..{numbers[-1]} of {args.data} staged in {staged.directory}")
    if corrected := describe_versions(staged, numbers):
        print(corrected)
    if gate.verdict is None:
        print(f"drift: not checked (span {gate.current_span} has no previous span)")
    else:
        print(f"drift, span {gate.current_span} against span {gate.previous_span}:")
        print(drift_gate.format_verdict(gate.verdict))
    already = ingested_span_layouts(config.metadata_path, staged)
    todo = [] if gate.stop else spans_to_ingest(numbers, already)
    summary = {"data": str(args.data), "layout": str(staged.directory), "spans": numbers,
               "versions": {str(n): staged.version(n) for n in numbers},
               "layouts": {str(n): str(span_layout(staged, n)) for n in numbers},
               "already_ingested": sorted(already), "ingested": todo, "drift": gate.summary()}
    if gate.stop:
        print("stopped: --on-drift stop and a feature drifted; nothing ingested or trained")
    else:
        ingest(staged, config, todo)
        print(f"ingested: {', '.join(map(str, todo)) or 'nothing new'}"
              f" (already ingested: {', '.join(map(str, sorted(already))) or 'none'})")
    (config.output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return exit_codes.DATA_VALIDATION if gate.stop else exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
