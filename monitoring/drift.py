"""`python -m monitoring.drift`: has the serving traffic drifted away from the training data?

    python -m monitoring.drift --request-log requests.jsonl [--pipeline-output pipeline_output/]
    python -m monitoring.drift --request-log requests.jsonl --statistics FeatureStats.pb
    python -m monitoring.drift --data customers_this_month.csv [--pipeline-output pipeline_output/]

The request log is what the model server writes with `--request_log_file`; `--data` takes a customer
CSV instead, read by the pipeline's own reader (pipeline/reader.py). The rows' inputs get
TFDV statistics, which are compared with the statistics StatisticsGen computed on the training
split (the newest StatisticsGen artifact in the pipeline's ML Metadata, or a file given with
`--statistics`) by TFDV's drift comparators, set on the curated schema:

- categorical features: L-infinity distance (largest difference in a category's share), above
  `--categorical-threshold` (default 0.1: a category's share moved by more than 10 points);
- numeric features: Jensen-Shannon divergence of the histograms, above `--numeric-threshold`
  (default 0.1).

The comparators and their default thresholds have one definition, in pipeline/drift_gate.py, shared
with the pipeline's span-to-span drift gate.

Why these numbers (measured on generated data, 1,000 logged rows against the bundled data's training
split, 30 samples): with no drift the largest Jensen-Shannon value was 0.08 and the largest
L-infinity 0.044; Age + 8 years read 0.127, purchases 40 % more recent 0.111, one satisfaction point
less 0.396 (all flagged); Total_Spend x 1.5 read 0.063 (not flagged: the thresholds favour few false
alarms). At least 1,000 rows are required (`--min-rows`) because TFDV compares numeric features by
equal-width histograms over each sample's own min..max: a small sample that misses the rare top
values of a small-range integer feature (e.g. no customer with more than 6 returns) shifts every
bucket boundary, and with 400 rows that alone read as 0.16 once in 40 samples.

The schema's other checks (domains, ranges, types) run too, in its SERVING environment (no label,
no identifier columns).

Published as metrics with `--pushgateway HOST:PORT` (default `$CHURN_PUSHGATEWAY`; the standard way for batch
jobs; the alerts are in monitoring/rules/quality.yml): each feature's distance, measure and threshold, and which
features are the model's churn drivers (`--driver`, repeatable; default: the drivers the newest ChurnFactors run
found, in the pipeline's ML Metadata), all labelled with `--period` (the business month the rows are about,
YYYY-MM; default the current UTC month). With `--eval-scores` the served scores of the request log are compared
with the model's scores of the eval split: by default the `eval_scores.csv` that the ReferenceModels step of the
pipeline run which pushed the served version (the request log's `version`) wrote (pipeline/reference.py, found in
the pipeline's ML Metadata: the Pusher's `pushed_version`, then that run's outputs), or `--eval-scores FILE` (a CSV
whose `churn_probability` column holds them). The population stability index over 10 equal-width bins is printed
and, with `--pushgateway`, pushed with both sides' share per bin (monitoring/batch_metrics.py).

Exit codes: 0 no drift and no anomaly; 3 drift or anomalies found (each printed); 2 bad usage,
unreadable input or a failed push (the message says what to fix).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import tensorflow_data_validation as tfdv
from ml_metadata.errors import NotFoundError
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from common import exit_codes
from modules.features import ID_KEYS, LABEL_KEY, PROBABILITY_OUTPUT
from monitoring import batch_metrics
from pipeline.config import CURATED_SCHEMA, DEFAULT_OUTPUT, TRAIN_SPLIT, PipelineConfig
from pipeline.config import DRIFT_MIN_ROWS as MIN_ROWS
from pipeline.drift_gate import (
    CATEGORICAL_THRESHOLD,
    NUMERIC_THRESHOLD,
    Distance,
    distances_of,
    set_drift_comparators,
)
from pipeline.mlmd import read_only_store

TRAINING, SERVING = "TRAINING", "SERVING"
STATISTICS_TYPE = "ExampleStatistics"
STATISTICS_FILE = "FeatureStats.pb"
FACTORS_TYPE = "churn.ChurnFactors"
"""MLMD type of the pipeline's ChurnFactors output (pipeline/factors.py), whose factors.json names the drivers."""
SERVED_RUN = "served"
"""`--eval-scores` given without a file: the eval_scores.csv of the run that pushed the served version
(served_eval_scores)."""
PUSHED_MODEL_TYPE = "PushedModel"
"""MLMD type of the Pusher's output (TFX standard_artifacts.PushedModel), with custom properties `pushed`,
`pushed_version` and `newly_pushed` (pipeline/pusher.py)."""
RUN_CONTEXT_TYPE = "pipeline_run"
"""MLMD context type of one pipeline run (TFX); every execution of the run, cached ones included, is in it."""
PERIOD_FORMAT = "%Y-%m"


class DriftError(Exception):
    """Bad input; the message is printed as-is and the exit code is 2."""


@dataclass(frozen=True)
class Report:
    rows: int
    training_statistics: str
    measurements: list[Distance]
    anomalies: dict[str, str]
    """feature -> TFDV's description, drift included."""

    @property
    def drifted(self) -> list[Distance]:
        return [m for m in self.measurements if m.drifted]


def read_request_log(path: Path, model_version: str | None = None) -> pd.DataFrame:
    """The logged inputs, one row per predicted instance (optionally of one model version)."""
    if not path.is_file():
        raise DriftError(f"request log {path} does not exist (start the server with --request_log_file={path})")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                inputs = record["inputs"]
                if not isinstance(inputs, dict):
                    raise TypeError("inputs is not an object")
            except (ValueError, KeyError, TypeError) as err:
                raise DriftError(f"{path}:{number}: not a request log line ({err})") from None
            if model_version is None or str(record.get("version")) == model_version:
                rows.append(inputs)
    if not rows:
        which = f" for model version {model_version}" if model_version else ""
        raise DriftError(f"{path} holds no logged rows{which}")
    return pd.DataFrame.from_records(rows)


def read_customer_file(path: Path) -> pd.DataFrame:
    """A customer CSV (instead of a request log) as the pipeline's staging reads it (pipeline/reader.py:
    dialect, encoding, TensorFlow column names, one meaning per value); missing cells are None."""
    from pipeline import reader

    if not path.is_file():
        raise DriftError(f"data {path} does not exist (--data)")
    try:
        dialect = reader.detect_dialect(path)
        header = reader.read_header(path, dialect)
        frames = [reader.normalize_cells(chunk, dialect, path) for _, chunk in
                  reader.read_chunks(path, dialect, header, 100_000)]
    except reader.ReadError as err:
        raise DriftError(str(err)) from None
    if not frames:
        raise DriftError(f"{path} holds no rows")
    frame = pd.concat(frames, ignore_index=True)
    return frame.where(frame != "", None)


def serving_frame(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """The schema's serving features, typed as the schema says (so TFDV sees INT, FLOAT, BYTES)."""
    columns = {}
    features = [f for f in schema.feature if SERVING not in f.not_in_environment]
    missing = [f.name for f in features if f.name not in frame.columns]
    if len(missing) == len(features):
        raise DriftError(f"the logged rows have none of the schema's features ({', '.join(missing)}); "
                         "were they sent to a signature with one input per feature (serving_default)?")
    for feature in features:
        if feature.name not in frame.columns:
            continue  # TFDV reports the missing column as an anomaly
        values = frame[feature.name]
        if feature.type == schema_pb2.BYTES:
            columns[feature.name] = values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
        elif feature.type == schema_pb2.INT:
            numbers = pd.to_numeric(values, errors="coerce")
            integral = numbers.dropna().eq(numbers.dropna().round()).all()
            columns[feature.name] = numbers.astype("Int64") if integral else numbers
        else:
            columns[feature.name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(columns)


def serving_schema(path: Path, categorical_threshold: float, numeric_threshold: float) -> Any:
    """The curated schema with SERVING/TRAINING environments and one drift comparator per feature."""
    try:
        schema = tfdv.load_schema_text(str(path))
    except Exception as err:  # unreadable or not a Schema text proto
        raise DriftError(f"cannot read schema {path}: {err}") from None
    schema.default_environment[:] = [TRAINING, SERVING]
    for feature in schema.feature:
        if feature.name == LABEL_KEY or feature.name in ID_KEYS:
            feature.not_in_environment.append(SERVING)
    return set_drift_comparators(schema, categorical_threshold, numeric_threshold)


def _newest_artifact(pipeline_output: Path, type_name: str) -> metadata_store_pb2.Artifact | None:
    """The newest (LIVE first) artifact of `type_name` in the pipeline's ML Metadata, None when there is none."""
    try:
        artifacts = _read_store(pipeline_output, "--statistics PATH").get_artifacts_by_type(type_name)
    except NotFoundError:
        artifacts = []
    live = [a for a in artifacts if a.state == metadata_store_pb2.Artifact.LIVE] or artifacts
    return max(live, key=lambda a: (a.create_time_since_epoch, a.id)) if live else None


def newest_training_statistics(pipeline_output: Path) -> Path:
    """`Split-train/FeatureStats.pb` of the newest StatisticsGen artifact in the pipeline's MLMD."""
    newest = _newest_artifact(pipeline_output, STATISTICS_TYPE)
    if newest is None:
        metadata = PipelineConfig(output=pipeline_output).metadata_path
        raise DriftError(f"{metadata} records no StatisticsGen output: run the pipeline first")
    path = Path(newest.uri) / f"Split-{TRAIN_SPLIT}" / STATISTICS_FILE
    if not path.is_file():
        raise DriftError(f"the newest training statistics {path} are missing (folder moved or deleted?)")
    return path


def driver_features(pipeline_output: Path) -> list[str]:
    """The churn drivers the newest ChurnFactors run found (its factors.json `drivers`), [] when none is recorded."""
    from pipeline.factors import load_factors

    newest = _newest_artifact(pipeline_output, FACTORS_TYPE)
    if newest is None:
        return []
    try:
        return [str(feature) for feature in load_factors(newest.uri).get("drivers", [])]
    except (OSError, ValueError):
        return []


def _read_store(pipeline_output: Path, instead: str) -> metadata_store.MetadataStore:
    """The ML Metadata of `pipeline_output`, read-only; DriftError naming the flag to pass `instead` if none."""
    metadata = PipelineConfig(output=pipeline_output).metadata_path
    if not metadata.is_file():
        raise DriftError(f"{pipeline_output} has no {metadata.name}: is it a pipeline --output folder? "
                         f"(or pass {instead})")
    return read_only_store(metadata)


def served_eval_scores(pipeline_output: Path, model_version: int) -> Path:
    """`eval_scores.csv` of the pipeline run that pushed `model_version` (pipeline/reference.py's ReferenceModels
    output of that run: the served, calibrated churn probabilities of its eval split, the split it was blessed on).

    The run is the one whose Pusher output has `pushed_version` = `model_version` and `newly_pushed` = 1 (a later
    run that found the same model already pushed records the version too, with newly_pushed 0; it is used only
    when no run says it pushed it newly). Raises DriftError when `pipeline_output` holds no ML Metadata, no run
    recorded pushing that version (pushed by another pipeline output?), that run has no ReferenceModels output,
    or its folder has no eval_scores.csv."""
    from pipeline.pusher import NEWLY_PUSHED_PROPERTY, PUSHED_VERSION_PROPERTY
    from pipeline.reference import EVAL_SCORES_FILE, ReferenceModelsArtifact, eval_scores_path

    store = _read_store(pipeline_output, "--eval-scores CSV")
    metadata = PipelineConfig(output=pipeline_output).metadata_path
    try:
        pushes = store.get_artifacts_by_type(PUSHED_MODEL_TYPE)
    except NotFoundError:
        pushes = []
    pushes = [a for a in pushes if PUSHED_VERSION_PROPERTY in a.custom_properties
              and a.custom_properties[PUSHED_VERSION_PROPERTY].string_value == str(model_version)]
    newly = [a for a in pushes if NEWLY_PUSHED_PROPERTY in a.custom_properties
             and a.custom_properties[NEWLY_PUSHED_PROPERTY].int_value == 1]
    pushes = newly or pushes
    if not pushes:
        raise DriftError(f"{metadata} records no pipeline run that pushed model version {model_version} (served "
                         "from another pipeline output?): pass --eval-scores CSV or --pipeline-output")
    push = min(pushes, key=lambda a: (a.create_time_since_epoch, a.id))
    runs = [c for c in store.get_contexts_by_artifact(push.id) if c.type == RUN_CONTEXT_TYPE]
    try:
        reference_type = store.get_artifact_type(ReferenceModelsArtifact.TYPE_NAME).id
    except NotFoundError:
        reference_type = None
    references = []
    for run in runs:
        executions = [e.id for e in store.get_executions_by_context(run.id)]
        outputs = {e.artifact_id for e in store.get_events_by_execution_ids(executions)
                   if e.type == metadata_store_pb2.Event.OUTPUT}
        references += [a for a in store.get_artifacts_by_id(list(outputs)) if a.type_id == reference_type]
    if not references:
        raise DriftError(f"the pipeline run that pushed model version {model_version} has no ReferenceModels "
                         "output, so no eval split's scores: pass --eval-scores CSV")
    newest = max(references, key=lambda a: (a.create_time_since_epoch, a.id))
    path = eval_scores_path(newest.uri)
    if path is None:
        raise DriftError(f"the ReferenceModels output of the run that pushed model version {model_version} "
                         f"({newest.uri}) has no {EVAL_SCORES_FILE} (folder moved, or a run older than that file): "
                         "pass --eval-scores CSV")
    return Path(path)


def read_served_scores(path: Path, model_version: str | None = None) -> tuple[npt.NDArray[np.float64], int]:
    """The logged `churn_probability` values (shape [n]) of one model version, and that version.

    Without `model_version` the log must hold one version only. Raises DriftError when the rows carry no
    probability or several versions are mixed."""
    scores: list[float] = []
    versions: Counter[str] = Counter()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)  # read_request_log has checked every line
            version = str(record.get("version"))
            if model_version is not None and version != model_version:
                continue
            value = record.get(PROBABILITY_OUTPUT)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scores.append(float(value))
                versions[version] += 1
    if not scores:
        raise DriftError(f"{path} holds no {PROBABILITY_OUTPUT} values: start the server with "
                         f"--observed_output={PROBABILITY_OUTPUT} (make serve does)")
    if len(versions) > 1:
        raise DriftError(f"{path} holds scores of model versions {', '.join(sorted(versions))}: "
                         "choose one with --model-version")
    (version,) = versions
    try:
        return np.asarray(scores, dtype=np.float64), int(version)
    except ValueError:
        raise DriftError(f"{path}: model version {version!r} is not a number") from None


def read_eval_scores(path: Path) -> npt.NDArray[np.float64]:
    """The `churn_probability` column (shape [n], values in [0, 1]) of a CSV of the eval split's scores."""
    if not path.is_file():
        raise DriftError(f"eval scores {path} does not exist (--eval-scores)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DriftError(f"eval scores {path} is not a readable CSV file: {err}") from None
    if PROBABILITY_OUTPUT not in frame.columns:
        raise DriftError(f"eval scores {path} has no {PROBABILITY_OUTPUT} column "
                         f"(found {', '.join(map(str, frame.columns))})")
    scores = pd.to_numeric(frame[PROBABILITY_OUTPUT], errors="coerce")
    bad = scores.isna() | (scores < 0) | (scores > 1)
    if bad.any() or scores.empty:
        first = f" (first at data row {int(np.argmax(bad.to_numpy())) + 1})" if bad.any() else ""
        raise DriftError(f"eval scores {path}: {PROBABILITY_OUTPUT} must be probabilities in [0, 1]; "
                         f"{int(bad.sum())} row(s) are not{first}" if bad.any() else f"eval scores {path}: no rows")
    return scores.to_numpy(dtype=np.float64)


def period(text: str) -> str:
    """argparse type of `--period`: a business month `YYYY-MM`."""
    try:
        return datetime.strptime(text, PERIOD_FORMAT).strftime(PERIOD_FORMAT)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a month YYYY-MM, got {text!r}") from None


def load_statistics(path: Path) -> Any:
    """A `DatasetFeatureStatisticsList` from StatisticsGen's binary file, or from TFDV's text format."""
    if not path.is_file():
        raise DriftError(f"statistics file {path} does not exist")
    try:
        return tfdv.load_stats_binary(str(path))
    except Exception:  # not binary: maybe text (tfdv.write_stats_text)
        try:
            return tfdv.load_stats_text(str(path))
        except Exception as err:
            raise DriftError(f"{path} is not a TFDV statistics file ({err})") from None


def check_statistics_match_schema(training: Any, training_source: str, schema: Any, schema_path: Path) -> None:
    """Raises DriftError naming the schema's serving features the training statistics lack.

    Statistics of a run on other columns (the newest run in --pipeline-output trained on another CSV) against
    the curated schema would otherwise read as drift: TFDV reports each such feature as "previous data is
    missing" and the tool exits 3, as if the traffic had changed."""
    known = {step for dataset in training.datasets for feature in dataset.features for step in feature.path.step}
    known |= {feature.name for dataset in training.datasets for feature in dataset.features if feature.name}
    lacking = [f.name for f in schema.feature if SERVING not in f.not_in_environment and f.name not in known]
    if lacking:
        raise DriftError(f"the training statistics {training_source} lack {len(lacking)} of schema {schema_path}'s "
                         f"features ({', '.join(lacking)}): they come from a run on other columns. Pass the schema "
                         "that run validated against (--schema; an inferred one is <output>/schema.pbtxt), or the "
                         "--pipeline-output of a run on this data")


def compare(frame: pd.DataFrame, training: Any, training_source: str, schema: Any) -> Report:
    """TFDV statistics of `frame`, validated against `schema` with `training` as the previous span."""
    serving = tfdv.generate_statistics_from_dataframe(serving_frame(frame, schema))
    anomalies = tfdv.validate_statistics(serving, schema, environment=SERVING, previous_statistics=training)
    measurements = distances_of(anomalies)
    found = {name: info.description for name, info in anomalies.anomaly_info.items()}
    for reason in anomalies.dataset_anomaly_info.reason:
        found["(dataset)"] = reason.description
    return Report(len(frame), training_source, measurements, found)


def format_report(report: Report) -> str:
    lines = [f"{report.rows} logged rows compared with the training statistics in {report.training_statistics}",
             "", f"{'feature':<28} {'measure':<26} {'value':>8} {'threshold':>9}  drifted"]
    for m in report.measurements:
        lines.append(f"{m.feature:<28} {m.measure:<26} {m.value:>8.4f} {m.threshold:>9.4f}  "
                     f"{'YES' if m.drifted else 'no'}")
    lines.append("")
    if report.drifted:
        lines.append("Drifted: " + ", ".join(m.feature for m in report.drifted))
    other = {k: v for k, v in report.anomalies.items() if k not in {m.feature for m in report.drifted}}
    for feature, description in sorted(other.items()):
        lines.append(f"Anomaly: {feature}: {description}")
    if not report.anomalies:
        lines.append("No drift: every feature is within its threshold, and no schema anomaly.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monitoring.drift",
                                description="Compare logged serving traffic with the training statistics (TFDV).")
    rows = p.add_mutually_exclusive_group(required=True)
    rows.add_argument("--request-log", type=Path, help="file written by the server's --request_log_file")
    rows.add_argument("--data", type=Path,
                      help="or a customer CSV, read as the pipeline reads its input (any delimiter, decimal mark, "
                           "encoding; column names mapped to TensorFlow names)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--pipeline-output", type=Path, default=None,
                        help=f"pipeline --output folder: newest training statistics from its ML Metadata "
                             f"(default: {DEFAULT_OUTPUT})")
    source.add_argument("--statistics", type=Path, default=None,
                        help="training statistics file instead (StatisticsGen's FeatureStats.pb or TFDV text)")
    p.add_argument("--schema", type=Path, default=CURATED_SCHEMA, help="default: %(default)s")
    p.add_argument("--model-version", default=None, help="only rows predicted by this model version")
    p.add_argument("--categorical-threshold", type=float, default=CATEGORICAL_THRESHOLD,
                   help="L-infinity threshold for categorical features (default: %(default)s)")
    p.add_argument("--numeric-threshold", type=float, default=NUMERIC_THRESHOLD,
                   help="Jensen-Shannon divergence threshold for numeric features (default: %(default)s)")
    p.add_argument("--min-rows", type=int, default=MIN_ROWS, help="refuse to judge fewer rows (default: %(default)s)")
    p.add_argument("--eval-scores", nargs="?", const=SERVED_RUN, default=None, metavar="CSV",
                   help="compare the request log's served scores with the eval split's (population stability "
                        "index): without CSV, those the pipeline run in --pipeline-output that pushed the served "
                        f"version kept (eval_scores.csv); or a CSV with a {PROBABILITY_OUTPUT} column")
    p.add_argument("--pushgateway", default=os.environ.get(batch_metrics.PUSHGATEWAY_ENV) or None, metavar="HOST:PORT",
                   help="push the distances (and the served-score shift) to this Prometheus Pushgateway "
                        f"(default: ${batch_metrics.PUSHGATEWAY_ENV}, else no push)")
    p.add_argument("--period", type=period, default=datetime.now(timezone.utc).strftime(PERIOD_FORMAT),
                   help="business month the rows are about, the pushed metrics' period label (default: %(default)s)")
    p.add_argument("--driver", action="append", default=[], metavar="FEATURE",
                   help="a churn driver of the model, pushed for the driver drift alert (repeatable; default: the "
                        "drivers of the newest ChurnFactors run in --pipeline-output)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for name in ("categorical_threshold", "numeric_threshold"):
            if not 0 < getattr(args, name) <= 1:
                raise DriftError(f"--{name.replace('_', '-')} must be in (0, 1]")
        if args.eval_scores and not args.request_log:
            raise DriftError("--eval-scores compares the served scores of a --request-log; --data has none")
        frame = read_request_log(args.request_log, args.model_version) if args.request_log else \
            read_customer_file(args.data)
        if len(frame) < args.min_rows:
            raise DriftError(f"{args.request_log or args.data} holds {len(frame)} rows; "
                             f"at least {args.min_rows} are needed to tell drift from sampling noise (--min-rows)")
        pipeline_output = args.pipeline_output or DEFAULT_OUTPUT
        served = None
        if args.eval_scores:
            scores, version = read_served_scores(args.request_log, args.model_version)
            eval_scores = served_eval_scores(pipeline_output, version) if args.eval_scores == SERVED_RUN else \
                Path(args.eval_scores)
            served = (read_eval_scores(eval_scores), scores, version, eval_scores)
        if not args.schema.is_file():
            raise DriftError(f"schema {args.schema} does not exist")
        path = args.statistics or newest_training_statistics(pipeline_output)
        training = load_statistics(path)
        schema = serving_schema(args.schema, args.categorical_threshold, args.numeric_threshold)
        check_statistics_match_schema(training, str(path), schema, args.schema)
        report = compare(frame, training, str(path), schema)
        print(format_report(report))
        if served:
            psi = batch_metrics.population_stability_index(served[0], served[1])
            print(f"\nServed scores of model version {served[2]} against the eval split's: PSI {psi:.3f} "
                  f"(above {batch_metrics.PSI_ALERT}: a significant shift; eval scores: {served[3]})")
        if args.pushgateway:
            drivers = args.driver or ([] if args.statistics else driver_features(pipeline_output))
            batch_metrics.publish_drift({m.feature: m.value for m in report.measurements}, args.period,
                                        args.pushgateway, {m.feature: m.measure for m in report.measurements},
                                        {m.feature: m.threshold for m in report.measurements}, drivers)
            if served:
                batch_metrics.publish_score_shift(served[0], served[1], served[2], args.period, args.pushgateway)
            known = ", ".join(drivers) or "none known, so the driver drift alert cannot fire: pass --driver"
            print(f"Pushed to {args.pushgateway} (period {args.period}; drivers: {known})")
    except (DriftError, batch_metrics.PushError) as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_codes.USAGE
    return exit_codes.DRIFT if report.anomalies else exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
