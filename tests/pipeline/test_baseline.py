"""`pipeline/baseline.py`: the baseline is the newest blessed model other than the candidate that reads the
candidate's inputs, and never a model ReferenceGate refused (its wiring into the pipeline:
tests/pipeline/test_pipeline.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from modules.features import TRANSFORM_FEATURES_SIGNATURE
from pipeline.baseline import (
    BLESSING_KEY,
    GATE_PROPERTY,
    MODEL_KEY,
    latest_blessed_other_model,
    model_inputs,
    write_gate_blessing,
)


def blessing_of(model_id: int, blessed: int, gate: bool = False) -> standard_artifacts.ModelBlessing:
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", blessed)
    if gate:
        blessing.set_int_custom_property(GATE_PROPERTY, 1)
    return blessing


def test_a_model_the_reference_gate_refused_is_never_the_baseline() -> None:
    models = [standard_artifacts.Model() for _ in range(3)]
    for i, model in enumerate(models, 1):
        model.id = i
    # Model 2: the Evaluator blessed it, ReferenceGate did not (so it was never pushed).
    blessings = [blessing_of(1, 1), blessing_of(1, 1, gate=True), blessing_of(2, 1), blessing_of(2, 0, gate=True)]
    assert latest_blessed_other_model(models, blessings, candidates=[models[2]])[MODEL_KEY] == [models[0]]
    blessings[3] = blessing_of(2, 1, gate=True)
    assert latest_blessed_other_model(models, blessings, candidates=[models[2]])[MODEL_KEY] == [models[1]]


def test_baseline_is_the_latest_blessed_model_other_than_the_candidate() -> None:
    models = [standard_artifacts.Model() for _ in range(4)]
    for i, model in enumerate(models, 1):
        model.id = i
    blessings = [blessing_of(1, 1), blessing_of(2, 1), blessing_of(3, 0), blessing_of(4, 1)]
    chosen = latest_blessed_other_model(models, blessings, candidates=[models[3]])  # 4 is the candidate
    assert [m.id for m in chosen[MODEL_KEY]] == [2]  # 3 was not blessed
    assert chosen[BLESSING_KEY] == [blessings[1]]
    assert latest_blessed_other_model(models, blessings, candidates=[models[2]])[MODEL_KEY] == [models[3]]
    assert latest_blessed_other_model(models[:1], blessings[:1], candidates=models[:1]) == {MODEL_KEY: [],
                                                                                            BLESSING_KEY: []}


@pytest.mark.parametrize("verdict", [True, False])
def test_a_gate_blessing_carries_the_evaluators_uris_its_verdict_and_marker(tmp_path: Path, verdict: bool) -> None:
    model = standard_artifacts.Model()
    model.id = 7
    evaluator = standard_artifacts.ModelBlessing()
    evaluator.set_string_custom_property("current_model", "/m/7")
    evaluator.set_string_custom_property("baseline_model", "/m/3")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path)
    write_gate_blessing(blessing, model, evaluator, verdict)
    assert blessing.get_string_custom_property("current_model") == "/m/7"
    assert blessing.get_string_custom_property("baseline_model") == "/m/3"
    assert blessing.get_int_custom_property("current_model_id") == 7
    assert blessing.get_int_custom_property("blessed") == int(verdict)
    assert blessing.get_int_custom_property(GATE_PROPERTY) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["BLESSED" if verdict else "NOT_BLESSED"]
    # the resolver reads it as a gate's blessing: a refused model is never the baseline
    assert latest_blessed_other_model([model], [blessing], candidates=[])[MODEL_KEY] == ([model] if verdict else [])


def export_model(uri: Path, raw: dict[str, tf.DType], label: str) -> standard_artifacts.Model:
    """A Trainer-like Model artifact: `serving_default` on `raw` inputs, `transform_features` giving
    `<name>_xf` per raw input and the label, in `<uri>/Format-Serving` (as the Trainer writes it)."""

    @tf.function(input_signature=[{k: tf.TensorSpec([None], d, name=k) for k, d in raw.items()}])
    def serve(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"churn_probability": tf.zeros_like(tf.strings.length(tf.strings.as_string(inputs[next(iter(raw))])),
                                                   tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return {f"{k}_xf": tf.zeros_like(examples, tf.float32) for k in [*raw, label]}

    module = tf.Module()
    tf.saved_model.save(module, str(uri / "Format-Serving"),
                        signatures={"serving_default": serve, TRANSFORM_FEATURES_SIGNATURE: transform})
    model = standard_artifacts.Model()
    model.uri = str(uri)
    return model


def test_a_blessed_model_reading_other_inputs_is_skipped_for_the_newest_that_reads_the_same(tmp_path: Path) -> None:
    """The README's path: `make run` on the bundled data, then another CSV (other columns) in the same --output.
    The bundled model cannot score the new rows, so it is no baseline; an older model on the same columns is."""
    churn = {"Age": tf.int64, "Gender": tf.string}
    own = {"Age": tf.int64, "Plan": tf.string}
    models = [export_model(tmp_path / "1", own, "Churned"), export_model(tmp_path / "2", churn, "Target_Churn"),
              export_model(tmp_path / "3", own, "Churned")]
    for i, model in enumerate(models, 1):
        model.id = i
    assert model_inputs(models[0]) == model_inputs(models[2]) == frozenset(
        {f"in:Age:{tf.int64.as_datatype_enum}", f"in:Plan:{tf.string.as_datatype_enum}", "xf:Age_xf", "xf:Plan_xf",
         "xf:Churned_xf"})
    blessings = [blessing_of(1, 1), blessing_of(2, 1)]
    chosen = latest_blessed_other_model(models, blessings, candidates=[models[2]])
    assert chosen == {MODEL_KEY: [models[0]], BLESSING_KEY: [blessings[0]]}
    assert latest_blessed_other_model(models[1:], blessings[1:], candidates=[models[2]]) == {MODEL_KEY: [],
                                                                                             BLESSING_KEY: []}
    # the same columns with another label, or another type, are other inputs too
    relabelled = export_model(tmp_path / "4", churn, "Churned")
    retyped = export_model(tmp_path / "5", {"Age": tf.float32, "Gender": tf.string}, "Target_Churn")
    assert len({model_inputs(models[1]), model_inputs(relabelled), model_inputs(retyped)}) == 3
    # a candidate whose inputs cannot be read excludes nothing (the rule before)
    assert model_inputs(standard_artifacts.Model()) is None
    assert latest_blessed_other_model(models[:2], blessings, candidates=[standard_artifacts.Model()]) == {
        MODEL_KEY: [models[1]], BLESSING_KEY: [blessings[1]]}
