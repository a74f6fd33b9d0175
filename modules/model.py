"""The churn classifier: Dense 256 -> 64 -> 16 -> 1 over the transformed features. Pure, no I/O.

The Dense layers see one "encoded" vector: each numeric feature's z-score, then each categorical
feature's one-hot vector. `encoder`, `logit` and `model_layout` expose that vector and the logit
computed from it, which integrated gradients (modules/attribution.py) need; training never uses them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from modules import features, hparams

CROSS_ENTROPY = "cross_entropy"
"""Metric name of the binary cross-entropy without the L2 penalty (Keras logs `val_cross_entropy`)."""


def build_model(
    numeric_keys: Sequence[str],
    vocabulary_sizes: Mapping[str, int],
    hidden_units: Sequence[int] = hparams.HIDDEN_UNITS,
    learning_rate: float = hparams.LEARNING_RATE,
    dropout: float = hparams.DROPOUT,
    l2: float = hparams.L2,
    normalization: str = hparams.NORMALIZATION,
) -> tf.keras.Model:
    """Keras model taking one [batch, 1] input per transformed feature.

    Args:
      numeric_keys: raw names of the numeric features (already z-scored by Transform).
      vocabulary_sizes: raw name -> number of indices (vocabulary + OOV) of each categorical feature.
      hidden_units: width of each relu layer.
      learning_rate: Adam's learning rate.
      dropout: fraction of each relu layer's outputs dropped while training (0 adds no Dropout layer).
        Dropout is the identity at inference, so `logit` and `encoder` need not follow it.
      l2: L2 penalty on every Dense kernel, added to the loss (0 for none).
      normalization: one of hparams.NORMALIZATIONS: "none", or "batch" / "layer" for a BatchNormalization /
        LayerNormalization layer after each relu layer (before its dropout). `logit` follows them, in
        inference mode.
    Returns:
      A compiled model whose single output is P(churn) with shape [batch, 1].
    Raises:
      ValueError: dropout outside [0, 1), a negative l2 or an unknown normalization.
    """
    if normalization not in hparams.NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(hparams.NORMALIZATIONS)}, got {normalization!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if l2 < 0.0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    regularizer = tf.keras.regularizers.L2(l2) if l2 > 0.0 else None
    inputs = {}
    encoded = []
    for key, width in encoding_layout(numeric_keys, vocabulary_sizes):
        name = features.transformed_name(key)
        if key not in vocabulary_sizes:
            inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.float32)
            encoded.append(inputs[name])
        else:
            inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.int64)
            one_hot = tf.keras.layers.CategoryEncoding(num_tokens=width, output_mode="one_hot",
                                                       name=_one_hot_name(name))
            encoded.append(one_hot(inputs[name]))
    x = tf.keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for units in hidden_units:
        x = tf.keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer)(x)
        if normalization == hparams.BATCH_NORMALIZATION:
            x = tf.keras.layers.BatchNormalization()(x)
        elif normalization == hparams.LAYER_NORMALIZATION:
            x = tf.keras.layers.LayerNormalization()(x)
        if dropout > 0.0:
            x = tf.keras.layers.Dropout(dropout, seed=hparams.SEED)(x)
    output = tf.keras.layers.Dense(1, activation="sigmoid", name="probability", kernel_regularizer=regularizer)(x)
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.BinaryCrossentropy(),
        # The loss includes the L2 penalty; CROSS_ENTROPY is the data's fit alone, comparable across penalties.
        metrics=[tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc"),
                 tf.keras.metrics.BinaryCrossentropy(name=CROSS_ENTROPY)],
    )
    return model


def encoding_layout(numeric_keys: Sequence[str], vocabulary_sizes: Mapping[str, int]) -> list[tuple[str, int]]:
    """(raw key, width) of each block of the encoded vector, in order: numeric features sorted (width 1),
    then categorical ones sorted (width = vocabulary + OOV)."""
    return [(k, 1) for k in sorted(numeric_keys)] + sorted(vocabulary_sizes.items())


def model_layout(model: tf.keras.Model, raw_keys: Sequence[str]) -> list[tuple[str, int]]:
    """`encoding_layout` of a built model, read back from its inputs (`raw_keys`: names before Transform)."""
    numeric, sizes = [], {}
    for key in raw_keys:
        name = features.transformed_name(key)
        if name not in model.input:
            continue
        if model.input[name].dtype == tf.int64:
            sizes[key] = model.get_layer(_one_hot_name(name)).num_tokens
        else:
            numeric.append(key)
    return encoding_layout(numeric, sizes)


def encoder(model: tf.keras.Model) -> tf.keras.Model:
    """Transformed features -> the encoded vector [batch, width] the first Dense layer sees (`model`'s own layers)."""
    return tf.keras.Model(model.input, _head_layers(model)[0].input)


def logit(model: tf.keras.Model, encoded: tf.Tensor) -> tf.Tensor:
    """The model's churn log-odds [batch] for encoded vectors: every layer from the first Dense one on (Dense,
    normalization, dropout; in inference mode), without the final sigmoid."""
    *hidden, output = _head_layers(model)
    for layer in hidden:
        encoded = layer(encoded, training=False)
    return tf.reshape(tf.matmul(encoded, output.kernel) + output.bias, [-1])


def _head_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The chain of layers from the first Dense layer to the output Dense layer (a functional model lists its
    layers in order; layers tracked as attributes afterwards, such as the signatures' `tft_layer`, come last)."""
    layers = model.layers
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, tf.keras.layers.Dense)]
    return layers[dense[0]:dense[-1] + 1]


def _one_hot_name(transformed_name: str) -> str:
    return transformed_name + "_one_hot"
