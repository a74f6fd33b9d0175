"""preprocessing_fn run for real with tf.Transform on a small generated sample."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from modules import features
from modules.preprocessing import encode_label

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
