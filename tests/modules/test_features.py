"""Feature naming: one convention, feature lists derived from the data's columns."""
from __future__ import annotations

from modules import features


def test_transformed_name_convention() -> None:
    assert features.transformed_name("Age") == "Age_xf"
    assert features.vocabulary_name("Gender") != features.transformed_name("Gender")


def test_model_features_exclude_label_and_ids_and_are_sorted() -> None:
    columns = ["Customer_ID", "Zeta", "Age", "Target_Churn", "Account"]
    assert features.model_feature_keys(columns, "Target_Churn", ["Customer_ID", "Account"]) == ["Age", "Zeta"]


def test_default_slices_are_columns_of_the_bundled_data() -> None:
    from data.generate import COLUMNS

    assert set(features.SLICE_KEYS) <= set(COLUMNS)
    assert features.LABEL_KEY in COLUMNS and set(features.ID_KEYS) <= set(COLUMNS)
