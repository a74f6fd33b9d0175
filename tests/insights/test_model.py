"""`insights/model.py`: which SavedModel version scoring loads, and a clear error where there is none."""
from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf

from insights.model import PREDICT_SIGNATURE, ScoringError, id_columns, resolve_version
from modules.features import PROBABILITY_OUTPUT, WITH_IDS_SIGNATURE


def test_the_newest_numeric_version_is_used_unless_a_version_is_given(tmp_path: Path) -> None:
    for version in ("9", "10", "11-partial", ".incoming-12"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").touch()
    (tmp_path / "13").mkdir()  # no SavedModel inside: not a version
    assert resolve_version(tmp_path) == tmp_path / "10"
    assert resolve_version(tmp_path / "9") == tmp_path / "9"
    with pytest.raises(ScoringError, match="no model at .*run the pipeline first"):
        resolve_version(tmp_path / "13")


def test_the_id_column_is_the_one_the_model_was_trained_with(tmp_path: Path) -> None:
    """A Telco-style run (`--id-columns customerID`) exports `serving_with_ids` with `customerID`: scoring
    takes that id by default instead of asking for `Customer_ID` (the file has none)."""
    features = {"tenure": tf.TensorSpec([None], tf.int64, name="tenure")}
    ids = {"customerID": tf.TensorSpec([None], tf.string, name="customerID")}

    class Model(tf.Module):
        @tf.function(input_signature=[features])
        def serve(self, inputs: dict) -> dict:
            return {PROBABILITY_OUTPUT: tf.cast(inputs["tenure"], tf.float32)}

        @tf.function(input_signature=[{**features, **ids}])
        def serve_with_ids(self, inputs: dict) -> dict:
            return {PROBABILITY_OUTPUT: tf.cast(inputs["tenure"], tf.float32), "customerID": inputs["customerID"]}

    model = Model()
    tf.saved_model.save(model, str(tmp_path / "ids"), signatures={PREDICT_SIGNATURE: model.serve,
                                                                  WITH_IDS_SIGNATURE: model.serve_with_ids})
    tf.saved_model.save(model, str(tmp_path / "plain"), signatures={PREDICT_SIGNATURE: model.serve})
    assert id_columns(tf.saved_model.load(str(tmp_path / "ids")).signatures) == ["customerID"]
    assert id_columns(tf.saved_model.load(str(tmp_path / "plain")).signatures) == []
