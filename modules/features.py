"""The one place that names the data's columns and the transformed-feature convention.

Defaults fit the online-retail churn data. Which columns are features, and whether each is numeric
or categorical, is not listed here: it comes from the data's schema (see `model_feature_keys`), so
bringing another CSV never means editing a feature list.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

LABEL_KEY = "Target_Churn"
POSITIVE_LABEL = "1"
ID_KEYS: tuple[str, ...] = ("Customer_ID",)
SLICE_KEYS: tuple[str, ...] = ("Gender", "Promotion_Response", "Email_Opt_In")
"""Evaluator slices; only those present in the data are used."""

PROBABILITY_OUTPUT = "churn_probability"
CLASS_OUTPUT = "churn"
"""`churn` is 1 when `churn_probability` >= the model's decision threshold (modules/threshold.py)."""
WITH_IDS_SIGNATURE = "serving_with_ids"
"""Predict signature taking and returning the id column(s) next to serving_default's inputs and outputs
(modules/signatures.py); named here so clients need no TensorFlow import."""
TRANSFORM_FEATURES_SIGNATURE = "transform_features"
"""Serialized tf.Examples -> transformed features and label (modules/signatures.py); TFMA's preprocessing
function, and with `serving_default` what says whether an earlier model can be the baseline (pipeline/baseline.py)."""

BEHAVIOURAL_FEATURES: dict[str, tuple[str, str]] = {
    "Total_Spend": ("low-spending", "high-spending"),
    "Num_of_Purchases": ("occasional", "frequent"),
    "Average_Transaction_Amount": ("small-basket", "big-basket"),
    "Num_of_Returns": ("rarely returning", "often returning"),
    "Num_of_Support_Contacts": ("self-sufficient", "support-heavy"),
    "Satisfaction_Score": ("dissatisfied", "satisfied"),
    "Last_Purchase_Days_Ago": ("recent", "lapsed"),
    "Years_as_Customer": ("new", "long-standing"),
}
"""Columns customer segments are fitted on, with the words for a segment far below / above their mean
(used to name segments). Only those present are used; without any, segments use every numeric feature."""

VOCAB_OOV_BUCKETS = 1
"""Unseen or missing categories share one extra index instead of failing."""

Z_SCORE, SIGNED_LOG1P, GAUSSIAN = "z_score", "signed_log1p", "gaussian"
NUMERIC_TRANSFORMS = (Z_SCORE, SIGNED_LOG1P, GAUSSIAN)
"""How Transform scales a numeric feature: `tft.scale_to_z_score`; sign(x) * log1p(|x|) then z-scored;
`tft.scale_to_gaussian` (Tukey HH, z-scored)."""
FEATURE_TRANSFORMS_KEY = "feature_transforms"
"""`custom_config` key of modules/preprocessing.py's options; the pipeline never sets it (the defaults below
were chosen by measurement, docs/performance.md "Feature transforms, batch size and normalisation"):
bench/bench_transforms.py sets it to measure the other choices."""
FEATURE_TRANSFORMS: dict[str, Any] = {"numeric": Z_SCORE, "quantile_buckets": 0,
                                      "vocabulary_frequency_threshold": 0, "crosses": (), "cross_buckets": 5}
"""numeric: one of NUMERIC_TRANSFORMS; quantile_buckets: 0, or add each numeric feature's training-quantile
bucket (`tft.bucketize`) as a categorical input `bucket_name(key)` (for the benchmark's training only: the
`explain` signature attributes raw columns and does not know these inputs); vocabulary_frequency_threshold: categories
seen fewer times in training share the out-of-vocabulary index (0 keeps every category); crosses: pairs of
raw column names, each added as one categorical input `cross_name(a, b)` whose categories are the pair's
combinations seen in training (a numeric column enters as its `cross_buckets` training-quantile buckets, a
string column as its value; benchmark only, like quantile buckets: `explain` does not know these inputs)."""

_TRANSFORMED_SUFFIX = "_xf"
_BUCKET_SUFFIX = "_bucket"
_CROSS_SEPARATOR = "_x_"
_ATTRIBUTION_SUFFIX = "_attribution"


def transformed_name(key: str) -> str:
    """Name of a feature after Transform (`Age` -> `Age_xf`)."""
    return key + _TRANSFORMED_SUFFIX


def attribution_name(key: str) -> str:
    """Output of the `explain` signature holding a raw feature's attribution (`Age` -> `Age_attribution`)."""
    return key + _ATTRIBUTION_SUFFIX


def bucket_name(key: str) -> str:
    """Raw-style name of a numeric feature's quantile bucket (`Age` -> `Age_bucket`, transformed `Age_bucket_xf`)."""
    return key + _BUCKET_SUFFIX


def cross_name(first: str, second: str) -> str:
    """Raw-style name of a feature cross (`Age`, `Gender` -> `Age_x_Gender`, transformed `Age_x_Gender_xf`)."""
    return first + _CROSS_SEPARATOR + second


def vocabulary_name(key: str) -> str:
    """File name of a categorical feature's vocabulary inside the Transform graph."""
    return key + "_vocab"


def model_feature_keys(columns: Iterable[str], label_key: str, id_keys: Iterable[str]) -> list[str]:
    """Columns the model sees: everything except the label and identifier columns, sorted."""
    excluded = {label_key, *id_keys}
    return sorted(c for c in columns if c not in excluded)

