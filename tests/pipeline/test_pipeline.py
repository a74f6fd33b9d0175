"""create_pipeline wiring: components, order, gate before Transform, splits, and the atomic Pusher."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import CURATED_SCHEMA, PipelineConfig
from pipeline.eval_config import CLASS_COUNTS
from pipeline.pipeline import TUNER_FN, Roots, create_pipeline
from pipeline.pusher import AtomicPusherExecutor


def local_roots(config: PipelineConfig, tmp_path: Path, schema: Path | None = CURATED_SCHEMA) -> Roots:
    return Roots.local(config, tmp_path / "data", schema)


def build(tmp_path: Path, schema: Path | None = CURATED_SCHEMA, fingerprint: str = "abc"):
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    pipeline = create_pipeline(config, local_roots(config, tmp_path, schema), ["Gender"], code_fingerprint=fingerprint)
    return config, {c.id: c for c in pipeline.components}


def test_components_in_a_valid_order(tmp_path: Path) -> None:
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x")
    order = [c.id for c in pipeline.components]
    assert sorted(order) == sorted([
        "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataValidationGate",
        "Transform", "Trainer", "ChurnFactors", "ReferenceModels", "latest_blessed_model_resolver", "Evaluator",
        "RecallGate", "ServingCheck",
        "Pusher",
    ])
    chain = ["CsvExampleGen", "StatisticsGen", "ExampleValidator", "DataValidationGate", "Transform", "Trainer",
             "Evaluator", "RecallGate", "Pusher"]
    assert [order.index(c) for c in chain] == sorted(order.index(c) for c in chain)
    assert order.index("Trainer") < order.index("ChurnFactors")
    assert order.index("Trainer") < order.index("ReferenceModels")
    assert pipeline.enable_cache
    assert pipeline.pipeline_info.pipeline_root == str(config.pipeline_root)


@pytest.mark.parametrize("name", ["ChurnFactors", "ReferenceModels"])
def test_analyses_read_the_raw_examples_and_the_trained_model_not_the_blessing(tmp_path: Path, name: str) -> None:
    _, components = build(tmp_path)
    analysis = components[name]
    assert analysis.inputs["examples"] is components["CsvExampleGen"].outputs["examples"]
    assert analysis.inputs["model"] is components["Trainer"].outputs["model"]
    assert analysis.exec_properties["label_key"] == "Target_Churn"


def test_reference_models_read_the_eval_slices_and_recall_gate_the_evaluators_blessing(tmp_path: Path) -> None:
    _, components = build(tmp_path)
    reference = components["ReferenceModels"]
    assert json.loads(reference.exec_properties["slice_keys"]) == ["Gender"]
    assert "ReferenceGate" not in components  # off by default: RecallGate reads the Evaluator's blessing
    recall = components["RecallGate"]
    assert recall.inputs["model_blessing"] is components["Evaluator"].outputs["blessing"]
    assert recall.inputs["evaluation"] is components["Evaluator"].outputs["evaluation"]
    assert recall.inputs["model"] is components["Trainer"].outputs["model"]
    assert components["Pusher"].inputs["model_blessing"] is recall.outputs["blessing"]


def test_require_beat_reference_puts_the_reference_gate_between_evaluator_and_pusher(tmp_path: Path) -> None:
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving", require_beat_reference=True)
    pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x",
                               reference_fingerprint="r1", recall_gate_fingerprint="g1")
    components = {c.id: c for c in pipeline.components}
    gate = components["ReferenceGate"]
    assert gate.inputs["model_blessing"] is components["Evaluator"].outputs["blessing"]
    assert gate.inputs["reference"] is components["ReferenceModels"].outputs["reference"]
    assert gate.inputs["model"] is components["Trainer"].outputs["model"]
    assert components["RecallGate"].inputs["model_blessing"] is gate.outputs["blessing"]
    assert components["Pusher"].inputs["model_blessing"] is components["RecallGate"].outputs["blessing"]
    assert components["ReferenceModels"].exec_properties["code_fingerprint"] == "r1"
    assert components["RecallGate"].exec_properties["code_fingerprint"] == "g1"


def test_transform_waits_for_the_data_validation_gate(tmp_path: Path) -> None:
    _, components = build(tmp_path)
    assert components["DataValidationGate"] in components["Transform"].upstream_nodes


def test_infer_schema_uses_schemagen(tmp_path: Path) -> None:
    _, components = build(tmp_path, schema=None)
    assert "SchemaGen" in components and "ImportSchemaGen" not in components


def test_splits_train_fits_validation_stops_eval_judges(tmp_path: Path) -> None:
    _, components = build(tmp_path)
    split_config = json.loads(components["CsvExampleGen"].exec_properties["output_config"])["split_config"]
    assert [(s["name"], s["hash_buckets"]) for s in split_config["splits"]] == [
        ("train", 6), ("validation", 2), ("eval", 2)]
    trainer = components["Trainer"].exec_properties
    assert json.loads(trainer["train_args"])["splits"] == ["train"]
    assert json.loads(trainer["eval_args"])["splits"] == ["validation"]
    assert json.loads(components["Evaluator"].exec_properties["example_splits"]) == ["eval"]
    assert json.loads(components["Transform"].exec_properties["splits_config"])["analyze"] == ["train"]


def test_code_fingerprint_reaches_transform_and_trainer_so_edits_bust_the_cache(tmp_path: Path) -> None:
    _, first = build(tmp_path, fingerprint="one")
    _, second = build(tmp_path, fingerprint="two")
    for name in ("Transform", "Trainer"):
        a = json.loads(first[name].exec_properties["custom_config"])
        b = json.loads(second[name].exec_properties["custom_config"])
        assert a["code_fingerprint"] == "one" and b["code_fingerprint"] == "two"
        assert a["label_key"] == "Target_Churn" and a["id_keys"] == ["Customer_ID"]


def test_churn_factors_cache_key_carries_its_own_code_fingerprint(tmp_path: Path) -> None:
    """Editing pipeline/factors.py must re-run ChurnFactors, but not Transform or the Trainer."""
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    keys = []
    for factors_code in ("f1", "f2"):
        pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="m",
                                   factors_fingerprint=factors_code)
        components = {c.id: c for c in pipeline.components}
        keys.append(components["ChurnFactors"].exec_properties["code_fingerprint"])
        assert json.loads(components["Trainer"].exec_properties["custom_config"])["code_fingerprint"] == "m"
    assert keys == ["f1", "f2"]


def test_fingerprints_cover_the_code_behind_each_cached_component() -> None:
    from pipeline import fingerprint

    names = {p.name for p in fingerprint.FACTORS_CODE}
    assert {"factors.py", "factor_analysis.py", "trainer.py"} <= names
    assert all(p.is_file() for p in fingerprint.FACTORS_CODE)
    assert "factors.py" not in {p.name for p in fingerprint.MODULE_CODE}
    reference = {p.name for p in fingerprint.REFERENCE_CODE}
    assert {"reference.py", "reference_models.py", "trainer.py"} <= reference
    assert all(p.is_file() for p in fingerprint.REFERENCE_CODE)
    recall = {p.name for p in fingerprint.RECALL_GATE_CODE}
    assert {"recall_gate.py", "run_summary.py", "threshold.py"} <= recall
    assert all(p.is_file() for p in fingerprint.RECALL_GATE_CODE)


def test_pusher_is_atomic_and_targets_the_model_base_path(tmp_path: Path) -> None:
    config, components = build(tmp_path)
    pusher = components["Pusher"]
    assert pusher.executor_spec.executor_class is AtomicPusherExecutor
    destination = json.loads(pusher.exec_properties["push_destination"])
    assert destination["filesystem"]["base_directory"] == str(tmp_path / "serving" / "customer-model")
    assert "model_blessing" in pusher.inputs


def test_pusher_pushes_only_the_served_and_stamped_model(tmp_path: Path) -> None:
    _, components = build(tmp_path)
    pusher, check = components["Pusher"], components["ServingCheck"]
    # No `model` input: TFX's Pusher then pushes the InfraBlessing's stamped model (with warmup requests)
    assert "model" not in pusher.inputs and pusher.inputs["infra_blessing"] is check.outputs["blessing"]
    assert check.inputs["model"] is components["Trainer"].outputs["model"]
    assert check.inputs["statistics"] is components["StatisticsGen"].outputs["statistics"]
    assert json.loads(check.exec_properties["id_keys"]) == ["Customer_ID"]


def test_the_evaluator_baseline_comes_from_the_latest_blessed_other_model_resolver(tmp_path: Path) -> None:
    from tfx.dsl.components.common.resolver import RESOLVER_STRATEGY_CLASS

    from pipeline.baseline import MODEL_KEY, LatestBlessedOtherModelStrategy

    _, components = build(tmp_path)
    resolver, evaluator = components["latest_blessed_model_resolver"], components["Evaluator"]
    assert resolver.exec_properties[RESOLVER_STRATEGY_CLASS] is LatestBlessedOtherModelStrategy
    assert components["Trainer"] in resolver.upstream_nodes  # through the candidate channel
    assert evaluator.inputs["baseline_model"] is resolver.outputs[MODEL_KEY]


def test_only_the_pusher_skips_the_cache(tmp_path: Path) -> None:
    from pipeline.pipeline import PUSHER_ID, compile_pipeline

    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    ir = compile_pipeline(create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x"))
    caching = {n.pipeline_node.node_info.id: n.pipeline_node.execution_options.caching_options.enable_cache
               for n in ir.nodes}
    assert caching.pop(PUSHER_ID) is False
    assert caching and all(caching.values())


def test_a_given_threshold_reaches_the_trainer_and_the_evaluators_grid_but_not_transform(tmp_path: Path) -> None:
    from modules.threshold import CUSTOM_CONFIG_KEY

    def thresholds(components: dict) -> tuple[dict, dict, list[float]]:
        eval_config = components["Evaluator"].exec_properties["eval_config"]
        metrics = json.loads(eval_config)["metrics_specs"][0]["metrics"]
        grid = next(json.loads(m["config"])["thresholds"] for m in metrics
                    if m["class_name"] == CLASS_COUNTS)
        return (json.loads(components["Trainer"].exec_properties["custom_config"]),
                json.loads(components["Transform"].exec_properties["custom_config"]), grid)

    _, chosen = build(tmp_path)
    trainer, _, grid = thresholds(chosen)
    assert CUSTOM_CONFIG_KEY not in trainer and 0.1234 not in grid  # chosen on the validation split
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving", threshold=0.1234)
    given_pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="abc")
    given = {c.id: c for c in given_pipeline.components}
    trainer, transform, grid = thresholds(given)
    assert trainer[CUSTOM_CONFIG_KEY] == 0.1234 and 0.1234 in grid
    assert CUSTOM_CONFIG_KEY not in transform  # Transform's cache holds when only the threshold changes


def test_no_tuner_by_default(tmp_path: Path) -> None:
    _, components = build(tmp_path)
    assert "Tuner" not in components
    assert "hyperparameters" not in components["Trainer"].inputs


def test_tune_puts_the_tuner_between_transform_and_trainer(tmp_path: Path) -> None:
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving", tune_budget_seconds=42.0)
    pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x")
    components = {c.id: c for c in pipeline.components}
    tuner, trainer = components["Tuner"], components["Trainer"]
    assert tuner.inputs["examples"] is components["Transform"].outputs["transformed_examples"]
    assert tuner.inputs["transform_graph"] is components["Transform"].outputs["transform_graph"]
    assert trainer.inputs["hyperparameters"] is tuner.outputs["best_hyperparameters"]
    assert tuner.exec_properties["tuner_fn"] == TUNER_FN
    assert json.loads(tuner.exec_properties["custom_config"])["tune_budget_seconds"] == 42.0
    # The Tuner tunes on the Trainer's own splits: train fits, validation scores.
    assert tuner.exec_properties["train_args"] == trainer.exec_properties["train_args"]
    assert tuner.exec_properties["eval_args"] == trainer.exec_properties["eval_args"]
    order = [c.id for c in pipeline.components]
    assert order.index("Transform") < order.index("Tuner") < order.index("Trainer")


def test_a_windowed_run_trains_on_the_window_s_spans_and_judges_on_the_newest(tmp_path: Path) -> None:
    from pipeline.spans import SpanInputs, Window

    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    layouts = {n: tmp_path / f"layout-{n}" for n in (3, 4, 5)}
    window = SpanInputs(Window((3, 4), 5), layouts, "Customer_ID")
    pipeline = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x", spans=window)
    components = {c.id: c for c in pipeline.components}
    gens = {i: components[i] for i in ("CsvExampleGen_span_3", "CsvExampleGen_span_4", "CsvExampleGen")}
    assert {i: g.exec_properties["input_base"] for i, g in gens.items()} == {
        "CsvExampleGen_span_3": str(layouts[3]), "CsvExampleGen_span_4": str(layouts[4]),
        "CsvExampleGen": str(layouts[5])}
    single = create_pipeline(config, local_roots(config, tmp_path), [], code_fingerprint="x")
    assert len(components) == len(single.components) + 2  # one more ExampleGen per training span
    transform_inputs = components["Transform"].inputs["examples"]
    assert {c.producer_component_id for c in transform_inputs.channels} == {"CsvExampleGen_span_3",
                                                                           "CsvExampleGen_span_4"}
    for judge in ("StatisticsGen", "Evaluator", "ChurnFactors", "ReferenceModels"):
        assert components[judge].inputs["examples"].producer_component_id == "CsvExampleGen", judge


def test_a_windowed_run_for_kubeflow_joins_the_training_spans_into_one_transform_input(tmp_path: Path) -> None:
    """KubeflowV2DagRunner takes one channel per input: without local ML Metadata, Transform reads the
    ExamplesUnion of the training spans, not their channel union."""
    from pipeline.pipeline import EXAMPLES_UNION_ID, Roots
    from pipeline.spans import static_window_inputs

    window = static_window_inputs("gs://bucket/spans", 5, 2, "Customer_ID")
    roots = Roots("gs://bucket/root", "gs://bucket/spans", None, "gs://bucket/serving/customer-model")
    pipeline = create_pipeline(PipelineConfig(), roots, [], code_fingerprint="x", spans=window)
    components = {c.id: c for c in pipeline.components}
    union = components[EXAMPLES_UNION_ID]
    assert [union.inputs[f"examples_{i}"].producer_component_id for i in range(2)] == [
        "CsvExampleGen_span_3", "CsvExampleGen_span_4"]
    assert components["Transform"].inputs["examples"].producer_component_id == EXAMPLES_UNION_ID
    order = [c.id for c in pipeline.components]
    assert order.index("CsvExampleGen_span_4") < order.index(EXAMPLES_UNION_ID) < order.index("Transform")
    assert components["Evaluator"].inputs["examples"].producer_component_id == "CsvExampleGen"
