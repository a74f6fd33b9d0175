"""Integrated gradients on the real Keras model: exact where the answer is known, complete where it is not."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from modules import attribution, features, hparams
from modules.model import build_model, encoder, logit, model_layout
from modules.runtime import skip_autograph_for_tf_keras

NUMERIC = ["Age", "Total_Spend"]
SIZES = {"Gender": 4, "Promotion_Response": 3}
RAW_KEYS = sorted([*NUMERIC, *SIZES])


def customers(rows: int, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    batch = {features.transformed_name(k): tf.constant(rng.normal(size=(rows, 1)), tf.float32) for k in NUMERIC}
    for key, size in SIZES.items():
        batch[features.transformed_name(key)] = tf.constant(rng.integers(0, size, (rows, 1)), tf.int64)
    return batch


def trained_model(hidden_units: tuple[int, ...], **regularisation: float | str) -> tf.keras.Model:
    """A few epochs on a known non-linear rule, so the relu layers are far from their initial state.
    `regularisation`: build_model's dropout / l2 / normalization (default: the trained model's, modules.hparams)."""
    skip_autograph_for_tf_keras()
    tf.keras.utils.set_random_seed(3)
    model = build_model(NUMERIC, SIZES, hidden_units=hidden_units, **regularisation)
    x = customers(2000, seed=1)
    age, spend = x["Age_xf"].numpy().ravel(), x["Total_Spend_xf"].numpy().ravel()
    gender, promotion = x["Gender_xf"].numpy().ravel(), x["Promotion_Response_xf"].numpy().ravel()
    score = 1.5 * np.tanh(2 * age) - spend * (gender == 2) + 0.8 * (promotion == 1)
    y = (np.random.default_rng(2).random(2000) < 1 / (1 + np.exp(-2 * score))).astype(int)
    model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    return model


def test_layout_read_back_from_the_model_is_the_one_it_was_built_with() -> None:
    model = build_model(NUMERIC, SIZES)
    assert model_layout(model, RAW_KEYS) == [("Age", 1), ("Total_Spend", 1), ("Gender", 4), ("Promotion_Response", 3)]
    assert encoder(model)(customers(5)).shape == (5, 2 + 4 + 3)


def test_logit_of_the_encoded_vector_is_the_models_log_odds() -> None:
    model = trained_model((16, 8))
    batch = customers(50, seed=4)
    probability = model(batch).numpy().ravel()
    log_odds = logit(model, encoder(model)(batch)).numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), probability, rtol=1e-5, atol=1e-6)


def test_logit_follows_a_model_trained_with_dropout_and_l2() -> None:
    model = trained_model((16, 8), dropout=0.3, l2=1e-4)
    assert any(isinstance(layer, tf.keras.layers.Dropout) for layer in model.layers)
    batch = customers(50, seed=4)
    probability = model(batch, training=False).numpy().ravel()
    log_odds = logit(model, encoder(model)(batch)).numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), probability, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalization", [hparams.BATCH_NORMALIZATION, hparams.LAYER_NORMALIZATION])
def test_logit_and_attributions_follow_a_normalization_layer(normalization: str) -> None:
    model = trained_model((16, 8), normalization=normalization)
    layer_type = {hparams.BATCH_NORMALIZATION: tf.keras.layers.BatchNormalization,
                  hparams.LAYER_NORMALIZATION: tf.keras.layers.LayerNormalization}[normalization]
    assert sum(isinstance(layer, layer_type) for layer in model.layers) == 2
    batch = customers(50, seed=4)
    encoded = encoder(model)(batch)
    log_odds = logit(model, encoded).numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-log_odds)), model(batch, training=False).numpy().ravel(),
                               rtol=1e-5, atol=1e-6)
    model.tft_layer = tf.keras.layers.Lambda(lambda x: x)  # tracked after the output, as the signatures' one is
    np.testing.assert_allclose(logit(model, encoded).numpy(), log_odds)
    layout = model_layout(model, RAW_KEYS)
    per_feature = attribution.feature_attributions(lambda e: logit(model, e), encoded, layout)
    total = tf.add_n(list(per_feature.values())).numpy()
    reference = logit(model, attribution.baseline_vector(layout)[None, :]).numpy()
    np.testing.assert_allclose(total, log_odds - reference, atol=0.05)


def test_linear_model_attributions_are_weight_times_distance_from_the_baseline() -> None:
    model = build_model(NUMERIC, SIZES, hidden_units=())  # logit = w . encoded + b: IG is exact
    batch = customers(20, seed=5)
    found = attribution.feature_attributions(lambda e: logit(model, e), encoder(model)(batch),
                                             model_layout(model, RAW_KEYS))
    weights = model.layers[-1].kernel.numpy().ravel()  # [Age, Total_Spend, Gender x 4, Promotion_Response x 3]
    np.testing.assert_allclose(found["Age"].numpy(), weights[0] * batch["Age_xf"].numpy().ravel(), atol=1e-5)
    np.testing.assert_allclose(found["Total_Spend"].numpy(), weights[1] * batch["Total_Spend_xf"].numpy().ravel(),
                               atol=1e-5)
    gender = batch["Gender_xf"].numpy().ravel()
    np.testing.assert_allclose(found["Gender"].numpy(), weights[2 + gender] - weights[2], atol=1e-5)
    promotion = batch["Promotion_Response_xf"].numpy().ravel()
    np.testing.assert_allclose(found["Promotion_Response"].numpy(), weights[6 + promotion] - weights[6], atol=1e-5)


def test_attributions_are_complete_on_a_trained_relu_model() -> None:
    model = trained_model((256, 64, 16))
    layout = model_layout(model, RAW_KEYS)
    batch = customers(300, seed=6)
    found = attribution.feature_attributions(lambda e: logit(model, e), encoder(model)(batch), layout)
    total = np.sum([v.numpy() for v in found.values()], axis=0)
    baseline = logit(model, attribution.baseline_vector(layout)[None, :]).numpy()
    expected = logit(model, encoder(model)(batch)).numpy() - baseline
    assert np.abs(expected).mean() > 0.5  # the customers really differ from the baseline
    np.testing.assert_allclose(total, expected, atol=0.03)
    # Fewer steps are measurably less exact: the tolerance above is not met by accident.
    coarse = attribution.feature_attributions(lambda e: logit(model, e), encoder(model)(batch), layout, steps=4)
    assert np.abs(np.sum([v.numpy() for v in coarse.values()], axis=0) - expected).max() > 0.03


def test_a_customer_at_the_baseline_gets_zero_for_every_feature() -> None:
    model = trained_model((16, 8))
    at_baseline = {k: tf.zeros([1, 1], v.dtype) for k, v in customers(1).items()}  # z = 0, vocabulary index 0
    found = attribution.feature_attributions(lambda e: logit(model, e), encoder(model)(at_baseline),
                                             model_layout(model, RAW_KEYS))
    assert all(v.numpy().tolist() == [0.0] for v in found.values())


@pytest.mark.parametrize("steps", [1, 8, 64])
def test_block_matrix_sums_each_features_columns(steps: int) -> None:
    layout = [("a", 1), ("b", 3), ("c", 2)]
    matrix = attribution.block_matrix(layout).numpy()
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    assert attribution.baseline_vector(layout).numpy().tolist() == [0, 1, 0, 0, 1, 0]
    linear = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    encoded = tf.constant([[2.0, 0.0, 0.0, 1.0, 0.0, 1.0]])
    per_column = attribution.integrated_gradients(lambda e: tf.linalg.matvec(e, linear), encoded,
                                                  attribution.baseline_vector(layout), steps)
    assert per_column.numpy().tolist() == [[2.0, -2.0, 0.0, 4.0, -5.0, 6.0]]
