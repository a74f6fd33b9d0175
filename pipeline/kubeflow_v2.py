"""Compile the churn pipeline for Kubeflow Pipelines v2 and Vertex AI Pipelines (KubeflowV2DagRunner).

    python -m pipeline.kubeflow_v2 --pipeline-root gs://BUCKET/churn --data gs://BUCKET/churn/data \\
        --serving-dir gs://BUCKET/churn/serving_model --image REGISTRY/churn-pipeline:TAG

writes the pipeline spec JSON and runs nothing: submit it to Vertex AI
(`google.cloud.aiplatform.PipelineJob(template_path=...)`) or to a Kubeflow Pipelines v2 cluster. Every
step runs in `--image`, built from pipeline/Dockerfile, so the modules that train on the cluster are
the ones compiled here. The same create_pipeline as local runs; the differences are in pipeline.Roots.
`--data` must hold clean CSVs: local runs read and clean their input first with the product's one
reader (pipeline/inputs.py, pipeline/reader.py), here the components read the files as they are; to
prepare them, run `local_pipeline.py` once on the raw export and upload its staged copy,
`<output>/inputs/data-<hash>/` (UTF-8, comma-delimited, TensorFlow column names). `--id-columns auto`
means `Customer_ID` and `--schema auto` the curated schema here (the files are not read at compile time).

Monthly spans: with `--window N --month YYYY-MM --first-month YYYY-MM`, `--data` is a span folder (the
staged layout a local run writes, `<output>/inputs/spans-<hash>/`: `span-<n>/version-<v>/*.csv`) and the
spec trains on the N spans before `--month`'s and evaluates on `--month`'s span, out of time: one
ExampleGen per span, each with a static range of its span fixed in the spec (KubeflowV2DagRunner compiles
no SpanRangeStrategy/RollingRange resolver, so the window is resolved here, once per run). `--schedule FILE`
also writes the Vertex AI schedule that runs this month's spec once, on `--cron`, in the month its
evaluation labels exist (vertex_schedule); docs/scaling.md, "A monthly schedule".
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import exit_codes
from common.facts import PROJECT_ROOT
from pipeline import beam, progress
from pipeline import config as cfg
from pipeline.cli import add_model_arguments, names, usage_error

if TYPE_CHECKING:
    from pipeline.spans import SpanInputs

IN_IMAGE_SCHEMA = str(cfg.IMAGE_PROJECT_DIR / cfg.CURATED_SCHEMA.relative_to(PROJECT_ROOT))
"""The curated schema as the pipeline image holds it."""
DEFAULT_CRON = "TZ=Etc/UTC 0 6 2 * *"
"""`--cron`: 06:00 UTC on the 2nd of the month (Vertex AI schedules take unix-cron with an optional TZ= prefix)."""
MONTH_LABEL = "churn-month"
"""The pipeline job's label that carries the run's month (its evaluation span's YYYY-MM)."""
WINDOW_LABEL = "churn-window"
LABEL_DELAY_MONTHS = 1
"""Month m's labels are churn during month m+1 (data/spans.py): they exist once month m+1 has passed."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.kubeflow_v2",
        description="Compile the churn pipeline to a Kubeflow Pipelines v2 / Vertex AI pipeline spec (JSON).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--pipeline-root", required=True,
                        help="where the components write their outputs, e.g. gs://BUCKET/churn")
    parser.add_argument("--data", required=True, help="folder of clean CSV files, e.g. gs://BUCKET/churn/data")
    parser.add_argument("--serving-dir", required=True,
                        help="models are pushed to <serving-dir>/customer-model/<version>/ (a TF Serving base path)")
    parser.add_argument("--image", default=os.environ.get(cfg.PIPELINE_IMAGE_ENV),
                        help="the pipeline image every step runs in (pipeline/Dockerfile); "
                             f"default ${cfg.PIPELINE_IMAGE_ENV}")
    parser.add_argument("--out", type=Path, default=Path(f"{cfg.PIPELINE_NAME}_pipeline.json"),
                        help="pipeline spec file to write")
    spans = parser.add_argument_group("monthly spans (all three together; --data is then a span folder)")
    spans.add_argument("--window", type=int, help="train and validate on the N spans before --month's span")
    spans.add_argument("--month", help="YYYY-MM: the month evaluated out of time (the newest labelled span)")
    spans.add_argument("--first-month", help="YYYY-MM of span 0 (data/generate.py --months: its --start)")
    spans.add_argument("--schedule", type=Path,
                       help="also write the Vertex AI schedule (REST Schedule body) that runs this spec once")
    spans.add_argument("--cron", default=DEFAULT_CRON, help="the schedule's unix-cron")
    spans.add_argument("--vertex-parent", default="projects/PROJECT/locations/REGION",
                       help="the schedule's parent: projects/<project>/locations/<region>")
    add_model_arguments(parser)
    parser.set_defaults(schema=IN_IMAGE_SCHEMA)
    beam.add_arguments(parser)
    parser.set_defaults(beam_mode="in_memory")  # `auto` needs the input's size, unknown when compiling
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.image:
        return usage_error(f"name the pipeline image with --image or ${cfg.PIPELINE_IMAGE_ENV} "
                            "(build it with: docker build -f pipeline/Dockerfile -t IMAGE .)")
    # The Beam argument sets refer to the image and a Cloud Storage root: default them to this run's.
    env = {cfg.PIPELINE_IMAGE_ENV: args.image, "CHURN_GCS_ROOT": args.pipeline_root, **os.environ}
    try:
        beam_args = beam.from_arguments(args, env=env)
    except beam.BeamArgsError as e:
        return usage_error(str(e))
    month_flags = (args.window, args.month, args.first_month)
    if any(flag is not None for flag in month_flags) and None in month_flags:
        return usage_error("--window, --month and --first-month go together (a span folder as --data)")
    if args.schedule is not None and args.month is None:
        return usage_error("--schedule needs --window, --month and --first-month (one spec per month)")
    progress.quiet_environment()
    warnings.filterwarnings("ignore")  # TFX's and Google Cloud's deprecation notices on import
    try:
        span_inputs = None if args.month is None else _span_inputs(args)
    except ValueError as e:
        return usage_error(str(e))
    spec = compile_spec(args, beam_args, span_inputs)
    print(f"pipeline spec: {spec} (image {args.image}, Beam: {' '.join(beam_args)})")
    if span_inputs is not None:
        window = span_inputs.window
        print(f"spans: train on {', '.join(map(str, window.train))}, evaluate on {window.evaluate} ({args.month}); "
              "static ranges in the spec")
        if args.schedule is not None:
            job = json.loads(spec.read_text(encoding="utf-8"))
            schedule = vertex_schedule(job, args.month, args.cron, args.vertex_parent)
            args.schedule.write_text(json.dumps(schedule, indent=2) + "\n", encoding="utf-8")
            print(f"schedule: {args.schedule} (runs once, {args.cron}, between {schedule['startTime']} and "
                  f"{schedule['endTime']})")
    return exit_codes.OK


def _span_inputs(args: argparse.Namespace) -> SpanInputs:
    """The window of `--window/--month/--first-month` over the span folder `--data` (static ranges).
    Raises ValueError: a bad month, a window < 1, or fewer than --window spans before --month's."""
    from pipeline.spans import month_span, static_window_inputs

    ids = _id_keys(args.id_columns)
    return static_window_inputs(args.data.rstrip("/"), month_span(args.first_month, args.month), args.window,
                                ids[0] if ids else None)


def vertex_schedule(job: dict[str, Any], month: str, cron: str, parent: str) -> dict[str, Any]:
    """A Vertex AI Schedule (REST resource `projects.locations.schedules`, the body of schedules.create) that
    runs the compiled pipeline job `job` (KubeflowV2DagRunner's JSON) once, on `cron`, in the month when the
    labels of `month` (the run's evaluation month, YYYY-MM) exist: month + LABEL_DELAY_MONTHS + 1. A Vertex
    schedule submits the same job every time and the window's static ranges change every month, so each
    month's spec gets its own schedule (startTime/endTime bound it to its month, maxRunCount 1).
    The month is carried by the job's MONTH_LABEL label and display name. Raises ValueError: a bad month.
    """
    from pipeline.spans import add_months

    run_month, after = add_months(month, LABEL_DELAY_MONTHS + 1), add_months(month, LABEL_DELAY_MONTHS + 2)
    name = f"{cfg.PIPELINE_NAME}-{month}"
    pipeline_job = {**job, "displayName": name, "labels": {**job.get("labels", {}), MONTH_LABEL: month}}
    return {
        "displayName": name,
        "cron": cron,
        "startTime": f"{run_month}-01T00:00:00Z",
        "endTime": f"{after}-01T00:00:00Z",
        "maxRunCount": "1",
        "maxConcurrentRunCount": "1",
        "createPipelineJobRequest": {"parent": parent, "pipelineJob": pipeline_job},
    }


def compile_spec(args: argparse.Namespace, beam_args: tuple[str, ...], spans: SpanInputs | None = None) -> Path:
    """Write the KubeflowV2DagRunner spec of the pipeline `args` describe (with `spans`: a windowed run,
    one ExampleGen per span with its static range); returns its path."""
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    from modules.runtime import skip_autograph_for_tf_keras
    from pipeline.fingerprint import (
        code_fingerprint,
        factors_fingerprint,
        recall_gate_fingerprint,
        reference_fingerprint,
    )
    from pipeline.pipeline import Roots, create_pipeline

    skip_autograph_for_tf_keras()
    config = cfg.PipelineConfig(label_key=args.label, positive_label=args.positive_label,
                                id_keys=_id_keys(args.id_columns), min_auc=args.min_auc, max_epochs=args.max_epochs,
                                threshold=args.threshold, beam_args=beam_args,
                                require_beat_reference=args.require_beat_reference,
                                tune_budget_seconds=args.tune)
    serving_dir = args.serving_dir.rstrip("/")
    roots = Roots(pipeline_root=args.pipeline_root, data=args.data,
                  schema=None if args.schema == cfg.INFER_SCHEMA else
                  IN_IMAGE_SCHEMA if args.schema == cfg.AUTO else args.schema,
                  push_base=f"{serving_dir}/{config.model_base_path.name}")
    pipeline = create_pipeline(config, roots, list(names(args.slice_columns)),
                               code_fingerprint=code_fingerprint(), factors_fingerprint=factors_fingerprint(),
                               reference_fingerprint=reference_fingerprint(),
                               recall_gate_fingerprint=recall_gate_fingerprint(), spans=spans)
    out = args.out.resolve()
    runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image=args.image),
                                 output_dir=str(out.parent), output_filename=out.name)
    runner.run(pipeline)
    if spans is not None:  # the month on the job itself too, where a submitted run shows it
        job = json.loads(out.read_text(encoding="utf-8"))
        job["labels"] = {**job.get("labels", {}), MONTH_LABEL: args.month, WINDOW_LABEL: str(args.window)}
        out.write_text(json.dumps(job, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written: Path = out
    return written


def _id_keys(text: str) -> tuple[str, ...]:
    from modules import features

    return features.ID_KEYS if text.strip() == cfg.AUTO else names(text)


if __name__ == "__main__":
    sys.exit(main())
