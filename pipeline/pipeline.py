"""create_pipeline: the churn DAG, shared by every runner. Wiring only: no I/O, no globals.

Components are imported from their modules, not `tfx.v1`, whose import also loads the Google Cloud
AI Platform client (about 4 s of every run's start-up).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tfx.components import (
    CsvExampleGen, Evaluator, ExampleValidator, SchemaGen, StatisticsGen, Trainer, Transform,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.compiler import compiler
from tfx.dsl.components.common.resolver import Resolver
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2, transform_pb2
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import Channel, standard_artifacts

from pipeline import config as cfg
from pipeline.baseline import BLESSING_KEY, CANDIDATE_KEY, MODEL_KEY, LatestBlessedOtherModelStrategy
from pipeline.eval_config import build_eval_config
from pipeline.factors import ChurnFactors
from pipeline.gates import DataValidationGate
from pipeline.pusher import AtomicPusher

PREPROCESSING_FN = "modules.preprocessing.preprocessing_fn"
RUN_FN = "modules.trainer.run_fn"
PUSHER_ID = "Pusher"


def create_pipeline(
    config: cfg.PipelineConfig,
    data_dir: Path,
    schema_file: Path | None,
    slice_keys: list[str],
    code_fingerprint: str,
    factors_fingerprint: str = "",
) -> tfx_pipeline.Pipeline:
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
    splits = [example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in cfg.SPLIT_BUCKETS.items()]
    example_gen = CsvExampleGen(
        input_base=str(data_dir), output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=splits))
    )
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    if schema_file is None:
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    else:
        schema_gen = ImportSchemaGen(schema_file=str(schema_file))
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    gate = DataValidationGate(anomalies=example_validator.outputs["anomalies"])

    custom_config: dict[str, Any] = {
        "label_key": config.label_key,
        "positive_label": config.positive_label,
        "id_keys": list(config.id_keys),
        "code_fingerprint": code_fingerprint,
    }
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # Only the Trainer reads transformed rows (train, validation); the Evaluator and the report
        # feed raw eval rows to the exported signatures, so eval is never materialised.
        splits_config=transform_pb2.SplitsConfig(analyze=[cfg.TRAIN_SPLIT],
                                                  transform=[cfg.TRAIN_SPLIT, cfg.VALIDATION_SPLIT]),
        custom_config=custom_config,
        disable_statistics=True,  # pre/post-transform statistics double Transform's time; StatisticsGen has them
        force_tf_compat_v1=True,  # TF2 tracing of the preprocessing_fn took longer than the analysis itself
        disable_analyzer_cache=True,  # nothing reuses it: a changed input re-runs Transform whole
    )
    transform.add_upstream_node(gate)
    trainer_config = dict(custom_config)
    if config.max_epochs is not None:
        trainer_config["max_epochs"] = config.max_epochs
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=[cfg.TRAIN_SPLIT]),
        eval_args=trainer_pb2.EvalArgs(splits=[cfg.VALIDATION_SPLIT]),
        custom_config=trainer_config,
    )
    # Runs whatever the Evaluator decides: an unblessed model's report still says what it found.
    factors = ChurnFactors(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                           label_key=config.label_key, code_fingerprint=factors_fingerprint)
    model_resolver = Resolver(
        strategy_class=LatestBlessedOtherModelStrategy,
        **{MODEL_KEY: Channel(type=standard_artifacts.Model),
           BLESSING_KEY: Channel(type=standard_artifacts.ModelBlessing),
           CANDIDATE_KEY: trainer.outputs["model"]},
    ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[cfg.EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs[MODEL_KEY],
        eval_config=build_eval_config(config.label_key, slice_keys, config.min_auc),
    ).with_id("Evaluator")
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(config.model_base_path))
        ),
    ).with_id(PUSHER_ID)
    return tfx_pipeline.Pipeline(
        pipeline_name=cfg.PIPELINE_NAME,
        pipeline_root=str(config.pipeline_root),
        components=[
            example_gen, statistics_gen, schema_gen, example_validator, gate,
            transform, trainer, factors, model_resolver, evaluator, pusher,
        ],
        enable_cache=True,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(config.metadata_path)
        ),
        beam_pipeline_args=list(config.beam_args),
    )


def compile_pipeline(pipeline: tfx_pipeline.Pipeline) -> pipeline_pb2.Pipeline:
    """The pipeline's IR, with caching off for the Pusher alone.

    The Pusher's result lives in the serving folder, which ML Metadata does not see: served from
    cache, a re-run would report a version someone has since deleted. Running it costs a digest
    of the model, and push_model copies nothing when the newest pushed version is the same model.
    """
    ir = compiler.Compiler().compile(pipeline)
    for node in ir.nodes:
        if node.pipeline_node.node_info.id == PUSHER_ID:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    return ir
