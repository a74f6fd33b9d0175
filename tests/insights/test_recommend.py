"""The retention rules file: every shipped rule fires on a customer built for it, the default otherwise,
and a malformed file stops with a message naming the problem."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from insights.recommend import RULES_DOC, RULES_FILE, Customers, RulesError, load_rules, parse_rules
from insights.risk import BAND_NAMES, HIGH_RISK, risk_band, risk_bands
from modules import features

SHIPPED = load_rules()
NUMERIC = {"Age": True, "Annual_Income": True, "Average_Transaction_Amount": True, "Gender": False,
           "Email_Opt_In": False, "Promotion_Response": False, **{k: True for k in features.BEHAVIOURAL_FEATURES}}
CALM = {"Age": 40, "Annual_Income": 80.0, "Gender": "Female", "Total_Spend": 2000.0, "Years_as_Customer": 8,
        "Num_of_Purchases": 25, "Average_Transaction_Amount": 80.0, "Num_of_Returns": 0,
        "Num_of_Support_Contacts": 0, "Satisfaction_Score": 5, "Last_Purchase_Days_Ago": 20,
        "Email_Opt_In": "True", "Promotion_Response": "Responded"}
"""A customer no rule singles out (besides risk band and factors, which each case sets)."""

# rule name -> (changes to CALM, top factors, risk band, segment churn rate); one customer per shipped rule.
MATCHING = {
    "low-risk": ({}, [], "low", 0.3),
    "service-recovery": ({"Num_of_Support_Contacts": 3, "Satisfaction_Score": 1},
                         ["Num_of_Support_Contacts", "Satisfaction_Score"], "high", 0.7),
    "win-back-offer": ({"Last_Purchase_Days_Ago": 250}, ["Last_Purchase_Days_Ago"], "high", 0.5),
    "lapsed-personal-check-in": ({"Last_Purchase_Days_Ago": 250, "Promotion_Response": "Unsubscribed"},
                                 ["Last_Purchase_Days_Ago"], "medium", 0.5),
    "returns-review": ({"Num_of_Returns": 5}, ["Num_of_Returns"], "medium", 0.4),
    "onboarding": ({"Years_as_Customer": 1}, ["Years_as_Customer"], "medium", 0.4),
    "reconnect-channel": ({"Email_Opt_In": "False"}, ["Email_Opt_In"], "medium", 0.4),
    "high-risk-segment": ({}, ["Age"], "high", 0.7),
}


def customers(cases: list[tuple[dict[str, Any], list[str], str, float]]) -> Customers:
    values = pd.DataFrame([{**CALM, **changes} for changes, *_ in cases])
    top = pd.DataFrame([[k in factors for k in NUMERIC] for _, factors, *_ in cases], columns=list(NUMERIC))
    return Customers(values, top, np.array([c[2] for c in cases]), np.array([c[3] for c in cases]))


def test_every_shipped_rule_fires_on_a_customer_built_to_match_it() -> None:
    assert [r.name for r in SHIPPED.rules] == list(MATCHING)
    SHIPPED.check_features(NUMERIC)
    actions, rationales = SHIPPED.recommend(customers(list(MATCHING.values())))
    assert actions.tolist() == [r.action for r in SHIPPED.rules]
    assert rationales.tolist() == [r.rationale for r in SHIPPED.rules]


def test_the_default_fires_when_no_rule_matches() -> None:
    near_misses = [
        ({"Num_of_Support_Contacts": 1, "Satisfaction_Score": 1}, ["Satisfaction_Score"], "medium", 0.4),
        ({"Last_Purchase_Days_Ago": 120}, ["Last_Purchase_Days_Ago"], "medium", 0.4),
        ({"Last_Purchase_Days_Ago": 250}, ["Age"], "medium", 0.4),  # lapsed, but recency is not a top factor
        ({}, ["Age"], "high", 0.3),
    ]
    actions, rationales = SHIPPED.recommend(customers(near_misses))
    assert set(actions) == {SHIPPED.default_action} and set(rationales) == {SHIPPED.default_rationale}


def test_the_first_matching_rule_wins() -> None:
    both = ({"Num_of_Support_Contacts": 4, "Satisfaction_Score": 1, "Last_Purchase_Days_Ago": 300},
            ["Satisfaction_Score", "Last_Purchase_Days_Ago"], "high", 0.7)
    actions, _ = SHIPPED.recommend(customers([both]))
    assert actions.tolist() == [SHIPPED.rules[1].action]  # service-recovery is above win-back-offer


def rules_with(rule: Any) -> dict[str, Any]:
    return {"rules": [rule], "default": {"action": "a", "rationale": "r"}}


GOOD = {"name": "x", "when": {"risk_band": ["high"]}, "action": "call", "rationale": "why"}


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": [GOOD]}, "exactly two top-level keys"),
    ({"rules": [], "default": {"action": "a", "rationale": "r"}}, "non-empty list"),
    (rules_with({**GOOD, "when": {"risk": ["high"]}}), "rule 1 ('x'): unknown condition(s) risk (known: risk_band"),
    (rules_with({**GOOD, "when": {"risk_band": ["severe"]}}), "unknown risk band(s) severe"),
    (rules_with({k: v for k, v in GOOD.items() if k != "action"}), "rule 1 ('x'): missing action"),
    (rules_with({**GOOD, "actoin": "y"}), "unknown key(s) actoin"),
    (rules_with({**GOOD, "when": {"values": {"Age": {"min": "ten"}}}}), "values of Age: min must be a number"),
    (rules_with({**GOOD, "when": {"values": {"Age": {"min": 9, "max": 3}}}}), "min 9 is above max 3"),
    (rules_with({**GOOD, "when": {"values": {"Age": {"above": 3}}}}), "values of Age: expected a mapping"),
    (rules_with({**GOOD, "when": {"top_factors": "Age"}}), "top_factors: expected a non-empty list"),
    (rules_with({**GOOD, "when": {}}), "'when' must map at least one condition"),
    (rules_with({**GOOD, "rationale": ""}), "rationale: expected non-empty text"),
    ({"rules": [GOOD, GOOD], "default": {"action": "a", "rationale": "r"}}, "repeated: x"),
    ({"rules": [GOOD], "default": {"action": "a"}}, "'default' must have exactly 'action' and 'rationale'"),
])
def test_a_malformed_rules_file_is_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(RulesError, match="^rules file rules.yaml: ") as error:
        parse_rules(data, "rules.yaml")
    assert message in str(error.value)


@pytest.mark.parametrize(("when", "message"), [
    ({"top_factors": ["Tenure"]}, "rule 1 ('x'): 'Tenure' is not a feature of the model"),
    ({"values": {"Gender": {"min": 1}}}, "Gender is categorical: use 'in', not min/max"),
    ({"values": {"Age": {"in": ["old"]}}}, "Age is numeric: its 'in' values must be numbers"),
])
def test_rules_naming_what_the_model_does_not_have_are_rejected_before_scoring(when: dict, message: str) -> None:
    rules = parse_rules(rules_with({**GOOD, "when": when}), "rules.yaml")
    with pytest.raises(RulesError) as error:
        rules.check_features(NUMERIC)
    assert message in str(error.value)


def test_unreadable_and_invalid_yaml_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read it"):
        load_rules(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n  - name: x\n")
    with pytest.raises(RulesError, match=f"rules file {broken}: not valid YAML"):
        load_rules(broken)


def test_the_shipped_file_is_the_default_and_round_trips(tmp_path: Path) -> None:
    copy = tmp_path / "rules.yaml"
    copy.write_text(RULES_FILE.read_text())
    assert load_rules(copy).rules == SHIPPED.rules
    assert yaml.safe_load(RULES_FILE.read_text())["default"]["action"] == SHIPPED.default_action


@pytest.mark.parametrize("threshold", [0.5, 0.12, 0.9])
def test_risk_bands_cover_every_probability_once_and_medium_starts_at_the_models_threshold(threshold: float) -> None:
    lows = [low for low, _ in risk_bands(threshold)]
    assert lows == sorted(lows, reverse=True) and lows[-1] == 0.0 and threshold in lows
    probabilities = np.array([0.0, threshold - 1e-3, threshold, 0.74, 0.75, 1.0], dtype=np.float64)
    bands = risk_band(probabilities, threshold)
    assert (bands[probabilities >= threshold] != "low").all() and (bands[probabilities < threshold] == "low").all()
    assert bands[-1] == "high" and set(bands) <= set(BAND_NAMES)
    if threshold < HIGH_RISK:
        assert bands.tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_the_shipped_rules_on_a_model_of_other_data_say_how_to_give_your_own() -> None:
    """A Telco-style model (the field case): the shipped rules name the bundled columns; the error says what
    to do. A user's own rules file naming a wrong column gets the plain error."""
    telco = {"tenure": True, "MonthlyCharges": True, "Contract": False}
    with pytest.raises(RulesError, match="is not a feature of the model") as shipped:
        load_rules().check_features(telco)
    assert str(shipped.value).startswith(f"rules file {RULES_FILE}: rule ")
    assert str(shipped.value).endswith(f"pass them with --rules PATH ({RULES_DOC})")
    own = parse_rules(rules_with({**GOOD, "when": {"top_factors": ["Tenure"]}}), "mine.yaml")
    with pytest.raises(RulesError) as error:
        own.check_features(telco)
    assert "--rules" not in str(error.value)
