"""The Keras model's architecture and compile settings, as the design fixes them."""
from __future__ import annotations

import pytest
import tensorflow as tf

from modules import features, hparams
from modules.model import CROSS_ENTROPY, build_model


def test_architecture_is_256_64_16_relu_then_one_sigmoid() -> None:
    model = build_model(["Age", "Total_Spend"], {"Gender": 4})
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [layer.units for layer in dense] == [256, 64, 16, 1]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "relu", "sigmoid"]
    assert hparams.HIDDEN_UNITS == (256, 64, 16)


def test_inputs_are_the_transformed_features_and_output_is_one_probability() -> None:
    model = build_model(["Age", "Total_Spend"], {"Gender": 4})
    assert set(model.input) == {features.transformed_name(k) for k in ("Age", "Total_Spend", "Gender")}
    assert model.input[features.transformed_name("Gender")].dtype == tf.int64
    out = model({features.transformed_name("Age"): tf.zeros([3, 1]),
                 features.transformed_name("Total_Spend"): tf.zeros([3, 1]),
                 features.transformed_name("Gender"): tf.constant([[0], [3], [1]], tf.int64)})
    assert out.shape == (3, 1) and bool(tf.reduce_all((out > 0) & (out < 1)))


def test_compiled_with_adam_binary_crossentropy_and_binary_accuracy() -> None:
    model = build_model(["Age"], {})
    assert isinstance(model.optimizer, tf.keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(hparams.LEARNING_RATE)
    assert isinstance(model.loss, tf.keras.losses.BinaryCrossentropy)
    model.evaluate({features.transformed_name("Age"): tf.zeros([2, 1])}, tf.constant([[0], [1]]), verbose=0)
    assert "binary_accuracy" in model.metrics_names


def test_dropout_follows_each_relu_layer_and_l2_penalises_every_kernel() -> None:
    model = build_model(["Age"], {"Gender": 4}, dropout=0.3, l2=1e-4)
    kinds = [type(layer).__name__ for layer in model.layers if isinstance(layer, (tf.keras.layers.Dense,
                                                                               tf.keras.layers.Dropout))]
    assert kinds == ["Dense", "Dropout"] * 3 + ["Dense"]
    assert all(layer.rate == 0.3 for layer in model.layers if isinstance(layer, tf.keras.layers.Dropout))
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [float(layer.kernel_regularizer.l2) for layer in dense] == pytest.approx([1e-4] * 4)
    assert len(model.losses) == 4


def test_no_dropout_layer_and_no_penalty_at_zero() -> None:
    model = build_model(["Age"], {}, dropout=0.0, l2=0.0)
    assert not any(isinstance(layer, tf.keras.layers.Dropout) for layer in model.layers)
    assert model.losses == []


def test_normalization_layer_follows_each_relu_layer_before_its_dropout() -> None:
    model = build_model(["Age"], {"Gender": 4}, dropout=0.2, normalization="batch")
    kinds = [type(layer).__name__ for layer in model.layers if isinstance(layer, (
        tf.keras.layers.Dense, tf.keras.layers.Dropout, tf.keras.layers.BatchNormalization))]
    assert kinds == ["Dense", "BatchNormalization", "Dropout"] * 3 + ["Dense"]


@pytest.mark.parametrize("kwargs,message", [({"dropout": 1.0}, "dropout must be in"), ({"dropout": -0.1}, "dropout"),
                                            ({"l2": -1e-4}, "l2 must be >= 0"),
                                            ({"normalization": "group"}, "normalization must be one of")])
def test_bad_regularisation_is_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(["Age"], {}, **kwargs)


def test_cross_entropy_metric_is_the_loss_without_the_l2_penalty() -> None:
    x, y = {features.transformed_name("Age"): tf.constant([[0.5], [-1.0], [2.0]])}, tf.constant([[0], [1], [1]])
    penalised = build_model(["Age"], {}, l2=1e-2).evaluate(x, y, verbose=0, return_dict=True)
    assert penalised[CROSS_ENTROPY] < penalised["loss"]
    plain = build_model(["Age"], {}, l2=0.0).evaluate(x, y, verbose=0, return_dict=True)
    assert plain[CROSS_ENTROPY] == pytest.approx(plain["loss"], rel=1e-5)
