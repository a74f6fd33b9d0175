"""Honesty checks of the churn factors against the generator's known mechanism (data/generate.py).

Reuses the shared `bundled_style` run: its ChurnFactors output (global permutation importance and
directions) and its pushed model's `explain` signature (per-customer integrated gradients), whose
attributions are compared with the exact integrated gradients of the generator's own logit, taken
from the same baseline customer (training means, most frequent categories).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from markupsafe import escape

from data import generate as gen
from modules import features
from modules.signatures import as_parsed

pytestmark = pytest.mark.e2e
MECHANISM = {"Last_Purchase_Days_Ago", "Satisfaction_Score", "Num_of_Support_Contacts", "Years_as_Customer",
             "Num_of_Returns", "Promotion_Response", "Email_Opt_In"}
NO_EFFECT = {"Age", "Gender", "Annual_Income"}
"""Not in the formula and not correlated with anything that is (Age and Income only with each other)."""
NUMERIC_SIGNS = {"Last_Purchase_Days_Ago": "up", "Satisfaction_Score": "down", "Num_of_Support_Contacts": "up",
                 "Years_as_Customer": "down", "Num_of_Returns": "up"}
STRONG = ("Last_Purchase_Days_Ago", "Satisfaction_Score")
MEANINGFUL = 0.1
"""Customers whose true attribution is smaller than this (logit) are too close to the baseline to have a clear sign."""


def test_global_factors_recover_the_generators_drivers_and_directions(bundled_style) -> None:
    _, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    factors = summary["factors"]
    by_name = {f["feature"]: f for f in factors["features"]}
    assert "Customer_ID" not in by_name and features.LABEL_KEY not in by_name  # never model inputs
    ranked = [f["feature"] for f in factors["features"]]
    assert set(ranked[:3]) <= MECHANISM, ranked
    assert all(by_name[f]["distinguishable"] and by_name[f]["ci"][0] > 0 for f in STRONG)
    assert not any(by_name[f]["distinguishable"] for f in NO_EFFECT), [by_name[f] for f in NO_EFFECT]
    assert set(factors["drivers"]) <= MECHANISM | {"Num_of_Purchases", "Total_Spend", "Average_Transaction_Amount"}
    for feature, sign in NUMERIC_SIGNS.items():
        if by_name[feature]["distinguishable"]:
            assert by_name[feature]["direction"] == sign, by_name[feature]
    promotion = by_name["Promotion_Response"]["categories"]
    assert promotion["Unsubscribed"] > promotion["Responded"]
    email = by_name["Email_Opt_In"]["categories"]
    assert email["False"] > email["True"]
    assert factors["summary"] in proc.stdout
    assert "ChurnFactors" in summary["component_seconds"]


def test_report_shows_the_churn_factors(bundled_style) -> None:
    tmp, _, _ = bundled_style
    # The summary of the run that wrote the report: other tests re-run in the shared run's folder.
    summary = json.loads((tmp / "out" / "run_summary.json").read_text())
    report = (tmp / "out" / "report.html").read_text()
    section = report.split('<section id="factors">')[1].split("</section>")[0]
    assert "<h2>Churn factors</h2>" in section
    assert str(escape(summary["factors"]["summary"])) in section
    assert section.count("<tr>") == len(summary["factors"]["features"]) + 1


def test_per_customer_attributions_agree_in_sign_with_the_true_effects(bundled_style) -> None:
    tmp, proc, summary = bundled_style
    assert proc.returncode == 0, proc.stdout + proc.stderr
    customers = gen.generate(3000, seed=99)  # fresh customers the model never saw
    model = tf.saved_model.load(summary["pushed_model_dir"])
    explain = model.signatures["explain"]
    specs = explain.structured_input_signature[1]
    found = explain(**{k: tf.constant(customers[k].astype(str) if s.dtype == tf.string else customers[k], s.dtype)
                       for k, s in specs.items()})
    truth = true_attributions(customers, baseline_customer(tmp, customers))
    for feature in (*STRONG, "Promotion_Response", "Email_Opt_In"):
        clear = np.abs(truth[feature]) > MEANINGFUL
        agree = np.sign(found[features.attribution_name(feature)].numpy()[clear]) == np.sign(truth[feature][clear])
        assert clear.sum() > 300 and agree.mean() > 0.8, (feature, clear.sum(), agree.mean())
    # The model's log-odds relative to the baseline follow the generator's (completeness, then correlation).
    total = np.sum([found[features.attribution_name(f)].numpy() for f in specs], axis=0)
    assert np.corrcoef(total, np.sum(list(truth.values()), axis=0))[0, 1] > 0.8


def baseline_customer(tmp: Path, customers: pd.DataFrame) -> dict[str, object]:
    """The explain baseline in raw terms: each numeric feature's training mean (where Transform's z-score is 0),
    each categorical feature's vocabulary index 0, read off the run's own Transform graph."""
    (graph,) = (tmp / "out" / "tfx" / "Transform" / "transform_graph").iterdir()
    output = tft.TFTransformOutput(str(graph))
    spec = output.raw_feature_spec()
    raw = {k: as_parsed(tf.constant(customers[k].astype(str) if s.dtype == tf.string else customers[k], s.dtype), s)
           for k, s in spec.items()}
    transformed = output.transform_features_layer()(raw)
    baseline: dict[str, object] = {}
    for key in ("Last_Purchase_Days_Ago", "Satisfaction_Score", "Num_of_Support_Contacts", "Years_as_Customer",
                "Num_of_Returns"):
        slope, intercept = np.polyfit(customers[key].to_numpy(float),
                                      transformed[features.transformed_name(key)].numpy().ravel(), 1)
        baseline[key] = -intercept / slope
    for key in ("Promotion_Response", "Email_Opt_In"):
        baseline[key] = output.vocabulary_by_name(features.vocabulary_name(key))[0].decode()
    return baseline


def true_attributions(frame: pd.DataFrame, base: dict[str, object]) -> dict[str, np.ndarray]:
    """Integrated gradients of the generator's logit from `base`, exact: every term is univariate except the
    support x dissatisfaction product, whose gradient is linear along the straight path."""
    days, satisfaction, support = (frame[k].to_numpy(float) for k in
                                   ("Last_Purchase_Days_Ago", "Satisfaction_Score", "Num_of_Support_Contacts"))
    d0, s0, c0 = (float(base[k]) for k in ("Last_Purchase_Days_Ago", "Satisfaction_Score", "Num_of_Support_Contacts"))
    interaction = gen.SUPPORT_X_DISSATISFACTION_WEIGHT / 4.0

    def recency(d: np.ndarray | float) -> np.ndarray | float:
        return gen.RECENCY_WEIGHT / (1 + np.exp(-(d - gen.RECENCY_MIDPOINT_DAYS) / gen.RECENCY_SCALE_DAYS))

    opted_in = frame["Email_Opt_In"].astype(str) == "True"
    return {
        "Last_Purchase_Days_Ago": recency(days) - recency(d0),
        "Satisfaction_Score": (satisfaction - s0) * (gen.SATISFACTION_WEIGHT - interaction * (support + c0) / 2),
        "Num_of_Support_Contacts": (support - c0) * interaction * (5.0 - (satisfaction + s0) / 2),
        "Years_as_Customer": gen.YEARS_WEIGHT * (frame["Years_as_Customer"].to_numpy(float)
                                                 - float(base["Years_as_Customer"])),
        "Num_of_Returns": gen.RETURNS_WEIGHT * (frame["Num_of_Returns"].to_numpy(float)
                                                - float(base["Num_of_Returns"])),
        "Promotion_Response": (frame["Promotion_Response"].map(gen.PROMOTION_WEIGHTS).to_numpy(float)
                               - gen.PROMOTION_WEIGHTS[str(base["Promotion_Response"])]),
        "Email_Opt_In": gen.EMAIL_OPT_IN_WEIGHT * (opted_in.to_numpy(float) - float(base["Email_Opt_In"] == "True")),
    }
