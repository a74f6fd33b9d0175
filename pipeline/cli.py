"""Command line of `local_pipeline.py`: flags, input checks, the run, the summary and the exit code.

Exit codes: 0 a blessed model is pushed (or already served unchanged); 2 bad usage or unreadable
input; 3 stopped by data validation; 4 model not blessed (nothing pushed); 1 anything else.
Every run also writes <output>/report.html; `--report-only` rewrites it from the run already there
(exit 0 when complete, 1 when a section could not be rendered, 2 when --output holds no run).
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import sys
import time
import traceback
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from common import exit_codes
from common.facts import PROJECT_ROOT
from modules import hparams
from pipeline import beam, progress
from pipeline import config as cfg

if TYPE_CHECKING:
    from pipeline.spans import SpanInputs, SpanRun, StagedSpans

_INTERRUPTED = "\ninterrupted: outputs of finished components are kept and reused by the next run"


def build_parser() -> argparse.ArgumentParser:
    defaults = cfg.PipelineConfig()
    parser = argparse.ArgumentParser(
        prog="local_pipeline.py",
        description="Train, validate and push the churn model with TFX (LocalDagRunner). "
        "Writes <output>/run_summary.json; exit 0 pushed, 2 bad input, 3 data anomalies, 4 not blessed, 1 error.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=defaults.data,
                        help="CSV file, folder of CSV files, or folder of monthly span-<n>/ folders (see --window)")
    parser.add_argument("--output", type=Path, default=defaults.output,
                        help="pipeline root, ML Metadata and run_summary.json go here")
    parser.add_argument("--serving-dir", type=Path, default=defaults.serving_dir,
                        help="models are pushed to <serving-dir>/customer-model/<version>/")
    add_model_arguments(parser)
    add_span_arguments(parser)
    beam.add_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show TFX, Beam and TensorFlow logs")
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate <output>/report.html from the run already in --output")
    return parser


def add_span_arguments(parser: argparse.ArgumentParser) -> None:
    """local_pipeline.py's span-folder flags: --window and --on-drift."""
    parser.add_argument("--window", type=int, default=cfg.DEFAULT_WINDOW,
                        help="with a folder of span-<n>/ folders as --data: train and validate on the N spans "
                             "before the newest, evaluate on the newest (out of time)")
    parser.add_argument("--on-drift", choices=cfg.ON_DRIFT_CHOICES, default=cfg.DEFAULT_ON_DRIFT,
                        help="with a span folder: the newest span against the previous one; stop: exit 3, nothing "
                             "trained, when a feature drifted; warn: train, bless on the evaluation alone")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and model flags every runner shares (local_pipeline.py, python -m pipeline.kubeflow_v2)."""
    defaults = cfg.PipelineConfig()
    parser.add_argument("--label", default=defaults.label_key, help="label column")
    parser.add_argument("--positive-label", default=defaults.positive_label,
                        help="label value meaning 'churned' (e.g. 1, Yes, True)")
    parser.add_argument("--id-columns", default=cfg.AUTO,
                        help="comma-separated identifier columns, never used as features ('' for none); 'auto': "
                        "Customer_ID when present, else columns named like an id whose values are unique per row")
    parser.add_argument("--slice-columns", default=",".join(defaults.slice_keys),
                        help="comma-separated columns to report metrics by; those absent from the data are skipped")
    parser.add_argument("--delimiter", default=None,
                        help="CSV delimiter: , ; tab or | (default: detected from the file)")
    parser.add_argument("--decimal", default=None, help="decimal mark: . or , (default: detected from the file)")
    parser.add_argument("--encoding", default=None,
                        help="file encoding, e.g. utf-8, cp1252 (default: detected; UTF-8 with or without BOM)")
    parser.add_argument("--schema", default=cfg.AUTO,
                        help=f"curated schema.pbtxt to validate the data against, '{cfg.INFER_SCHEMA}', or "
                        f"'{cfg.AUTO}': the curated {cfg.CURATED_SCHEMA.relative_to(PROJECT_ROOT)} when the "
                        "data's columns are the bundled data's, else inferred and saved as <output>/schema.pbtxt")
    parser.add_argument("--min-auc", type=_unit_interval, default=defaults.min_auc,
                        help="bless the model only if its overall eval AUC is at least this")
    parser.add_argument("--threshold", type=_open_unit_interval, default=None,
                        help="decision threshold of the served `churn` output, on the calibrated churn probability "
                        "(default: the F1-optimal threshold on the validation split)")
    parser.add_argument("--max-epochs", type=_positive_int, default=None,
                        help="upper bound on training epochs (early stopping usually ends sooner)")
    parser.add_argument("--require-beat-reference", action="store_true",
                        help="bless the model only if no reference model (logistic regression, gradient-boosted "
                             "trees) has a better eval AUC beyond the paired 95%% interval")
    parser.add_argument("--tune", nargs="?", type=_positive_float, const=hparams.TUNE_BUDGET_SECONDS, default=None,
                        metavar="SECONDS",
                        help="run the TFX Tuner before training: a random search over learning rate, dropout and L2 "
                             "for at most SECONDS of wall clock (default "
                             f"{hparams.TUNE_BUDGET_SECONDS:g}); the Trainer uses the best trial's values")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.beam_runner == "dataflow":
        return usage_error("Dataflow workers cannot read this runner's local pipeline root; compile the pipeline for "
                            "Vertex AI / Kubeflow with a gs:// root instead: python -m pipeline.kubeflow_v2 "
                            "--beam-runner dataflow --help")
    try:
        beam_args = beam.from_arguments(args, input_bytes=input_bytes(args.data))
    except beam.BeamArgsError as e:
        return usage_error(str(e))
    config = cfg.PipelineConfig(
        data=args.data.resolve(),
        output=args.output.resolve(),
        serving_dir=args.serving_dir.resolve(),
        label_key=args.label,
        positive_label=args.positive_label,
        id_keys=() if args.id_columns.strip() == cfg.AUTO else names(args.id_columns),
        slice_keys=names(args.slice_columns),
        schema=None if args.schema in (cfg.INFER_SCHEMA, cfg.AUTO) else Path(args.schema).resolve(),
        min_auc=args.min_auc,
        max_epochs=args.max_epochs,
        threshold=args.threshold,
        require_beat_reference=args.require_beat_reference,
        tune_budget_seconds=args.tune,
        beam_args=beam_args,
    )
    progress.quiet_environment()
    if args.report_only and not config.summary_path.exists():
        return usage_error(f"no pipeline run in {config.output} ({config.summary_path.name} not found); "
                            "run the pipeline first or point --output at a run")
    try:
        config.output.mkdir(parents=True, exist_ok=True)
        lock = config.lock_path.open("w")
    except OSError as e:
        return usage_error(f"cannot write to --output {config.output}: {e.strerror}")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return usage_error(f"another pipeline run is using {config.output}; wait for it or choose another --output")
    with lock:
        try:
            if args.report_only:
                return _report_only(config, args.verbose)
            auto_ids = args.id_columns.strip() == cfg.AUTO
            return _run(config, verbose=args.verbose, id_keys=None if auto_ids else config.id_keys,
                        delimiter=args.delimiter, decimal=args.decimal, encoding=args.encoding,
                        auto_schema=args.schema == cfg.AUTO, window=args.window, on_drift=args.on_drift)
        except KeyboardInterrupt:
            print(_INTERRUPTED, file=sys.stderr)
            return exit_codes.INTERRUPTED


def _run(config: cfg.PipelineConfig, verbose: bool, id_keys: tuple[str, ...] | None = None,
         delimiter: str | None = None, decimal: str | None = None, encoding: str | None = None,
         auto_schema: bool = False, window: int | None = None, on_drift: str | None = None) -> int:
    """Stage the input (`id_keys` None: `--id-columns auto`), run the pipeline, write the summary; the exit code."""
    from pipeline import inputs

    started = time.monotonic()
    summary: dict[str, Any] = {"data": str(config.data), "output": str(config.output)}
    span_run: SpanRun | None = None
    staged_spans: StagedSpans | None = None
    # The span modules import TFDV and TensorFlow: only for a span folder (their import warnings would
    # reach the terminal before stderr goes to pipeline.log).
    span_folder = inputs.is_span_folder(config.data)
    refused: tuple[type[Exception], ...] = (inputs.InputError,)
    if span_folder:
        from pipeline import drift_gate, spans

        refused = (inputs.InputError, drift_gate.DriftGateError)
    try:
        if span_folder:
            if config.require_beat_reference:
                raise inputs.InputError("--require-beat-reference is not available with a span folder: the "
                                        "reference models would be fitted on the evaluation month")
            staged_spans = spans.stage_spans(config.data, config.output / "inputs", config.label_key,
                                             config.positive_label, id_keys if id_keys is not None else cfg.AUTO,
                                             delimiter, decimal, encoding)
            staged = staged_spans.spans[staged_spans.newest]  # the evaluation span (every staged span is labelled)
        else:
            staged = inputs.stage_data(config.data, config.output / "inputs", config.label_key,
                                       config.positive_label, id_keys if id_keys is not None else cfg.AUTO,
                                       delimiter, decimal, encoding)
        if auto_schema:
            config, schema_chosen = inputs.choose_schema(config, staged)
        elif config.schema is not None:
            inputs.check_schema_columns(config.schema, staged)
            schema_chosen = "given (--schema)"
        else:
            schema_chosen = f"inferred by SchemaGen (--schema {cfg.INFER_SCHEMA})"
        schema = None if config.schema is None else inputs.stage_schema(config.schema, config.output / "inputs")
        if staged_spans is not None:
            span_run = spans.prepare_run(staged_spans, config.data, window or cfg.DEFAULT_WINDOW,
                                         on_drift or cfg.DEFAULT_ON_DRIFT, config.schema)
    except refused as e:
        return usage_error(str(e))
    except OSError as e:
        return usage_error(f"cannot stage the input under {config.output / 'inputs'}: {e}")
    header = staged.header
    assert header is not None and staged.dialect is not None  # for mypy: stage_data always sets both
    slice_keys = list(header.tf_names([k for k in config.slice_keys if k in header.written or k in header.names],
                                      "--slice-columns", config.data))
    config = dataclasses.replace(config, label_key=staged.label_key, id_keys=staged.id_keys)
    summary["input"] = {
        "rows": staged.rows, "dropped_unlabelled_rows": staged.dropped_unlabelled_rows,
        "missing_cells": staged.missing_cells, "label": config.label_key, "positive_label": config.positive_label,
        "label_values": staged.label_values, "schema": str(config.schema) if config.schema else cfg.INFER_SCHEMA,
        "schema_chosen": schema_chosen, "dialect": staged.dialect.to_json(), "column_names": header.mapping,
        "dropped_index_column": header.dropped_index, "id_columns": list(staged.id_keys),
        "id_columns_chosen": staged.id_keys_chosen, "unique_text_columns": list(staged.unique_text_columns),
        "served_inputs": inputs.served_inputs(staged),
    }
    print(f"data: {config.data} ({staged.rows:,} rows"
          f"{f', {staged.dropped_unlabelled_rows} without a label dropped' if staged.dropped_unlabelled_rows else ''})")
    print(f"read as: {staged.dialect.describe()}")
    if header.dropped_index:
        print("the unnamed first column holds the row numbers 0, 1, 2, ...: read as a row index and dropped")
    if header.mapping:
        print("column names mapped to TensorFlow names: "
              + ", ".join(f"{w!r} -> {n}" for w, n in header.mapping.items()))
    print(f"id columns: {', '.join(staged.id_keys) or 'none'} ({staged.id_keys_chosen})")
    print(f"schema: {config.schema or 'inferred'} ({schema_chosen})")
    print(f"served signature inputs: {', '.join(summary['input']['served_inputs'])}")
    for column in staged.unique_text_columns:
        print(f"warning: text column {column!r} has a different value in every row; as a feature it is a category "
              "the model cannot learn from: if it identifies customers, name it in --id-columns", file=sys.stderr)
    print(f"output: {config.output}")
    print(f"beam: {' '.join(config.beam_args)}\n")
    if span_run is not None:
        print(spans.describe_run(span_run) + "\n")
        summary["spans"] = span_run.summary()
        if span_run.gate.stop:
            return _stopped_by_drift(summary, config, span_run, time.monotonic() - started)
    err = sys.stderr if verbose else progress.divert_stderr(config.log_path)
    handler = progress.install(verbose)  # its total: the pipeline's component count, once it is built
    status, exit_code, error = "pushed", exit_codes.OK, None
    try:
        _run_pipeline(config, staged.directory, schema, slice_keys, handler,
                      None if span_run is None else span_run.inputs)
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=err)
        return exit_codes.INTERRUPTED
    except Exception as e:  # noqa: BLE001 (every failure becomes an exit code and a message)
        handler.fail()
        from pipeline.gates import DataValidationError

        if isinstance(e, DataValidationError):
            status, exit_code = "stopped_by_data_validation", exit_codes.DATA_VALIDATION
        else:
            status, exit_code, error = "failed", exit_codes.FAILED, f"{type(e).__name__}: {e}"
            # With --verbose on the terminal; otherwise into <output>/pipeline.log (stderr is diverted
            # there), the file the error message points to.
            traceback.print_exc()
            sys.stderr.flush()
    from pipeline.run_summary import build_summary, format_summary, write_summary

    summary.update(build_summary({}))  # every documented key is present, whatever happens next
    try:
        summary.update(_read_back(config, handler.times.cached))
    except Exception as e:  # noqa: BLE001 (a run's outcome must still be reported)
        status, exit_code, error = "failed", exit_codes.FAILED, error or f"cannot read the run's results back: {e}"
    if exit_code == exit_codes.OK and not summary.get("pushed_model_dir"):
        status, exit_code = "not_blessed", exit_codes.NOT_BLESSED
    summary.update(
        status=status, exit_code=exit_code, error=error,
        component_seconds=handler.times.seconds, cached_components=handler.times.cached,
        total_seconds=round(time.monotonic() - started, 2),
    )
    if span_run is not None:
        summary["spans"] = span_run.summary(handler.times.cached)
    if config.schema is None:
        summary["input"]["inferred_schema"] = _save_inferred_schema(config)
    write_summary(summary, config.summary_path)
    print(format_summary(summary))
    print(f"summary: {config.summary_path}")
    if summary["input"].get("inferred_schema"):
        print(f"inferred schema: {summary['input']['inferred_schema']}; to reuse it, curate it (domains, ranges, "
              f"presence) and pass it with the same other flags: local_pipeline.py --data {config.data} --schema "
              f"{summary['input']['inferred_schema']}")
    write_report_or_warn(summary, config, err)
    if error:
        hint = "" if verbose else f" (library output: {config.log_path}; --verbose shows it as the run goes)"
        print(f"error: {error}{hint}", file=err)
    if exit_code == exit_codes.DATA_VALIDATION:
        cells = _out_of_domain_cells(config, staged, schema or summary["input"].get("inferred_schema"),
                                     summary.get("anomalies") or [])
        print(f"error: {validation_message(config, len(summary.get('anomalies') or []), cells)}", file=err)
    return exit_code


def _stopped_by_drift(summary: dict[str, Any], config: cfg.PipelineConfig, span_run: SpanRun, seconds: float) -> int:
    """`--on-drift stop` and a drifted feature: nothing ingested or trained; the summary says why (exit 3)."""
    from pipeline.run_summary import build_summary, write_summary

    summary.update(build_summary({}))
    summary.update(status="stopped_by_drift", exit_code=exit_codes.DATA_VALIDATION, error=None,
                   component_seconds={}, cached_components=[], total_seconds=round(seconds, 2))
    write_summary(summary, config.summary_path)
    print(f"summary: {config.summary_path}")
    verdict = span_run.gate.verdict  # never None when the gate stops a run
    drifted = ", ".join(d.feature for d in verdict.drifted) if verdict is not None else ""
    print(f"error: stopped by the drift gate (--on-drift stop): span {span_run.gate.current_span} drifted from span "
          f"{span_run.gate.previous_span} on {drifted}; nothing ingested or trained (--on-drift warn trains anyway)",
          file=sys.stderr)
    return exit_codes.DATA_VALIDATION


def validation_message(config: cfg.PipelineConfig, anomalies: int, cells: dict[str, str] | None = None) -> str:
    """The exit-3 message: which file broke which schema, where (`cells`: column -> its first cell outside
    the schema, pipeline.gates.first_out_of_domain_cells), and the two ways out."""
    schema = config.schema or "the schema inferred from it"
    where = "; first values outside the schema: " + "; ".join(cells.values()) if cells else ""
    return (f"{config.data} does not match {schema}: {anomalies} anomal{'y' if anomalies == 1 else 'ies'} listed "
            f"above (split: column: problem){where}; correct those values in the data, or, if the data is right, "
            f"pass a schema that describes it (--schema PATH, or --schema {cfg.AUTO} to infer one for data that is "
            "not the bundled data)")


def _out_of_domain_cells(config: cfg.PipelineConfig, staged: Any, schema: Path | str | None,
                         anomalies: list[str]) -> dict[str, str]:
    """The first cell outside the schema of each column an anomaly names; {} when it cannot be told."""
    try:
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        from pipeline.gates import first_out_of_domain_cells
        from pipeline.inputs import list_csv_files

        if schema is None:
            return {}
        columns = {line.split(": ")[1] for line in anomalies if line.count(": ") >= 2}
        parsed = text_format.Parse(Path(schema).read_text(), schema_pb2.Schema())
        return first_out_of_domain_cells(list_csv_files(config.data), staged.dialect, staged.header, parsed, columns)
    except Exception:  # noqa: BLE001 (a pointer into the file; the run's outcome and message stand without it)
        return {}


def write_report_or_warn(summary: dict[str, Any], config: cfg.PipelineConfig, err: TextIO) -> bool:
    """Write report.html; a report problem is a warning, never a different exit code for the run."""
    try:
        from pipeline.report import write_report

        report = write_report(summary, config)
    except Exception as e:  # noqa: BLE001 (the run's outcome stands whatever happens to its report)
        print(f"warning: report not written: {type(e).__name__}: {e}", file=err)
        return False
    for problem in report.problems:
        print(f"warning: report incomplete: {problem}", file=err)
    print(f"Report: {report.path}")
    return not report.problems


def _report_only(config: cfg.PipelineConfig, verbose: bool) -> int:
    """`--report-only`: the report of the run recorded in --output, nothing re-run."""
    progress.install(verbose)  # as quiet as a run: library logs and warnings only with --verbose
    summary = json.loads(config.summary_path.read_text())
    return exit_codes.OK if write_report_or_warn(summary, config, sys.stderr) else exit_codes.FAILED


def _run_pipeline(config: cfg.PipelineConfig, data_dir: Path, schema: Path | None, slice_keys: list[str],
                  handler: progress.ProgressHandler, span_inputs: SpanInputs | None = None) -> None:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from modules.runtime import skip_autograph_for_tf_keras
    from pipeline.fingerprint import (
        code_fingerprint,
        factors_fingerprint,
        recall_gate_fingerprint,
        reference_fingerprint,
    )
    from pipeline.pipeline import Roots, compile_pipeline, create_pipeline

    skip_autograph_for_tf_keras()  # Transform and Evaluator trace tf-keras layers too
    # Beam's multi_processing workers are `python -m` subprocesses: they find the project's packages
    # through PYTHONPATH whatever directory the run started in.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)

    pipeline = create_pipeline(config, Roots.local(config, data_dir, schema), slice_keys,
                               code_fingerprint=code_fingerprint(), factors_fingerprint=factors_fingerprint(),
                               reference_fingerprint=reference_fingerprint(),
                               recall_gate_fingerprint=recall_gate_fingerprint(), spans=span_inputs)
    handler.total = len(pipeline.components)
    with run_scratch_dir(), beam.no_worker_package(config.beam_args), beam.no_state_cache(config.beam_args):
        LocalDagRunner().run_with_ir(compile_pipeline(pipeline))


@contextmanager
def run_scratch_dir() -> Iterator[Path]:
    """A temporary directory for everything the run's libraries put in the system temp dir, removed afterwards.

    Every Beam-based TFX executor given `beam_pipeline_args` builds a `tfx_ephemeral` sdist of TFX itself
    (about 49 MB, `tfx/utils/dependency_utils.py`, for remote Beam workers) in a fresh `tempfile.mkdtemp()`
    and never removes it: without this, each run with a remote Beam runner leaves about 200 MB in /tmp
    (DirectRunner runs skip that build: pipeline/beam.no_worker_package). Sets TMPDIR (inherited by
    Beam's worker processes) and `tempfile.tempdir` for the duration, then restores both.
    """
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="churn-pipeline-"))
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = str(scratch), str(scratch)
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(scratch, ignore_errors=True)


def _save_inferred_schema(config: cfg.PipelineConfig) -> str | None:
    """Copy the schema SchemaGen inferred to <output>/schema.pbtxt; its path, or None if the run made none."""
    import shutil

    from pipeline.run_summary import collect_outputs, single_artifact

    try:
        artifact = single_artifact(collect_outputs(config.metadata_path), "SchemaGen", "schema") \
            if config.metadata_path.exists() else None
        if artifact is None:
            return None
        target = config.output / cfg.INFERRED_SCHEMA_NAME
        shutil.copyfile(Path(artifact.uri) / cfg.INFERRED_SCHEMA_NAME, target)
        return str(target)
    except Exception:  # noqa: BLE001 (a convenience copy never changes the run's outcome)
        return None


def _read_back(config: cfg.PipelineConfig, cached: Collection[str]) -> dict[str, Any]:
    from pipeline.run_summary import build_summary, collect_outputs

    outputs = collect_outputs(config.metadata_path) if config.metadata_path.exists() else {}
    return build_summary(outputs, cached)


def input_bytes(data: Path) -> int:
    """Size of the CSV input in bytes (`--beam-mode auto`; a span folder: all its spans); 0 when missing, which
    staging then reports."""
    from pipeline.inputs import InputError, find_spans, is_span_folder, list_csv_files

    try:
        if is_span_folder(data):  # every span's CSVs: staging and the drift gate read them all
            return sum(path.stat().st_size for folder in find_spans(data).values() for path in list_csv_files(folder))
        return sum(path.stat().st_size for path in list_csv_files(data))
    except (InputError, OSError):
        return 0


def names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def usage_error(message: str) -> int:
    """Print `error: message` and return the bad-usage exit code (both runners' command lines)."""
    print(f"error: {message}", file=sys.stderr)
    return exit_codes.USAGE


def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _open_unit_interval(text: str) -> float:
    from modules.threshold import check_value

    try:
        return check_value(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value
