"""preprocessing_fn run for real with tf.Transform on a small generated sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from modules import features
from modules.preprocessing import encode_label, transform_options
from modules.trainer import feature_layout
from tests.modules.conftest import CUSTOM_CONFIG, TransformRun, run_transform

NUMERIC = ["Age", "Annual_Income", "Average_Transaction_Amount", "Last_Purchase_Days_Ago", "Num_of_Purchases",
           "Num_of_Returns", "Num_of_Support_Contacts", "Satisfaction_Score", "Total_Spend", "Years_as_Customer"]
CATEGORICAL = ["Email_Opt_In", "Gender", "Promotion_Response"]


def column(run, key: str) -> np.ndarray:
    return np.array([np.asarray(row[features.transformed_name(key)]).reshape(-1)[0] for row in run.transformed])


def test_outputs_are_every_feature_plus_label_and_never_the_id(transform_run) -> None:
    names = set(transform_run.transformed[0])
    assert names == {features.transformed_name(k) for k in [*NUMERIC, *CATEGORICAL, features.LABEL_KEY]}
    assert features.transformed_name("Customer_ID") not in names


def test_numeric_features_are_z_scored_on_present_values(transform_run) -> None:
    for key in NUMERIC:
        present = transform_run.raw[key].notna().to_numpy()
        scaled = column(transform_run, key)[present]
        assert scaled.mean() == pytest.approx(0.0, abs=1e-4)
        assert scaled.std() == pytest.approx(1.0, abs=1e-3)


def test_missing_numeric_value_becomes_the_mean(transform_run) -> None:
    assert list(column(transform_run, "Age")[:2]) == [0.0, 0.0]


def test_categories_use_a_vocabulary_with_one_oov_index_for_missing_values(transform_run) -> None:
    vocabulary = transform_run.output.vocabulary_by_name(features.vocabulary_name("Gender"))
    assert sorted(v.decode() for v in vocabulary) == ["Female", "Male", "Other"]
    gender = column(transform_run, "Gender")
    assert gender[2] == len(vocabulary)  # the OOV index
    assert set(gender[3:]) <= set(range(len(vocabulary)))


def test_label_is_int_0_1_matching_the_data(transform_run) -> None:
    assert np.array_equal(column(transform_run, features.LABEL_KEY), transform_run.raw[features.LABEL_KEY].to_numpy())


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (tf.constant([["Yes"], ["No"], ["yes"]]), "Yes", [[1], [0], [0]]),
        (tf.constant([["True"], ["False"]]), "True", [[1], [0]]),
        (tf.constant([[1], [0]], tf.int64), "1", [[1], [0]]),
        (tf.constant([[1.0], [0.0]]), "1", [[1], [0]]),
    ],
)
def test_encode_label_compares_text_as_text_and_numbers_as_numbers(values, positive, expected) -> None:
    encoded = encode_label(values, positive)
    assert encoded.dtype == tf.int64 and encoded.numpy().tolist() == expected


@pytest.fixture(scope="module")
def log_bucket_run(tmp_path_factory: pytest.TempPathFactory) -> TransformRun:
    """The non-default options bench/bench_transforms.py measures: signed log1p, 4 quantile buckets, threshold 100."""
    options = {"numeric": features.SIGNED_LOG1P, "quantile_buckets": 4, "vocabulary_frequency_threshold": 100}
    return run_transform(tmp_path_factory.mktemp("tft-options"), {**CUSTOM_CONFIG,
                                                                   features.FEATURE_TRANSFORMS_KEY: options})


def test_signed_log1p_z_scores_the_log_of_the_present_values(log_bucket_run) -> None:
    for key in ("Total_Spend", "Num_of_Returns"):
        raw = log_bucket_run.raw[key].to_numpy(dtype=float)
        logged = np.sign(raw) * np.log1p(np.abs(raw))
        expected = (logged - logged.mean()) / logged.std()
        np.testing.assert_allclose(column(log_bucket_run, key), expected, atol=1e-3)


def test_quantile_buckets_are_categorical_inputs_of_about_equal_counts(log_bucket_run) -> None:
    numeric, sizes = feature_layout(log_bucket_run.output, features.transformed_name(features.LABEL_KEY))
    assert sorted(numeric) == NUMERIC
    assert {features.bucket_name(k): 4 for k in NUMERIC}.items() <= sizes.items()
    spend = log_bucket_run.raw["Total_Spend"].to_numpy()
    bucket = column(log_bucket_run, features.bucket_name("Total_Spend"))
    assert np.bincount(bucket).tolist() == pytest.approx([75] * 4, abs=8)
    assert all(spend[bucket == b].max() <= spend[bucket == b + 1].min() for b in range(3))  # ordered by value


def test_a_frequency_threshold_sends_rare_categories_to_the_oov_index(log_bucket_run) -> None:
    vocabulary = log_bucket_run.output.vocabulary_by_name(features.vocabulary_name("Gender"))
    assert [v.decode() for v in vocabulary] == ["Female"]  # 113 rows; Other 96 and Male 90 are below 100
    gender = column(log_bucket_run, "Gender")
    assert set(gender[log_bucket_run.raw["Gender"].to_numpy() != "Female"]) == {1}


def test_gaussian_scaling_is_centred_near_unit_scale_and_monotone(tmp_path: Path) -> None:
    run = run_transform(tmp_path, {**CUSTOM_CONFIG, features.FEATURE_TRANSFORMS_KEY: {"numeric": features.GAUSSIAN}})
    spend = column(run, "Total_Spend")
    # Tukey HH's fitted tails shrink the deviation a little below a z-score's 1 (0.92 on this sample).
    assert spend.mean() == pytest.approx(0.0, abs=0.05) and spend.std() == pytest.approx(1.0, abs=0.15)
    order = np.argsort(run.raw["Total_Spend"].to_numpy())
    assert np.all(np.diff(spend[order]) >= -1e-6)  # monotone in the raw value


@pytest.mark.parametrize(("options", "message"), [
    ({"numeric": "min_max"}, "numeric transform must be one of z_score, signed_log1p, gaussian"),
    ({"quantile_buckets": -1}, "quantile_buckets must be a whole number >= 0"),
    ({"vocabulary_frequency_threshold": 2.5}, "vocabulary_frequency_threshold must be a whole number"),
    ({"embeddings": True}, "unknown feature transform option"),
    ({"crosses": "Age,Gender"}, "crosses must be a list of"),
    ({"crosses": [["Age"]]}, "crosses must be a list of"),
    ({"crosses": [["Age", "Age"]]}, "crosses must be a list of"),
    ({"crosses": [["Age", "Gender"]], "cross_buckets": 1}, "cross_buckets must be >= 2"),
])
def test_bad_transform_options_are_a_clear_error(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transform_options(options)


def test_without_options_the_transform_is_the_default_one() -> None:
    assert transform_options(None) == features.FEATURE_TRANSFORMS


@pytest.fixture(scope="module")
def cross_run(tmp_path_factory: pytest.TempPathFactory) -> TransformRun:
    """A numeric x categorical and a categorical x categorical cross, as bench/bench_transforms.py measures."""
    options = {"crosses": [["Total_Spend", "Gender"], ["Email_Opt_In", "Promotion_Response"]], "cross_buckets": 3}
    return run_transform(tmp_path_factory.mktemp("tft-crosses"), {**CUSTOM_CONFIG,
                                                                   features.FEATURE_TRANSFORMS_KEY: options})


def test_a_cross_is_one_categorical_input_per_combination_seen_in_training(cross_run) -> None:
    numeric, sizes = feature_layout(cross_run.output, features.transformed_name(features.LABEL_KEY))
    assert sorted(numeric) == NUMERIC  # the crossed columns stay inputs of their own
    raw = cross_run.raw
    pairs = set(zip(raw["Email_Opt_In"].fillna("").astype(str), raw["Promotion_Response"].fillna("").astype(str),
                    strict=True))
    name = features.cross_name("Email_Opt_In", "Promotion_Response")
    assert sizes[name] == len(pairs) + features.VOCAB_OOV_BUCKETS
    index = column(cross_run, name)
    # Rows share an index exactly when they share the pair of values.
    by_pair: dict[tuple, set] = {}
    cells = zip(raw["Email_Opt_In"].astype(str), raw["Promotion_Response"].astype(str), strict=True)
    for pair, i in zip(cells, index, strict=True):
        by_pair.setdefault(pair, set()).add(int(i))
    assert all(len(v) == 1 for v in by_pair.values())
    assert len({next(iter(v)) for v in by_pair.values()}) == len(by_pair)


def test_a_numeric_side_of_a_cross_is_its_training_quantile_bucket(cross_run) -> None:
    name = features.cross_name("Total_Spend", "Gender")
    vocabulary = {v.decode() for v in cross_run.output.vocabulary_by_name(features.vocabulary_name(name))}
    buckets = {v.split("|")[0] for v in vocabulary}
    assert buckets == {"0", "1", "2"}
    assert {v.split("|")[1] for v in vocabulary} == {"", "Female", "Male", "Other"}  # "" is a missing Gender
    index = column(cross_run, name)
    spend, gender = cross_run.raw["Total_Spend"].to_numpy(), cross_run.raw["Gender"].fillna("").to_numpy()
    female = gender == "Female"
    # Among women, a higher spend never gets a lower-quantile cell than a lower spend (ordered buckets).
    words = cross_run.output.vocabulary_by_name(features.vocabulary_name(name))
    bucket_of = np.array([int(words[i].decode().split("|")[0]) for i in index[female]])
    order = np.argsort(spend[female])
    assert np.all(np.diff(bucket_of[order]) >= 0)
    assert np.bincount(bucket_of, minlength=3).min() > 0


def test_a_cross_of_a_column_the_data_lacks_is_a_clear_error(tmp_path: Path) -> None:
    options = {"crosses": [["Age", "Shoe_Size"]]}
    with pytest.raises(ValueError, match="feature cross names column 'Shoe_Size'"):
        run_transform(tmp_path, {**CUSTOM_CONFIG, features.FEATURE_TRANSFORMS_KEY: options})
