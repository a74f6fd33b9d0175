"""Every exported signature, called on a model saved and loaded the way TF Serving loads it."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import schema_utils

from modules import features, threshold
from modules.model import build_model
from modules.signatures import WITH_IDS_SIGNATURE, make_serving_signatures
from modules.trainer import feature_layout
from tests.modules.conftest import CUSTOM_CONFIG, to_instances

ROWS = 8


def _trained_model(transform_run):  # type: ignore[no-untyped-def]
    """The designed model fitted for 2 epochs on the transform run's rows."""
    label_xf = features.transformed_name(features.LABEL_KEY)
    model = build_model(*feature_layout(transform_run.output, label_xf))
    x = {k: np.stack([np.asarray(r[k]).reshape(1) for r in transform_run.transformed])
         for k in transform_run.transformed[0] if k != label_xf}
    y = np.array([np.asarray(r[label_xf]).reshape(1) for r in transform_run.transformed])
    model.fit(x, y, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def loaded(transform_run, tmp_path_factory: pytest.TempPathFactory):
    output = transform_run.output
    model = _trained_model(transform_run)
    path = str(tmp_path_factory.mktemp("model") / "1")
    signatures = make_serving_signatures(model, output, features.LABEL_KEY, CUSTOM_CONFIG["id_keys"])
    tf.saved_model.save(model, path, signatures=signatures)
    return tf.saved_model.load(path), transform_run


def raw_columns(run, rows: slice) -> dict[str, tf.Tensor]:
    """One scalar per row per feature, as a REST client sends them (no id, no label)."""
    signature = run.raw_spec
    frame = run.raw.iloc[rows]
    out = {}
    for key, spec in signature.items():
        if key in (features.LABEL_KEY, *features.ID_KEYS):
            continue
        values = frame[key].fillna(frame[key].mode()[0]) if frame[key].isna().any() else frame[key]
        out[key] = tf.constant(values.astype(str) if spec.dtype == tf.string else values, dtype=spec.dtype)
    return out


def serialized_examples(run, rows: slice) -> tf.Tensor:
    coder = tft.coders.ExampleProtoCoder(schema_utils.schema_from_feature_spec(run.raw_spec))
    instances = to_instances(run.raw.iloc[rows], run.raw_spec)
    return tf.constant([coder.encode(i) for i in instances])


def test_serving_default_takes_one_named_scalar_per_raw_feature(loaded) -> None:
    model, run = loaded
    inputs = model.signatures["serving_default"].structured_input_signature[1]
    expected = set(run.raw_spec) - {features.LABEL_KEY, *features.ID_KEYS}
    assert set(inputs) == expected
    for key, spec in inputs.items():
        assert spec.shape.as_list() == [None] and spec.dtype == run.raw_spec[key].dtype
    outputs = model.signatures["serving_default"].structured_outputs
    assert set(outputs) == {features.PROBABILITY_OUTPUT, features.CLASS_OUTPUT}


def test_serving_default_returns_probability_and_class_per_row(loaded) -> None:
    model, run = loaded
    result = model.signatures["serving_default"](**raw_columns(run, slice(10, 10 + ROWS)))
    probability = result[features.PROBABILITY_OUTPUT].numpy()
    assert probability.shape == (ROWS,) and np.all((probability > 0) & (probability < 1))
    assert result[features.CLASS_OUTPUT].numpy().tolist() == (probability >= 0.5).astype(int).tolist()


def test_same_customer_gets_the_same_probability_through_every_signature(loaded) -> None:
    model, run = loaded
    rows = slice(10, 10 + ROWS)  # rows without missing values, so both encodings carry the same data
    raw = model.signatures["serving_default"](**raw_columns(run, rows))[features.PROBABILITY_OUTPUT]
    examples = model.signatures["serving_tf_example"](examples=serialized_examples(run, rows))
    np.testing.assert_allclose(examples[features.PROBABILITY_OUTPUT].numpy(), raw.numpy(), rtol=1e-6)


def test_transform_features_gives_tfma_the_transformed_label_and_features(loaded) -> None:
    model, run = loaded
    transformed = model.signatures["transform_features"](examples=serialized_examples(run, slice(0, ROWS)))
    label = transformed[features.transformed_name(features.LABEL_KEY)].numpy().reshape(-1)
    assert label.tolist() == run.raw[features.LABEL_KEY].iloc[:ROWS].tolist()
    age = transformed[features.transformed_name("Age")].numpy().reshape(-1)
    expected_age = [np.asarray(r[features.transformed_name("Age")]).reshape(-1)[0] for r in run.transformed[:ROWS]]
    np.testing.assert_allclose(age, expected_age, rtol=1e-5)  # includes the two imputed (missing) ages


def test_unknown_category_is_scored_not_rejected(loaded) -> None:
    model, run = loaded
    columns = raw_columns(run, slice(10, 12))
    columns["Gender"] = tf.constant(["Robot", "Male"])
    probability = model.signatures["serving_default"](**columns)[features.PROBABILITY_OUTPUT].numpy()
    assert probability.shape == (2,) and np.all(np.isfinite(probability))


def test_explain_takes_serving_defaults_inputs_and_gives_one_attribution_per_feature(loaded) -> None:
    model, run = loaded
    explain = model.signatures["explain"]
    assert explain.structured_input_signature == model.signatures["serving_default"].structured_input_signature
    model_features = features.model_feature_keys(run.raw_spec, features.LABEL_KEY, features.ID_KEYS)
    assert set(explain.structured_outputs) == {
        features.PROBABILITY_OUTPUT, *(features.attribution_name(k) for k in model_features)}
    for spec in explain.structured_outputs.values():
        assert spec.shape.as_list() == [None] and spec.dtype == tf.float32


def test_explain_gives_serving_defaults_probability_and_complete_attributions(loaded) -> None:
    model, run = loaded
    columns = raw_columns(run, slice(10, 10 + ROWS))
    explained = model.signatures["explain"](**columns)
    probability = explained.pop(features.PROBABILITY_OUTPUT).numpy()
    np.testing.assert_allclose(
        probability, model.signatures["serving_default"](**columns)[features.PROBABILITY_OUTPUT].numpy(), rtol=1e-6)
    # Completeness, with the baseline cancelled out: the difference between two customers' sums of
    # attributions is the difference of their log-odds.
    totals = np.sum([v.numpy() for v in explained.values()], axis=0)
    log_odds = np.log(probability / (1 - probability))
    np.testing.assert_allclose(totals - totals[0], log_odds - log_odds[0], atol=0.03)
    assert np.ptp(log_odds) > 0.05  # the customers' log-odds really differ


CALIBRATED_THRESHOLD = 0.35


@pytest.fixture(scope="module")
def plain_and_calibrated(transform_run, tmp_path_factory: pytest.TempPathFactory):
    """One trained model saved twice: without calibration (default threshold), and with a Platt scaling that
    changes every probability and the decision threshold CALIBRATED_THRESHOLD."""
    from modules.calibration import Platt

    output = transform_run.output
    model = _trained_model(transform_run)
    platt = Platt(scale=1.7, offset=-0.4, applied=True)
    saved = []
    for name, calibration, kwargs in (("plain", None, {}), ("calibrated", platt, {"threshold": CALIBRATED_THRESHOLD})):
        path = str(tmp_path_factory.mktemp(name) / "1")
        tf.saved_model.save(model, path, signatures=make_serving_signatures(
            model, output, features.LABEL_KEY, CUSTOM_CONFIG["id_keys"], platt=calibration, **kwargs))
        saved.append(tf.saved_model.load(path))
    return saved[0], saved[1], platt


def test_every_signature_returns_the_calibrated_probability_and_explain_stays_on_the_logit_scale(
        plain_and_calibrated, transform_run) -> None:
    from modules.calibration import apply_numpy

    plain, calibrated, platt = plain_and_calibrated
    columns = raw_columns(transform_run, slice(0, 40))
    raw_probability = plain.signatures["serving_default"](**columns)[features.PROBABILITY_OUTPUT].numpy()
    expected = apply_numpy(raw_probability, platt.scale, platt.offset)
    served = calibrated.signatures["serving_default"](**columns)
    np.testing.assert_allclose(served[features.PROBABILITY_OUTPUT].numpy(), expected, rtol=1e-5)
    assert np.abs(expected - raw_probability).max() > 0.01  # the calibration really moves the probabilities
    # `churn` is decided on the calibrated probability at the threshold given at export (a constant in the graph).
    calibrated_probability = served[features.PROBABILITY_OUTPUT].numpy()
    np.testing.assert_array_equal(served[features.CLASS_OUTPUT].numpy(), calibrated_probability >= CALIBRATED_THRESHOLD)
    assert ((calibrated_probability >= CALIBRATED_THRESHOLD) != (calibrated_probability >= threshold.FALLBACK)).any()
    plain_served = plain.signatures["serving_default"](**columns)
    np.testing.assert_array_equal(plain_served[features.CLASS_OUTPUT].numpy(),
                                  plain_served[features.PROBABILITY_OUTPUT].numpy() >= threshold.FALLBACK)
    # serving_tf_example keeps missing cells missing (raw_columns fills them): compare it with its plain self.
    serialized = serialized_examples(transform_run, slice(0, 40))
    examples = calibrated.signatures["serving_tf_example"](examples=serialized)[features.PROBABILITY_OUTPUT].numpy()
    plain_examples = plain.signatures["serving_tf_example"](examples=serialized)[features.PROBABILITY_OUTPUT].numpy()
    np.testing.assert_allclose(examples, apply_numpy(plain_examples, platt.scale, platt.offset), rtol=1e-5)
    explained, plain_explained = calibrated.signatures["explain"](**columns), plain.signatures["explain"](**columns)
    np.testing.assert_allclose(explained.pop(features.PROBABILITY_OUTPUT).numpy(), expected, rtol=1e-5)
    plain_explained.pop(features.PROBABILITY_OUTPUT)
    for key, value in explained.items():  # attributions: the model's own logit, not the calibrated one
        np.testing.assert_allclose(value.numpy(), plain_explained[key].numpy(), rtol=1e-5, atol=1e-6)


def test_serving_with_ids_takes_serving_defaults_inputs_plus_the_id_columns(loaded) -> None:
    model, run = loaded
    with_ids = model.signatures[WITH_IDS_SIGNATURE]
    inputs = with_ids.structured_input_signature[1]
    default_inputs = model.signatures["serving_default"].structured_input_signature[1]
    assert set(inputs) == set(default_inputs) | set(features.ID_KEYS)
    for key in features.ID_KEYS:
        assert inputs[key].shape.as_list() == [None] and inputs[key].dtype == run.raw_spec[key].dtype
    assert set(with_ids.structured_outputs) == {features.PROBABILITY_OUTPUT, features.CLASS_OUTPUT, *features.ID_KEYS}


def test_serving_with_ids_returns_the_ids_with_serving_defaults_prediction(loaded) -> None:
    model, run = loaded
    rows = slice(10, 10 + ROWS)
    columns = raw_columns(run, rows)
    ids = {k: tf.constant(run.raw[k].iloc[rows], dtype=run.raw_spec[k].dtype) for k in features.ID_KEYS}
    default = model.signatures["serving_default"](**columns)
    with_ids = model.signatures[WITH_IDS_SIGNATURE](**columns, **ids)
    for key in features.ID_KEYS:
        assert with_ids[key].numpy().tolist() == run.raw[key].iloc[rows].tolist()
    np.testing.assert_array_equal(with_ids[features.PROBABILITY_OUTPUT].numpy(),
                                  default[features.PROBABILITY_OUTPUT].numpy())
    np.testing.assert_array_equal(with_ids[features.CLASS_OUTPUT].numpy(), default[features.CLASS_OUTPUT].numpy())


def test_no_id_columns_exports_no_serving_with_ids(transform_run, tmp_path) -> None:
    model = _trained_model(transform_run)
    signatures = make_serving_signatures(model, transform_run.output, features.LABEL_KEY, [])
    assert WITH_IDS_SIGNATURE not in signatures and "serving_default" in signatures
