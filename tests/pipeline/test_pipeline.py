"""create_pipeline wiring: components, order, gate before Transform, splits, and the atomic Pusher."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import CURATED_SCHEMA, PipelineConfig
from pipeline.pipeline import create_pipeline
from pipeline.pusher import AtomicPusherExecutor


def build(tmp_path: Path, schema: Path | None = CURATED_SCHEMA, fingerprint: str = "abc"):
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    pipeline = create_pipeline(config, tmp_path / "data", schema, ["Gender"], code_fingerprint=fingerprint)
    return config, {c.id: c for c in pipeline.components}


def test_components_in_a_valid_order(tmp_path: Path) -> None:
    config = PipelineConfig(output=tmp_path / "out", serving_dir=tmp_path / "serving")
    pipeline = create_pipeline(config, tmp_path / "data", CURATED_SCHEMA, [], code_fingerprint="x")
    order = [c.id for c in pipeline.components]
    assert sorted(order) == sorted([
        "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataValidationGate",
        "Transform", "Trainer", "latest_blessed_model_resolver", "Evaluator", "Pusher",
    ])
    chain = ["CsvExampleGen", "StatisticsGen", "ExampleValidator", "DataValidationGate", "Transform", "Trainer",
             "Evaluator", "Pusher"]
    assert [order.index(c) for c in chain] == sorted(order.index(c) for c in chain)
    assert pipeline.enable_cache
    assert pipeline.pipeline_info.pipeline_root == str(config.pipeline_root)


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


def test_pusher_is_atomic_and_targets_the_model_base_path(tmp_path: Path) -> None:
    config, components = build(tmp_path)
    pusher = components["Pusher"]
    assert pusher.executor_spec.executor_class is AtomicPusherExecutor
    destination = json.loads(pusher.exec_properties["push_destination"])
    assert destination["filesystem"]["base_directory"] == str(tmp_path / "serving" / "customer-model")
    assert "model_blessing" in pusher.inputs


def test_evaluator_skips_comparing_a_model_with_itself(tmp_path: Path) -> None:
    from tfx.types import standard_artifacts

    from pipeline.evaluator import SelfAwareEvaluatorExecutor, is_same_model

    _, components = build(tmp_path)
    assert components["Evaluator"].executor_spec.executor_class is SelfAwareEvaluatorExecutor
    model, other = standard_artifacts.Model(), standard_artifacts.Model()
    model.id, other.id = 7, 8
    assert is_same_model({"model": [model], "baseline_model": [model]})
    assert not is_same_model({"model": [model], "baseline_model": [other]})
    assert not is_same_model({"model": [model]})
