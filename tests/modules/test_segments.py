"""Customer segments: the k-means fit and its profiles, and the exported `segment` signature."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from data.generate import generate
from modules import features, segments
from modules.model import build_model
from modules.signatures import SEGMENT_OUTPUT, SEGMENT_SIGNATURE, make_serving_signatures
from modules.trainer import feature_layout, fit_training_segments, z_score_parameters
from tests.modules.conftest import CUSTOM_CONFIG
from tests.modules.test_signatures import raw_columns

NUMERIC = ["Age", "Annual_Income", *features.BEHAVIOURAL_FEATURES]


@pytest.fixture(scope="module")
def customers():
    frame = generate(3000, seed=3)
    columns = segments.segment_columns(NUMERIC)
    values = frame[columns].to_numpy(float)
    mean, std = values.mean(axis=0), values.std(axis=0)
    return frame, columns, values, mean, std, (values - mean) / std


@pytest.fixture(scope="module")
def fitted(customers) -> segments.Segmentation:
    frame, columns, _, mean, std, z = customers
    return segments.fit_segments(z, frame[features.LABEL_KEY].to_numpy(), columns, mean, std, seed=1)


def test_segment_columns_are_the_behavioural_ones_the_data_has_else_every_numeric_one() -> None:
    assert segments.segment_columns(NUMERIC) == list(features.BEHAVIOURAL_FEATURES)
    assert segments.segment_columns(["Age", "Total_Spend", "Satisfaction_Score"]) == ["Total_Spend",
                                                                                     "Satisfaction_Score"]
    assert segments.segment_columns(["Visits", "Age"]) == ["Age", "Visits"]


def test_k_is_the_best_silhouette_in_the_stated_range(fitted: segments.Segmentation) -> None:
    assert set(fitted.silhouettes) == set(segments.K_RANGE)
    best = max(fitted.silhouettes, key=fitted.silhouettes.get)
    assert len(fitted.profiles) == len(fitted.centroids) == best
    assert sorted(set(fitted.labels.tolist())) == list(range(best))


def test_fit_is_deterministic(customers, fitted: segments.Segmentation) -> None:
    frame, columns, _, mean, std, z = customers
    again = segments.fit_segments(z, frame[features.LABEL_KEY].to_numpy(), columns, mean, std, seed=1)
    assert again.labels.tolist() == fitted.labels.tolist()
    assert segments.to_json(again) == segments.to_json(fitted)


def test_labels_are_the_nearest_centroid_and_ids_follow_churn_rate(customers, fitted: segments.Segmentation) -> None:
    frame, *_, z = customers
    nearest = np.argmin(((z[:, None, :] - fitted.centroids[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == fitted.labels).mean() > 0.999
    rates = [p.churn_rate for p in fitted.profiles]
    assert rates == sorted(rates, reverse=True)
    churned = frame[features.LABEL_KEY].to_numpy()
    for profile in fitted.profiles:
        assert profile.churn_rate == pytest.approx(churned[fitted.labels == profile.id].mean(), abs=1e-4)


def test_profiles_give_size_share_and_typical_raw_values(customers, fitted: segments.Segmentation) -> None:
    _, columns, values, *_ = customers
    assert sum(p.size for p in fitted.profiles) == len(values)
    assert sum(p.share for p in fitted.profiles) == pytest.approx(1.0, abs=1e-3)
    for profile in fitted.profiles:
        medians = np.median(values[fitted.labels == profile.id], axis=0)
        assert list(profile.typical) == columns
        np.testing.assert_allclose(list(profile.typical.values()), medians, rtol=1e-3, atol=0.01)


def test_names_are_plain_unique_and_describe_the_centroid(fitted: segments.Segmentation) -> None:
    names = [p.name for p in fitted.profiles]
    assert len(set(names)) == len(names)
    for profile in fitted.profiles:
        furthest = max(profile.centroid, key=lambda c: abs(profile.centroid[c]))
        word = features.BEHAVIOURAL_FEATURES[furthest][int(profile.centroid[furthest] > 0)]
        assert profile.name.lower().startswith(word.lower()) and profile.name.endswith(" customers")


def test_names_grow_until_unique_and_fall_back_to_typical() -> None:
    columns = ["Last_Purchase_Days_Ago", "Satisfaction_Score", "Num_of_Returns", "Visits"]
    centroids = np.array([[2.0, -1.0, 0.5, 0.0],
                          [2.0, -1.0, -0.5, 0.0],
                          [0.1, 0.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, -3.0]])
    assert segments.segment_names(centroids, columns) == [
        "Lapsed, dissatisfied, often returning customers",
        "Lapsed, dissatisfied, rarely returning customers",
        "Typical customers",
        "Low Visits customers",
    ]
    same = segments.segment_names(np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]), columns)
    assert same == ["Lapsed customers (segment 0)", "Lapsed customers (segment 1)"]


def test_json_profile_is_serialisable_and_states_the_criterion(fitted: segments.Segmentation) -> None:
    data = json.loads(json.dumps(segments.to_json(fitted)))
    assert data["criterion"] == segments.CRITERION and "silhouette" in data["criterion"]
    assert data["k"] == len(data["segments"]) and data["rows"] == len(fitted.labels)
    assert {"id", "name", "size", "share", "churn_rate", "typical", "centroid"} == set(data["segments"][0])


def test_tiny_data_still_gets_segments() -> None:
    z = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    fit = segments.fit_segments(z, np.array([1, 1, 0, 0]), ["A", "B"], np.zeros(2), np.ones(2), seed=0)
    assert len(fit.profiles) == 2 and sorted(fit.labels.tolist()) == [0, 0, 1, 1]


def test_no_numeric_feature_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no numeric features"):
        segments.fit_segments(np.zeros((5, 0)), np.zeros(5), [], np.zeros(0), np.zeros(0), seed=0)


# The Trainer's part and the exported signature, on the real tf.Transform output of the module tests.


@pytest.fixture(scope="module")
def trained(transform_run, tmp_path_factory: pytest.TempPathFactory):
    output = transform_run.output
    label_xf = features.transformed_name(features.LABEL_KEY)
    rows = transform_run.transformed
    inputs = {k: tf.constant(np.stack([np.asarray(r[k]).reshape(1) for r in rows])) for k in rows[0] if k != label_xf}
    labels = tf.constant([int(np.asarray(r[label_xf]).reshape(-1)[0]) for r in rows])
    numeric_keys, vocabulary_sizes = feature_layout(output, label_xf)
    model = build_model(numeric_keys, vocabulary_sizes)
    segmentation = fit_training_segments(output, (inputs, labels), numeric_keys, seed=0)
    path = str(tmp_path_factory.mktemp("segment_model") / "1")
    signatures = make_serving_signatures(model, output, features.LABEL_KEY, CUSTOM_CONFIG["id_keys"], segmentation)
    tf.saved_model.save(model, path, signatures=signatures)
    return tf.saved_model.load(path), segmentation, transform_run


def test_z_score_parameters_are_the_transforms_training_mean_and_deviation(transform_run) -> None:
    columns = list(features.BEHAVIOURAL_FEATURES)
    mean, std = z_score_parameters(transform_run.output, columns)
    raw = transform_run.raw[columns].to_numpy(float)
    np.testing.assert_allclose(mean, raw.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(std, raw.std(axis=0), rtol=1e-4)


def test_segment_signature_agrees_with_the_fitted_labels_on_every_training_row(trained) -> None:
    model, segmentation, run = trained
    signature = model.signatures[SEGMENT_SIGNATURE]
    assert set(signature.structured_input_signature[1]) == set(model.signatures["serving_default"]
                                                                .structured_input_signature[1])
    result = signature(**raw_columns(run, slice(0, len(run.raw))))[SEGMENT_OUTPUT]
    assert result.dtype == tf.int64
    assert result.numpy().tolist() == segmentation.labels.tolist()
