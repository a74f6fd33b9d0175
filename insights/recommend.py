"""Retention actions from one readable rules file (insights/rules.yaml by default).

Rules are tried top to bottom; a customer gets the action and rationale of the first rule whose
conditions all hold, else the file's `default`. The file is checked when it is loaded, and again
against the model's features before scoring, so a typo stops the run with a message naming the rule
instead of silently never matching. Matching is vectorised: one boolean mask per rule per batch.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from insights.risk import BAND_NAMES

RULES_FILE = Path(__file__).with_name("rules.yaml")
RULES_DOC = "docs/insights.md#retention-actions-insightsrulesyaml"
"""Where the rules' format is documented, named when the shipped rules do not fit a model trained on other data."""
CONDITIONS = ("risk_band", "top_factors", "values", "segment_churn_rate")
_RULE_KEYS = ("name", "when", "action", "rationale")
_VALUE_TESTS = ("min", "max", "in")
_BOUNDS = ("min", "max")


class RulesError(ValueError):
    """The rules file cannot be used; the message names the file and the rule."""


@dataclasses.dataclass(frozen=True)
class Customers:
    """What rules can look at, for a batch of customers (one row each, same order everywhere)."""

    values: pd.DataFrame
    """Raw feature values: numbers for numeric features, text for categorical ones."""
    top_factors: pd.DataFrame
    """One boolean column per feature: is it among the customer's top churn factors."""
    risk_band: npt.NDArray[Any]
    segment_churn_rate: npt.NDArray[Any]
    """Churn rate (training rows) of each customer's segment."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """One rule; a condition that is None (or empty) always holds."""

    name: str
    action: str
    rationale: str
    risk_band: tuple[str, ...] | None = None
    top_factors: tuple[str, ...] | None = None
    values: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    segment_churn_rate: Mapping[str, float] | None = None

    def matches(self, customers: Customers) -> npt.NDArray[Any]:
        """Boolean mask: the customers this rule applies to."""
        mask = np.ones(len(customers.risk_band), dtype=bool)
        if self.risk_band is not None:
            mask &= np.isin(customers.risk_band, self.risk_band)
        if self.top_factors is not None:
            mask &= customers.top_factors[list(self.top_factors)].to_numpy().any(axis=1)
        for feature, tests in self.values.items():
            mask &= _value_mask(customers.values[feature], tests)
        if self.segment_churn_rate is not None:
            mask &= _bounds_mask(customers.segment_churn_rate, self.segment_churn_rate)
        return mask


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The rules in file order, the default, and where they came from (for messages)."""

    rules: tuple[Rule, ...]
    default_action: str
    default_rationale: str
    source: str

    def check_features(self, numeric: Mapping[str, bool]) -> None:
        """Every feature a rule names must be a model feature (`numeric`: feature -> is it numeric),
        and min/max only apply to numeric ones."""
        for number, rule in enumerate(self.rules, 1):
            for feature in (*(rule.top_factors or ()), *rule.values):
                if feature not in numeric:
                    shipped = (f"; the shipped rules are for the bundled data's columns: write rules for your "
                               f"model's features and pass them with --rules PATH ({RULES_DOC})"
                               if self.source == str(RULES_FILE) else "")
                    raise self._error(number, rule.name, f"{feature!r} is not a feature of the model "
                                                         f"(features: {', '.join(sorted(numeric))}){shipped}")
            for feature, tests in rule.values.items():
                if not numeric[feature] and set(tests) & set(_BOUNDS):
                    raise self._error(number, rule.name, f"{feature} is categorical: use 'in', not min/max")
                if numeric[feature] and not all(_is_number(v) for v in tests.get("in", ())):
                    raise self._error(number, rule.name, f"{feature} is numeric: its 'in' values must be numbers")

    def recommend(self, customers: Customers) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """(action, rationale) per customer: the first matching rule's, else the default."""
        masks = [rule.matches(customers) for rule in self.rules]
        actions = np.select(masks, [r.action for r in self.rules], default=self.default_action)
        rationales = np.select(masks, [r.rationale for r in self.rules], default=self.default_rationale)
        return actions, rationales

    def _error(self, number: int, name: str, problem: str) -> RulesError:
        return RulesError(f"rules file {self.source}: rule {number} ({name!r}): {problem}")


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    """Read and check a rules file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise RulesError(f"rules file {path}: cannot read it: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise RulesError(f"rules file {path}: not valid YAML: {' '.join(str(e).split())}") from None
    return parse_rules(data, str(path))


def parse_rules(data: Any, source: str) -> RuleSet:
    """Check the structure of a loaded rules file and build the RuleSet."""
    where = f"rules file {source}"
    if not isinstance(data, dict) or set(data) != {"rules", "default"}:
        raise RulesError(f"{where}: expected exactly two top-level keys, 'rules' (a list) and 'default'")
    if not isinstance(data["rules"], list) or not data["rules"]:
        raise RulesError(f"{where}: 'rules' must be a non-empty list")
    rules = []
    for number, entry in enumerate(data["rules"], 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        rules.append(_parse_rule(entry, f"{where}: rule {number} ({name!r})"))
    names = [r.name for r in rules]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RulesError(f"{where}: rule names must be unique; repeated: {', '.join(repeated)}")
    default = data["default"]
    if not isinstance(default, dict) or set(default) != {"action", "rationale"}:
        raise RulesError(f"{where}: 'default' must have exactly 'action' and 'rationale'")
    return RuleSet(tuple(rules), _text(default["action"], f"{where}: default action"),
                   _text(default["rationale"], f"{where}: default rationale"), source)


def _parse_rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: each rule must be a mapping with {', '.join(_RULE_KEYS)}")
    unknown = sorted(set(entry) - set(_RULE_KEYS))
    missing = [k for k in _RULE_KEYS if k not in entry]
    if unknown or missing:
        raise RulesError(f"{where}: " + "; ".join(
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing {', '.join(missing)}"] if missing else [])) + f" (a rule has {', '.join(_RULE_KEYS)})")
    when = entry["when"]
    if not isinstance(when, dict) or not when:
        raise RulesError(f"{where}: 'when' must map at least one condition ({', '.join(CONDITIONS)})")
    unknown = sorted(set(when) - set(CONDITIONS))
    if unknown:
        raise RulesError(f"{where}: unknown condition(s) {', '.join(unknown)} (known: {', '.join(CONDITIONS)})")
    risk_band = None
    if "risk_band" in when:
        risk_band = _names(when["risk_band"], f"{where}: risk_band")
        bad = [b for b in risk_band if b not in BAND_NAMES]
        if bad:
            raise RulesError(f"{where}: unknown risk band(s) {', '.join(bad)} (bands: {', '.join(BAND_NAMES)})")
    top_factors = _names(when["top_factors"], f"{where}: top_factors") if "top_factors" in when else None
    values = {}
    if "values" in when:
        if not isinstance(when["values"], dict) or not when["values"]:
            raise RulesError(f"{where}: 'values' must map feature names to tests ({', '.join(_VALUE_TESTS)})")
        values = {str(k): _value_tests(v, f"{where}: values of {k}") for k, v in when["values"].items()}
    segment_rate = None
    if "segment_churn_rate" in when:
        segment_rate = _bounds(when["segment_churn_rate"], f"{where}: segment_churn_rate")
    return Rule(_text(entry["name"], f"{where}: name"), _text(entry["action"], f"{where}: action"),
                _text(entry["rationale"], f"{where}: rationale"), risk_band, top_factors, values, segment_rate)


def _value_tests(tests: Any, where: str) -> dict[str, Any]:
    if not isinstance(tests, dict) or not tests or set(tests) - set(_VALUE_TESTS):
        raise RulesError(f"{where}: expected a mapping with some of {', '.join(_VALUE_TESTS)}, got {tests!r}")
    checked: dict[str, Any] = _bounds({k: v for k, v in tests.items() if k in _BOUNDS}, where, allow_empty=True)
    if "in" in tests:
        if not isinstance(tests["in"], list) or not tests["in"]:
            raise RulesError(f"{where}: 'in' must be a non-empty list of values")
        checked["in"] = tuple(tests["in"])
    return checked


def _bounds(tests: Any, where: str, allow_empty: bool = False) -> dict[str, float]:
    if not isinstance(tests, dict) or set(tests) - set(_BOUNDS) or (not tests and not allow_empty):
        raise RulesError(f"{where}: expected a mapping with min and/or max, got {tests!r}")
    for key, value in tests.items():
        if not _is_number(value):
            raise RulesError(f"{where}: {key} must be a number, got {value!r}")
    if "min" in tests and "max" in tests and tests["min"] > tests["max"]:
        raise RulesError(f"{where}: min {tests['min']} is above max {tests['max']}")
    return {k: float(v) for k, v in tests.items()}


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{where}: expected a non-empty list of names, got {value!r}")
    return tuple(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{where}: expected non-empty text, got {value!r}")
    return value.strip()


def _value_mask(column: pd.Series[Any], tests: Mapping[str, Any]) -> npt.NDArray[Any]:
    mask = _bounds_mask(column.to_numpy(), {k: v for k, v in tests.items() if k in _BOUNDS}) \
        if set(tests) & set(_BOUNDS) else np.ones(len(column), dtype=bool)
    if "in" in tests:
        numeric = pd.api.types.is_numeric_dtype(column)
        allowed = [float(v) for v in tests["in"]] if numeric else [str(v) for v in tests["in"]]
        mask &= column.isin(allowed).to_numpy()
    return mask


def _bounds_mask(values: npt.NDArray[Any], bounds: Mapping[str, float]) -> npt.NDArray[Any]:
    mask = np.ones(len(values), dtype=bool)
    if "min" in bounds:
        mask &= values >= bounds["min"]
    if "max" in bounds:
        mask &= values <= bounds["max"]
    return mask


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
