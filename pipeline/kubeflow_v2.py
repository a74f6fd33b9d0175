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
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from common import exit_codes
from common.facts import PROJECT_ROOT
from pipeline import beam, progress
from pipeline import config as cfg
from pipeline.cli import add_model_arguments, names, usage_error

IN_IMAGE_SCHEMA = str(cfg.IMAGE_PROJECT_DIR / cfg.CURATED_SCHEMA.relative_to(PROJECT_ROOT))
"""The curated schema as the pipeline image holds it."""


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
    progress.quiet_environment()
    warnings.filterwarnings("ignore")  # TFX's and Google Cloud's deprecation notices on import
    spec = compile_spec(args, beam_args)
    print(f"pipeline spec: {spec} (image {args.image}, Beam: {' '.join(beam_args)})")
    return exit_codes.OK


def compile_spec(args: argparse.Namespace, beam_args: tuple[str, ...]) -> Path:
    """Write the KubeflowV2DagRunner spec of the pipeline `args` describe; returns its path."""
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
                               recall_gate_fingerprint=recall_gate_fingerprint())
    out = args.out.resolve()
    runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image=args.image),
                                 output_dir=str(out.parent), output_filename=out.name)
    runner.run(pipeline)
    written: Path = out
    return written


def _id_keys(text: str) -> tuple[str, ...]:
    from modules import features

    return features.ID_KEYS if text.strip() == cfg.AUTO else names(text)


if __name__ == "__main__":
    sys.exit(main())
