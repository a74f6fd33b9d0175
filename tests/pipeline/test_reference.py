"""ReferenceGate's blessing (`--require-beat-reference`) and the calibration-by-slice reader, without a TFX run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from pipeline import reference
from pipeline import reference_models as rm
from pipeline.baseline import GATE_PROPERTY
from tests.pipeline.test_run_summary import reference_record


def run_gate(tmp_path: Path, evaluator_blessed: int, worse: bool) -> standard_artifacts.ModelBlessing:
    """Run ReferenceGate's real executor on artifacts in tmp_path; returns the blessing it wrote."""
    model = standard_artifacts.Model()
    model.id, model.uri = 7, str(tmp_path / "model")
    evaluator = standard_artifacts.ModelBlessing()
    evaluator.uri = str(tmp_path / "evaluator")
    evaluator.set_int_custom_property("blessed", evaluator_blessed)
    evaluator.set_string_custom_property("current_model", model.uri)
    found = reference.ReferenceModelsArtifact()
    found.uri = str(tmp_path / "reference")
    Path(found.uri).mkdir()
    (Path(found.uri) / reference.REFERENCE_FILE).write_text(json.dumps(reference_record(worse=worse)))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "gate")
    Path(blessing.uri).mkdir()
    executor = reference.ReferenceGate.EXECUTOR_SPEC.executor_class()
    executor.Do({"model": [model], "model_blessing": [evaluator], "reference": [found]}, {"blessing": [blessing]}, {})
    return blessing


@pytest.mark.parametrize(("evaluator_blessed", "worse", "blessed"), [(1, False, 1), (1, True, 0), (0, False, 0)])
def test_gate_blesses_only_when_the_evaluator_did_and_no_reference_model_is_better(
        tmp_path: Path, evaluator_blessed: int, worse: bool, blessed: int) -> None:
    blessing = run_gate(tmp_path, evaluator_blessed, worse)
    assert blessing.get_int_custom_property("blessed") == blessed
    assert blessing.get_int_custom_property("current_model_id") == 7
    assert blessing.get_int_custom_property(GATE_PROPERTY) == 1
    assert blessing.get_string_custom_property("current_model") == str(tmp_path / "model")
    assert (Path(blessing.uri) / ("BLESSED" if blessed else "NOT_BLESSED")).exists()


def test_calibration_by_slice_groups_the_eval_rows_by_their_raw_values() -> None:
    rng = np.random.default_rng(0)
    n = 1_500
    genders = rng.choice(["Female", "Male"], n)
    scores = rng.uniform(size=n)
    labels = (rng.uniform(size=n) < scores).astype(int)
    serialized = []
    for i, gender in enumerate(genders):
        feature = {"Gender": tf.train.Feature(bytes_list=tf.train.BytesList(value=[gender.encode()]))}
        if i % 2:
            feature["Satisfaction_Score"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3]))
        serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    found = reference.calibration_by_slice(labels, scores, np.array(serialized, dtype=object),
                                           ["Gender", "Satisfaction_Score", "Absent"])
    assert found["overall"] == rm.calibration(labels, scores)
    assert set(found["slices"]) == {"Gender=Female", "Gender=Male", "Satisfaction_Score=0", "Satisfaction_Score=1",
                                    "Satisfaction_Score=2"}
    male = genders == "Male"
    assert found["slices"]["Gender=Male"] == rm.calibration(labels[male], scores[male])
    assert found["slices"]["Satisfaction_Score=1"]["rows"] == 250  # odd rows with i % 3 == 1
    assert found["slices"]["Gender=Male"]["ece"] is None  # fewer than 1,000 rows


def test_eval_scores_file_is_one_probability_column_that_the_drift_check_reads(tmp_path: Path) -> None:
    from monitoring import drift

    scores = np.array([0.0, 0.1234567, 0.5, 0.9999994, 1.0], dtype=np.float32)
    text = reference.eval_scores_csv(scores)
    assert text.splitlines() == ["churn_probability", "0.000000", "0.123457", "0.500000", "0.999999", "1.000000"]
    assert reference.eval_scores_path(str(tmp_path)) is None
    (tmp_path / reference.EVAL_SCORES_FILE).write_text(text)
    assert reference.eval_scores_path(str(tmp_path)) == str(tmp_path / reference.EVAL_SCORES_FILE)
    read = drift.read_eval_scores(tmp_path / reference.EVAL_SCORES_FILE)
    np.testing.assert_allclose(read, scores, atol=1e-6)
