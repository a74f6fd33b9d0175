"""monitoring.outcomes: the join, the quality measures, the CLI's outputs and errors, the Pushgateway push."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from common import exit_codes
from modules.features import ID_KEYS, LABEL_KEY
from monitoring import outcomes
from monitoring.outcomes import AS_OF_COLUMN
from monitoring.prediction_store import Prediction, PredictionStore
from tests.monitoring.pushgateway import pushgateway, samples

T = datetime(2026, 1, 15, tzinfo=timezone.utc)


def _delong_brute_force(y, p):
    """DeLong's structural components from their definition (O(m n)), for the check."""
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)


def test_delong_auc_matches_definition_and_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.2, 300), 0, 1), 2)  # rounded: ties
    auc, low, high = outcomes.delong_auc(y, p)
    ref_auc, ref_var = _delong_brute_force(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p)) == pytest.approx(ref_auc)
    assert (high - low) / 2 == pytest.approx(1.959964 * np.sqrt(ref_var), rel=1e-5)
    assert low < auc < high
    assert all(np.isnan(outcomes.delong_auc(np.ones(5), np.linspace(0, 1, 5))))


def test_quality_measures():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.95, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.15])
    d = (p >= 0.5).astype(int)
    q = outcomes.quality(y, p, d)
    assert (q.labelled, q.churned, q.churn_rate) == (10, 3, 0.3)
    assert q.precision == pytest.approx(2 / 3) and q.recall == pytest.approx(2 / 3)
    assert q.lift_top_decile == pytest.approx(1 / 0.3)  # the top 10 % (one row) churned
    assert q.brier == pytest.approx(brier_score_loss(y, p))
    assert q.auc == pytest.approx(roc_auc_score(y, p))
    assert [(round(b, 1), n) for b, _, _, n in q.reliability] == \
        [(0.0, 2), (0.1, 2), (0.2, 1), (0.3, 1), (0.4, 1), (0.5, 1), (0.6, 1), (0.9, 1)]
    assert q.reliability[1][1:3] == pytest.approx((0.125, 0.5))


def _labels(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[ID_KEYS[0], LABEL_KEY, AS_OF_COLUMN]).assign(
        **{AS_OF_COLUMN: lambda f: pd.to_datetime(f[AS_OF_COLUMN])})


def _preds(rows) -> pd.DataFrame:
    store_rows = [{"customer_id": c, "model_version": v, "signature": "serving_default", "period": at[:7],
                   "scored_at": pd.Timestamp(at), "probability": pr, "threshold": 0.5, "decision": int(pr >= 0.5),
                   "segment": None, "action": None, "source": "batch"} for c, v, at, pr in rows]
    return pd.DataFrame(store_rows)


def test_join_takes_the_latest_prediction_before_the_window_per_version():
    labels = _labels([("A", 1, "2026-06-30"), ("B", 0, "2026-06-30"), ("C", 1, "2026-06-30")])
    # Window 90 days: cut-off 2026-04-01.
    preds = _preds([("A", 1, "2026-02-01", 0.2), ("A", 1, "2026-03-31", 0.8), ("A", 1, "2026-04-01", 0.1),
                    ("A", 2, "2026-03-01", 0.6), ("B", 1, "2026-05-01", 0.3), ("D", 1, "2026-01-01", 0.9)])
    joined = outcomes.join(labels, preds, window_days=90).sort_values(["model_version"])
    assert list(zip(joined["customer_id"], joined["model_version"], joined["probability"], strict=True)) == \
        [("A", 1, 0.8), ("A", 2, 0.6)]
    assert outcomes.join(labels, preds.iloc[:0], 90).empty


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store: 400 customers scored by version 1 in January (a good model) and by version 2 in
    February (noise), segments 'loyal' and '<b>risky</b>' (a name that must be escaped in HTML)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    rng = np.random.default_rng(0)
    churn = rng.integers(0, 2, 400)
    rows = []
    for i, c in enumerate(churn):
        segment = "loyal" if i % 2 else "<b>risky</b>"
        good = float(np.clip(0.25 + 0.5 * c + rng.normal(0, 0.15), 0, 1))
        rows.append(Prediction(f"C{i}", 1, "serving_default", T + timedelta(minutes=i), good, "batch", segment=segment))
        rows.append(Prediction(f"C{i}", 2, "serving_default", T + timedelta(days=31, minutes=i), float(rng.random()),
                               "rest", segment=segment))
    with PredictionStore(url) as store:
        store.append(rows)
        labels = pd.DataFrame({ID_KEYS[0]: [f"C{i}" for i in range(400)], LABEL_KEY: churn,
                               AS_OF_COLUMN: "2026-06-30"})
        labels.to_sql("churn_labels", store.engine.raw_connection().driver_connection, index=False)
    (tmp_path / "labels.csv").write_text(labels.to_csv(index=False))
    return url


def test_cli_reports_table_html_per_version_period_and_segment(store_url: str, tmp_path: Path, capsys):
    html = tmp_path / "out.html"
    code = outcomes.main(["--labels", str(tmp_path / "labels.csv"), "--store", store_url, "--html", str(html)])
    out = capsys.readouterr().out
    assert code == exit_codes.OK
    lines = {tuple(line.split()[:3]): line for line in out.splitlines()[1:] if line.strip()}
    assert ("1", "2026-01", "(all)") in lines and ("2", "2026-02", "(all)") in lines
    assert ("1", "2026-01", "loyal") in lines and ("2", "2026-02", "<b>risky</b>") in lines
    rows = outcomes.report(outcomes.join(outcomes.read_labels(str(tmp_path / "labels.csv")),
                                         PredictionStore(store_url).read()))
    overall = {r.model_version: r.quality for r in rows if r.segment is None}
    assert overall[1].auc > 0.9 and overall[1].auc_low > 0.85      # the good model
    assert overall[2].auc_low < 0.5 < overall[2].auc_high          # the noise
    assert overall[1].labelled == overall[2].labelled == 400
    page = html.read_text()
    assert "&lt;b&gt;risky&lt;/b&gt;" in page and "<b>risky</b>" not in page
    assert "Version 2, 2026-02" in page and "800 labelled prediction(s)" in out  # 400 labels x 2 versions
    # The same labels read from a table in the store's database give the same report.
    assert outcomes.main(["--labels", "churn_labels", "--store", store_url, "--html", str(html)]) == exit_codes.OK
    assert capsys.readouterr().out == out


@pytest.mark.parametrize("content, message", [
    (None, "no such file, nor a table"),
    ("", "not a readable CSV file"),
    ("Customer_ID,Target_Churn\nA,1\n", "missing column(s) as_of_date"),
    ("Customer_ID,Target_Churn,as_of_date\n", "no rows"),
    ("Customer_ID,Target_Churn,as_of_date\nA,yes,2026-06-30\n",
     "Target_Churn must be 0 or 1; 1 row(s) are not (first: 'yes')"),
    ("Customer_ID,Target_Churn,as_of_date\nA,1,30/06/2026\n", "as_of_date must be a YYYY-MM-DD date"),
    ("Customer_ID,Target_Churn,as_of_date\nA,1,2026-06-30\n,0,2026-06-30\n",
     "1 row(s) with an empty Customer_ID (first at data row 2)"),
])
def test_bad_label_files_exit_2_with_a_clear_message(store_url, tmp_path: Path, capsys, content, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    code = outcomes.main(["--labels", str(path), "--store", store_url, "--html", str(tmp_path / "o.html")])
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE and err.startswith("error: labels") and message in err, err
    assert not (tmp_path / "o.html").exists()


def test_bad_eval_auc_flag_is_a_usage_error(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        outcomes.main(["--labels", "x.csv", "--eval-auc", "1=1.5"])
    assert exit_info.value.code == exit_codes.USAGE
    assert "expected VERSION=AUC with AUC in [0, 1], got '1=1.5'" in capsys.readouterr().err


def test_unmatched_labels_exit_3_and_unreachable_store_exits_2(store_url, tmp_path: Path, capsys):
    path = tmp_path / "early.csv"
    path.write_text("Customer_ID,Target_Churn,as_of_date\nC1,1,2026-02-01\n")  # window starts before any score
    assert outcomes.main(["--labels", str(path), "--store", store_url, "--html", str(tmp_path / "o.html")]) \
        == exit_codes.NO_MATCH
    assert "nothing to judge" in capsys.readouterr().err
    unreachable = "postgresql+psycopg2://x@127.0.0.1:1/none"
    assert outcomes.main(["--labels", str(path), "--store", unreachable]) == exit_codes.USAGE
    assert "cannot open the prediction store" in capsys.readouterr().err


def test_metrics_reach_a_real_pushgateway_with_a_period_label(store_url, tmp_path: Path, capsys):
    gateway = pushgateway()
    address = next(gateway)
    try:
        code = outcomes.main(["--labels", str(tmp_path / "labels.csv"), "--store", store_url,
                              "--html", str(tmp_path / "o.html"), "--pushgateway", address,
                              "--eval-auc", "1=0.93", "--eval-auc", "2=0.91", "--blessing-auc", "0.6"])
        assert code == exit_codes.OK
        got = samples(address, "churn_outcome_")
        key = 'churn_outcome_auc{{instance="",job="churn_outcomes",model_version="{v}",period="{p}"}}'
        assert got[key.format(v=1, p="2026-01")] > 0.9
        assert 0.3 < got[key.format(v=2, p="2026-02")] < 0.7
        assert got[key.format(v=1, p="2026-01").replace("auc{", "labelled{")] == 400
        assert key.format(v=2, p="2026-01") not in got
        assert got['churn_outcome_eval_auc{instance="",job="churn_outcomes",model_version="2"}'] == 0.91
        assert got['churn_outcome_blessing_auc{instance="",job="churn_outcomes"}'] == 0.6
    finally:
        gateway.close()
    assert outcomes.main(["--labels", str(tmp_path / "labels.csv"), "--store", store_url,
                          "--html", str(tmp_path / "o.html"), "--pushgateway", address]) == exit_codes.USAGE
    assert "Pushgateway" in capsys.readouterr().err


def test_the_pushgateway_comes_from_the_environment_without_the_flag(store_url, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from monitoring.batch_metrics import PUSHGATEWAY_ENV

    gateway = pushgateway()
    address = next(gateway)
    try:
        monkeypatch.setenv(PUSHGATEWAY_ENV, address)
        code = outcomes.main(["--labels", str(tmp_path / "labels.csv"), "--store", store_url,
                              "--html", str(tmp_path / "o.html")])
        got = samples(address, "churn_outcome_auc{")
    finally:
        gateway.close()
    assert code == exit_codes.OK
    assert 'churn_outcome_auc{instance="",job="churn_outcomes",model_version="1",period="2026-01"}' in got


def test_quality_alert_rule_uses_the_margin_of_quality_down():
    """monitoring/rules/quality.yml's ChurnModelOutcomeQualityDown is quality_down: the same margin, the same
    two bounds (so the e2e tests and the simulation can compute when it must fire without re-typing it)."""
    import yaml

    from monitoring.alerting import QUALITY_RULES

    (rule,) = [r for g in yaml.safe_load(QUALITY_RULES.read_text())["groups"] for r in g["rules"]
               if r["alert"] == "ChurnModelOutcomeQualityDown"]
    expr = " ".join(rule["expr"].split())
    upper, eval_auc, bound = (outcomes.METRIC_PREFIX + name for name in ("auc_upper", "eval_auc", "blessing_auc"))
    assert (f"{upper} < on (model_version) group_left () ({eval_auc} - {outcomes.QUALITY_AUC_MARGIN})"
            in expr)
    assert f"{upper} < on () group_left () {bound}" in expr


@pytest.mark.parametrize(("upper", "eval_auc", "bound", "down"), [
    (0.74, 0.80, 0.6, True),    # below eval AUC - 0.05
    (0.76, 0.80, 0.6, False),   # within the margin
    (0.58, None, 0.6, True),    # below the blessing bound, no eval AUC pushed
    (0.58, 0.60, None, False),  # within the margin, no bound pushed
    (0.50, None, None, False),  # nothing to compare with: the rule cannot fire
])
def test_quality_down_is_the_rule_s_condition(upper, eval_auc, bound, down):
    assert outcomes.quality_down(upper, eval_auc, bound) is down
