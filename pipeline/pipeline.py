"""create_pipeline: the churn DAG, shared by every runner. Wiring only: no I/O, no globals.

Runners: `local_pipeline.py` (LocalDagRunner, via pipeline/cli.py) and `python -m pipeline.kubeflow_v2`
(KubeflowV2DagRunner: a pipeline spec for Kubeflow Pipelines v2 / Vertex AI Pipelines).

Components are imported from their modules, not `tfx.v1`, whose import also loads the Google Cloud
AI Platform client (seconds of every run's start-up: docs/performance.md).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tfx.components import (
    Evaluator,
    ExampleValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.compiler import compiler
from tfx.dsl.components.base import base_node
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2, transform_pb2
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import Channel, channel, standard_artifacts

from modules.threshold import CUSTOM_CONFIG_KEY as THRESHOLD_KEY
from pipeline import config as cfg
from pipeline.baseline import BLESSING_KEY, CANDIDATE_KEY, MODEL_KEY, LatestBlessedOtherModelStrategy
from pipeline.csv_examples import CsvExampleGen
from pipeline.eval_config import build_eval_config
from pipeline.examples_union import examples_union
from pipeline.factors import ChurnFactors
from pipeline.gates import DataValidationGate
from pipeline.pusher import AtomicPusher
from pipeline.recall_gate import RECALL_GATE_ID, RecallGate
from pipeline.reference import ReferenceGate, ReferenceModels
from pipeline.serving_check import ServingCheck
from pipeline.spans import SpanInputs, window_example_gens

PREPROCESSING_FN = "modules.preprocessing.preprocessing_fn"
RUN_FN = "modules.trainer.run_fn"
TUNER_FN = "modules.tuner.tuner_fn"
PUSHER_ID = "Pusher"
SERVING_CHECK_ID = "ServingCheck"
EXAMPLES_UNION_ID = "TrainingSpans"
"""The ExamplesUnion of a windowed run on Kubeflow V2 / Vertex AI (pipeline/examples_union.py)."""


@dataclasses.dataclass(frozen=True)
class Roots:
    """Where one run reads and writes, as TFX takes them: local paths, or URIs such as gs://bucket/x."""

    pipeline_root: str
    data: str
    """Folder of clean CSVs (pipeline.inputs.stage_data writes them for local runs)."""
    schema: str | None
    """Curated schema to import, or None to infer one with SchemaGen."""
    push_base: str
    """TF Serving's --model_base_path: the Pusher adds <version>/ folders."""
    metadata: str | None = None
    """SQLite ML Metadata file; None where the orchestrator keeps ML Metadata (Kubeflow, Vertex AI)."""

    @classmethod
    def local(cls, config: cfg.PipelineConfig, data_dir: Path, schema_file: Path | None) -> Roots:
        """A LocalDagRunner run's roots: config's folders and its SQLite ML Metadata."""
        return cls(str(config.pipeline_root), str(data_dir), None if schema_file is None else str(schema_file),
                   str(config.model_base_path), str(config.metadata_path))


def create_pipeline(
    config: cfg.PipelineConfig,
    roots: Roots,
    slice_keys: list[str],
    code_fingerprint: str,
    factors_fingerprint: str = "",
    reference_fingerprint: str = "",
    recall_gate_fingerprint: str = "",
    spans: SpanInputs | None = None,
) -> tfx_pipeline.Pipeline:
    """The TFX pipeline for one run.

    With `roots.metadata` None (Kubeflow V2 / Vertex AI) two components are TFX's stock ones, the
    only kinds that work there: the baseline resolver is LatestBlessedModelStrategy (KubeflowV2DagRunner
    compiles no other strategy into its ML Metadata query) and the Pusher is TFX's, which writes
    through tf.io.gfile to gs:// (AtomicPusher's rename-into-place is for local file systems).

    Args:
      config: the run's choices (label, thresholds, Beam arguments); its paths are not used.
      roots: where the run reads and writes.
      slice_keys: Evaluator slices, already limited to columns the data has.
      code_fingerprint: hash of the module code. TFX's cache keys hash parameters, not the code
        behind dotted `preprocessing_fn`/`run_fn` paths, so the hash goes into `custom_config`
        to make an edited module re-run Transform and Trainer.
      factors_fingerprint, reference_fingerprint, recall_gate_fingerprint: the same for ChurnFactors,
        ReferenceModels and RecallGate.
      spans: a windowed run over monthly spans (pipeline/spans.py, `--window`): one ExampleGen per span of
        the window (each one span, split by customer id); Transform and the Trainer read the training spans'
        train/validation rows (their channel union; on Kubeflow V2 / Vertex AI, which take one channel per
        input, an ExamplesUnion of them, pipeline/examples_union.py), and everything that judges the model
        (StatisticsGen and ExampleValidator, the Evaluator and its baseline, ChurnFactors, ReferenceModels,
        ServingCheck) reads the evaluation span's ExampleGen, out of time. None: one CsvExampleGen over `roots.data`.

    With `config.require_beat_reference`, ReferenceGate combines the Evaluator's blessing with the
    reference models' verdict; RecallGate then refuses a model whose recall at its own decision
    threshold is 0, and the Pusher reads its blessing.

    With `config.tune_budget_seconds` (`--tune`), TFX's Tuner searches the training hyperparameters on
    the transformed splits within that budget and the Trainer trains with its best ones.
    """
    local = roots.metadata is not None
    train_gens: list[base_node.BaseNode] = []
    if spans is None:
        splits = [example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in cfg.SPLIT_BUCKETS.items()]
        example_gen = CsvExampleGen(
            input_base=roots.data,
            output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=splits)),
        )
        train_examples: channel.BaseChannel = example_gen.outputs["examples"]
    else:
        example_gen, span_gens = window_example_gens(spans)
        train_gens = list(span_gens)
        if local:
            train_examples = channel.union([g.outputs["examples"] for g in span_gens])
        else:  # KubeflowV2DagRunner takes one channel per input: the spans' rows joined into one artifact
            union = examples_union([g.outputs["examples"] for g in span_gens]).with_id(EXAMPLES_UNION_ID)
            train_gens.append(union)
            train_examples = union.outputs["examples"]
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    if roots.schema is None:
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
    else:
        schema_gen = ImportSchemaGen(schema_file=roots.schema)
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
        examples=train_examples,
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
    if config.threshold is not None:
        trainer_config[THRESHOLD_KEY] = config.threshold
    tuners = []
    if config.tune_budget_seconds is not None:
        tuners.append(Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=trainer_pb2.TrainArgs(splits=[cfg.TRAIN_SPLIT]),
            eval_args=trainer_pb2.EvalArgs(splits=[cfg.VALIDATION_SPLIT]),
            custom_config={**trainer_config, "tune_budget_seconds": config.tune_budget_seconds},
        ))
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=[cfg.TRAIN_SPLIT]),
        eval_args=trainer_pb2.EvalArgs(splits=[cfg.VALIDATION_SPLIT]),
        hyperparameters=tuners[0].outputs["best_hyperparameters"] if tuners else None,
        custom_config=trainer_config,
    )
    # Runs whatever the Evaluator decides: an unblessed model's report still says what it found.
    factors = ChurnFactors(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                           label_key=config.label_key, code_fingerprint=factors_fingerprint)
    # Beside the Evaluator: the same eval rows, the reference models fitted on the same training rows.
    reference = ReferenceModels(examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
                                label_key=config.label_key, slice_keys=json.dumps(list(slice_keys)),
                                code_fingerprint=reference_fingerprint)
    baselines = {MODEL_KEY: Channel(type=standard_artifacts.Model),
                 BLESSING_KEY: Channel(type=standard_artifacts.ModelBlessing)}
    if local:
        model_resolver = Resolver(strategy_class=LatestBlessedOtherModelStrategy,
                                  **baselines, **{CANDIDATE_KEY: trainer.outputs["model"]})
    else:
        model_resolver = Resolver(strategy_class=LatestBlessedModelStrategy, **baselines)
    model_resolver = model_resolver.with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[cfg.EVAL_SPLIT],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs[MODEL_KEY],
        eval_config=build_eval_config(config.label_key, slice_keys, config.min_auc, config.threshold),
    ).with_id("Evaluator")
    blessing = evaluator.outputs["blessing"]
    gates = []
    if config.require_beat_reference:
        gates.append(ReferenceGate(model=trainer.outputs["model"], model_blessing=blessing,
                                   reference=reference.outputs["reference"]))
        blessing = gates[0].outputs["blessing"]
    # A model that flags no eval churner at its own decision threshold is not pushed (pipeline/recall_gate.py).
    gates.append(RecallGate(model=trainer.outputs["model"], evaluation=evaluator.outputs["evaluation"],
                            model_blessing=blessing, code_fingerprint=recall_gate_fingerprint).with_id(RECALL_GATE_ID))
    blessing = gates[-1].outputs["blessing"]
    # The serving check (InfraValidator's job) serves the candidate with our model server and holds
    # the stamped copy, with its warmup requests, that the Pusher pushes: TFX's Pusher given
    # `infra_blessing` and no `model` pushes that copy, and only when both blessings say so.
    serving_check = ServingCheck(model=trainer.outputs["model"], statistics=statistics_gen.outputs["statistics"],
                                 id_keys=json.dumps(list(config.id_keys))).with_id(SERVING_CHECK_ID)
    pusher = (AtomicPusher if local else Pusher)(
        infra_blessing=serving_check.outputs["blessing"],
        model_blessing=blessing,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=roots.push_base)
        ),
    ).with_id(PUSHER_ID)
    return tfx_pipeline.Pipeline(
        pipeline_name=cfg.PIPELINE_NAME,
        pipeline_root=roots.pipeline_root,
        components=[
            *train_gens, example_gen, statistics_gen, schema_gen, example_validator, gate,
            transform, *tuners, trainer, factors, reference, model_resolver, evaluator, *gates, serving_check, pusher,
        ],
        enable_cache=True,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(roots.metadata) if local else None,
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
