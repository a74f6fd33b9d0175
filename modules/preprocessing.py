"""Transform's `preprocessing_fn`: raw CSV columns -> model-ready tensors.

Behaviour on messy data (documented in docs/data.md):
- identifier columns are dropped; the model never sees them;
- numeric features are z-scored with the training mean and deviation; missing cells become 0, the mean;
- categorical (string) features get a vocabulary computed on the training split; missing cells and
  categories never seen in training map to one shared out-of-vocabulary index;
- the label becomes int64 1 when it equals the positive label (e.g. `1`, `Yes`, `True`), else 0.
Every output has shape [batch, 1].
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from modules import features


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """TFX Transform calls this with every raw column and the pipeline's `custom_config`."""
    label_key = custom_config["label_key"]
    keys = features.model_feature_keys(inputs, label_key, custom_config["id_keys"])
    outputs = {}
    for key in keys:
        if inputs[key].dtype == tf.string:
            text = _densify(inputs[key], default="")
            outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
                text,
                num_oov_buckets=features.VOCAB_OOV_BUCKETS,
                vocab_filename=features.vocabulary_name(key),
            )
        else:
            # z-scored with the mean and deviation of the values present; a missing value becomes 0,
            # i.e. the training mean. One analyzer pass (imputing first would need a second pass).
            scaled = tft.scale_to_z_score(tf.cast(inputs[key], tf.float32))
            outputs[features.transformed_name(key)] = _densify(scaled, default=0.0)
    outputs[features.transformed_name(label_key)] = encode_label(
        inputs[label_key], custom_config["positive_label"]
    )
    return outputs


def encode_label(label: Any, positive_label: str) -> tf.Tensor:
    """1 where the label equals `positive_label`, compared as text or as a number as the column is."""
    if label.dtype == tf.string:
        positive = tf.equal(_densify(label, default=""), positive_label)
    else:
        positive = tf.equal(tf.cast(_densify(label, default=0), tf.float64), float(positive_label))
    return tf.cast(positive, tf.int64)


def _densify(value: Any, default: Any) -> tf.Tensor:
    """[batch, 1] dense tensor; a sparse (sometimes-missing) column gets `default` where it is empty."""
    if isinstance(value, tf.sparse.SparseTensor):
        shaped = tf.sparse.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1])
        return tf.sparse.to_dense(shaped, default_value=tf.cast(default, value.dtype))
    return tf.reshape(value, [-1, 1])
