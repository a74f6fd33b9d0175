"""create_pipeline: the churn DAG, shared by every runner. Wiring only: no I/O, no globals."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tfx import v1 as tfx

from pipeline import config as cfg
from pipeline.eval_config import build_eval_config
from pipeline.gates import DataValidationGate
from pipeline.pusher import AtomicPusher

PREPROCESSING_FN = "modules.preprocessing.preprocessing_fn"
RUN_FN = "modules.trainer.run_fn"


def create_pipeline(
    config: cfg.PipelineConfig,
    data_dir: Path,
    schema_file: Path | None,
    slice_keys: list[str],
    code_fingerprint: str,
) -> tfx.dsl.Pipeline:
    """The TFX pipeline for one run.

    Args:
      config: the run's choices (paths, label, thresholds).
      data_dir: folder of cleaned CSVs (see pipeline.inputs.stage_data).
      schema_file: curated schema to import, or None to infer one with SchemaGen.
      slice_keys: Evaluator slices, already limited to columns the data has.
      code_fingerprint: hash of the module code. TFX's cache keys hash parameters, not the code
        behind dotted `preprocessing_fn`/`run_fn` paths, so the hash goes into `custom_config`
        to make an edited module re-run Transform and Trainer.
    """
    splits = [tfx.proto.SplitConfig.Split(name=n, hash_buckets=b) for n, b in cfg.SPLIT_BUCKETS.items()]
    example_gen = tfx.components.CsvExampleGen(
        input_base=str(data_dir), output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=splits))
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    if schema_file is None:
        schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    else:
        schema_gen = tfx.components.ImportSchemaGen(schema_file=str(schema_file))
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    gate = DataValidationGate(anomalies=example_validator.outputs["anomalies"])

    custom_config: dict[str, Any] = {
        "label_key": config.label_key,
        "positive_label": config.positive_label,
        "id_keys": list(config.id_keys),
        "code_fingerprint": code_fingerprint,
    }
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(analyze=[cfg.TRAIN_SPLIT], transform=list(cfg.SPLIT_BUCKETS)),
        custom_config=custom_config,
        disable_statistics=True,  # pre/post-transform statistics double Transform's time; StatisticsGen has them
    )
    transform.add_upstream_node(gate)
    trainer_config = dict(custom_config)
    if config.max_epochs is not None:
        trainer_config["max_epochs"] = config.max_epochs
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[cfg.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[cfg.VALIDATION_SPLIT]),
        custom_config=trainer_config,
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[cfg.EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=build_eval_config(config.label_key, slice_keys, config.min_auc),
    )
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.model_base_path))
        ),
    ).with_id("Pusher")
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.PIPELINE_NAME,
        pipeline_root=str(config.pipeline_root),
        components=[
            example_gen, statistics_gen, schema_gen, example_validator, gate,
            transform, trainer, model_resolver, evaluator, pusher,
        ],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(config.metadata_path)
        ),
        beam_pipeline_args=list(config.beam_args),
    )
