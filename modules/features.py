"""The one place that names the data's columns and the transformed-feature convention.

Defaults fit the online-retail churn data. Which columns are features, and whether each is numeric
or categorical, is not listed here: it comes from the data's schema (see `model_feature_keys`), so
bringing another CSV never means editing a feature list.
"""
from __future__ import annotations

from collections.abc import Iterable

LABEL_KEY = "Target_Churn"
POSITIVE_LABEL = "1"
ID_KEYS: tuple[str, ...] = ("Customer_ID",)
SLICE_KEYS: tuple[str, ...] = ("Gender", "Promotion_Response", "Email_Opt_In")
"""Evaluator slices; only those present in the data are used."""

PROBABILITY_OUTPUT = "churn_probability"
CLASS_OUTPUT = "churn"
DECISION_THRESHOLD = 0.5
"""`churn` is 1 when `churn_probability` >= this value."""

VOCAB_OOV_BUCKETS = 1
"""Unseen or missing categories share one extra index instead of failing."""

_TRANSFORMED_SUFFIX = "_xf"


def transformed_name(key: str) -> str:
    """Name of a feature after Transform (`Age` -> `Age_xf`)."""
    return key + _TRANSFORMED_SUFFIX


def vocabulary_name(key: str) -> str:
    """File name of a categorical feature's vocabulary inside the Transform graph."""
    return key + "_vocab"


def model_feature_keys(columns: Iterable[str], label_key: str, id_keys: Iterable[str]) -> list[str]:
    """Columns the model sees: everything except the label and identifier columns, sorted."""
    excluded = {label_key, *id_keys}
    return sorted(c for c in columns if c not in excluded)

