"""monitoring/batch_metrics.py and the quality alerts (monitoring/rules/quality.yml; its promtool unit tests run
with the other rules' in tests/monitoring/test_config.py, since prometheus.yml loads it)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from common.facts import PROJECT_ROOT
from monitoring import batch_metrics as bm
from monitoring import outcomes
from monitoring.prometheus import RULES_DIR
from tests.monitoring.pushgateway import pushgateway, samples

QUALITY_RULES = RULES_DIR / "quality.yml"


def _alerts():
    return [r for g in yaml.safe_load(QUALITY_RULES.read_text())["groups"] for r in g["rules"]]


def test_rules_use_the_names_and_thresholds_the_code_pushes():
    exprs = " ".join(r["expr"] for r in _alerts())
    for name in (bm.DRIFT_DISTANCE, bm.DRIFT_THRESHOLD, bm.DRIVER_FEATURE, bm.SCORE_PSI,
                 outcomes.METRIC_PREFIX + "auc_upper", outcomes.METRIC_PREFIX + "eval_auc",
                 outcomes.METRIC_PREFIX + "blessing_auc"):
        assert re.search(rf"\b{name}\b", exprs), name
    (psi_rule,) = [r for r in _alerts() if r["alert"] == "ChurnModelServedScoreShift"]
    assert psi_rule["expr"].strip() == f"{bm.SCORE_PSI} > {bm.PSI_ALERT}"


def test_every_quality_alert_has_a_runbook_section():
    docs = (PROJECT_ROOT / "docs" / "monitoring.md").read_text()
    for rule in _alerts():
        assert re.search(rf"^### `{rule['alert']}`$", docs, flags=re.MULTILINE), rule["alert"]
        assert rule["annotations"]["summary"] and f"#{rule['alert'].lower()}" in rule["annotations"]["description"]


def test_population_stability_index():
    rng = np.random.default_rng(1)
    scores = rng.beta(2, 5, 20_000)
    assert bm.population_stability_index(scores, scores) == 0
    assert bm.population_stability_index(scores, rng.beta(2, 5, 20_000)) < 0.01
    shifted = bm.population_stability_index(scores, rng.beta(4, 4, 20_000))
    assert shifted > bm.PSI_ALERT
    # By hand: half/half against all-in-one-bin shares.
    e = np.r_[np.full(50, 0.05), np.full(50, 0.95)]
    a = np.full(100, 0.05)
    expected = (1 - 0.5) * np.log(1 / 0.5) + (bm.PSI_FLOOR - 0.5) * np.log(bm.PSI_FLOOR / 0.5)
    assert bm.population_stability_index(e, a) == pytest.approx(expected)
    with pytest.raises(ValueError, match="both sides"):
        bm.population_stability_index([], a)


def test_drift_and_score_shift_reach_a_real_pushgateway_with_a_period_label():
    gateway = pushgateway()
    address = next(gateway)
    try:
        bm.publish_drift({"Age": 0.02, "Satisfaction_Score": 0.3}, "2026-05", address, "JENSEN_SHANNON_DIVERGENCE",
                         thresholds={"Age": 0.1, "Satisfaction_Score": 0.1}, drivers=["Satisfaction_Score"])
        rng = np.random.default_rng(2)
        eval_scores, served = rng.beta(2, 5, 5_000), rng.beta(4, 4, 5_000)
        psi = bm.publish_score_shift(eval_scores, served, 3, "2026-05", address)
        assert psi == bm.population_stability_index(eval_scores, served) > bm.PSI_ALERT
        got = samples(address, "churn_")
        base = 'instance="",job="churn_drift"'
        assert got[f'churn_feature_drift{{feature="Satisfaction_Score",{base},'
                   'measure="JENSEN_SHANNON_DIVERGENCE",period="2026-05"}'] == 0.3
        assert got[f'churn_feature_drift_threshold{{feature="Age",{base},measure="JENSEN_SHANNON_DIVERGENCE"}}'] == 0.1
        assert got[f'churn_feature_is_driver{{feature="Age",{base}}}'] == 0
        assert got[f'churn_feature_is_driver{{feature="Satisfaction_Score",{base}}}'] == 1
        score = 'instance="",job="churn_drift_score",model_version="3",period="2026-05"'
        assert got[f"churn_score_psi{{{score}}}"] == pytest.approx(psi)
        for split, scores in (("eval", eval_scores), ("served", served)):
            shares = {k: v for k, v in got.items() if k.startswith(bm.SCORE_BIN_SHARE) and f'split="{split}"' in k}
            assert len(shares) == bm.PSI_BINS and sum(shares.values()) == pytest.approx(1)
            in_top_bin = float(np.mean(scores >= 0.9))
            assert shares[f'{bm.SCORE_BIN_SHARE}{{bin="0.9-1.0",instance="",job="churn_drift_score",'
                          f'model_version="3",period="2026-05",split="{split}"}}'] == pytest.approx(in_top_bin)
        # A new push replaces the job's previous one.
        bm.publish_drift({"Age": 0.01}, "2026-06", address, "JENSEN_SHANNON_DIVERGENCE")
        assert not [k for k in samples(address, "churn_feature_drift{") if "2026-05" in k]
    finally:
        gateway.close()
    with pytest.raises(bm.PushError, match="Pushgateway at"):
        bm.publish_drift({"Age": 0.01}, "2026-06", address, "L_INFTY")
    with pytest.raises(ValueError, match="both sides"):
        bm.publish_score_shift([], [0.5], 3, "2026-05", address)
