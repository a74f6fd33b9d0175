"""Serving signatures exported with the model; all three share one Transform graph and one model.

- `serving_default`: one named input per raw feature, a scalar per row, so REST clients send
  `{"instances": [{"Age": 30, "Gender": "Male", ...}]}`; outputs `churn_probability` and `churn`.
- `serving_tf_example`: serialized tf.Examples (Evaluator, batch scoring); same outputs.
- `transform_features`: serialized tf.Examples -> transformed features including the label (TFMA).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from modules import features


def make_serving_signatures(
    model: tf.keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    label_key: str,
    id_keys: Iterable[str],
) -> dict[str, Any]:
    """Concrete functions for `tf.saved_model.save(..., signatures=...)`."""
    # Attached as an attribute so the vocabulary assets and tables are saved with the model.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    excluded = {label_key, *id_keys}
    serving_spec = {k: v for k, v in raw_spec.items() if k not in excluded}
    label_xf = features.transformed_name(label_key)

    def predict(raw_features: dict[str, Any]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        transformed.pop(label_xf, None)
        probability = tf.reshape(model(transformed), [-1])
        churn = tf.cast(probability >= features.DECISION_THRESHOLD, tf.int64)
        return {features.PROBABILITY_OUTPUT: probability, features.CLASS_OUTPUT: churn}

    @tf.function
    def serve_raw(raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return predict({k: _as_parsed(raw[k], serving_spec[k]) for k in serving_spec})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_example(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, serving_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    raw_inputs = {k: tf.TensorSpec([None], spec.dtype, name=k) for k, spec in serving_spec.items()}
    return {
        "serving_default": serve_raw.get_concrete_function(raw_inputs),
        "serving_tf_example": serve_tf_example.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }


def _as_parsed(column: tf.Tensor, spec: Any) -> Any:
    """One scalar per row -> the tensor `tf.io.parse_example` would give for this column's spec."""
    if isinstance(spec, tf.io.VarLenFeature):
        rows = tf.shape(column, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
        return tf.sparse.SparseTensor(indices, column, [rows, 1])
    return tf.reshape(column, [-1, *spec.shape])
