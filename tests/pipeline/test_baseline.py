"""`pipeline/baseline.py`: the baseline is the newest blessed model other than the candidate, and never a model
ReferenceGate refused (its wiring into the pipeline: tests/pipeline/test_pipeline.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from tfx.types import standard_artifacts

from pipeline.baseline import BLESSING_KEY, GATE_PROPERTY, MODEL_KEY, latest_blessed_other_model, write_gate_blessing


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
