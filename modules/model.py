"""The churn classifier: Dense 256 -> 64 -> 16 -> 1 over the transformed features. Pure, no I/O."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from modules import features, hparams


def build_model(
    numeric_keys: Sequence[str],
    vocabulary_sizes: Mapping[str, int],
    hidden_units: Sequence[int] = hparams.HIDDEN_UNITS,
    learning_rate: float = hparams.LEARNING_RATE,
) -> tf.keras.Model:
    """Keras model taking one [batch, 1] input per transformed feature.

    Args:
      numeric_keys: raw names of the numeric features (already z-scored by Transform).
      vocabulary_sizes: raw name -> number of indices (vocabulary + OOV) of each categorical feature.
      hidden_units: width of each relu layer.
      learning_rate: Adam's learning rate.
    Returns:
      A compiled model whose single output is P(churn) with shape [batch, 1].
    """
    inputs = {}
    encoded = []
    for key in sorted(numeric_keys):
        name = features.transformed_name(key)
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.float32)
        encoded.append(inputs[name])
    for key, size in sorted(vocabulary_sizes.items()):
        name = features.transformed_name(key)
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.int64)
        encoded.append(tf.keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(inputs[name]))
    x = tf.keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for units in hidden_units:
        x = tf.keras.layers.Dense(units, activation="relu")(x)
    output = tf.keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")],
    )
    return model
