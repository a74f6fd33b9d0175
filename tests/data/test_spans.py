"""Tests for data/spans.py (monthly spans of one population): stationary before the shift, the documented
change at it, label timing, and the folder layout and Bayes AUC table data/README.md shows."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import generate as gen
from data import spans
from monitoring.outcomes import QUALITY_AUC_MARGIN, delong_auc, quality_down
from pipeline import drift_gate
from pipeline.config import DEFAULT_MIN_AUC

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def months() -> list[spans.Month]:
    """Five months of 5,000 customers, the shift from month 3."""
    return spans.simulate(5, shift_at=3, rows=5_000, seed=7)


def test_population_keeps_its_size_ids_and_genders(months: list[spans.Month]) -> None:
    for before, after in pairwise(months):
        assert len(after.frame) == 5_000 and after.frame["Customer_ID"].is_unique
        stayed = before.frame[before.frame["Target_Churn"] == 0]
        kept = after.frame.set_index("Customer_ID").loc[stayed["Customer_ID"]]
        assert (kept["Gender"].to_numpy() == stayed["Gender"].to_numpy()).all()
        joined = after.frame[~after.frame["Customer_ID"].isin(before.frame["Customer_ID"])]
        assert len(joined) == before.frame["Target_Churn"].sum()  # inflow = outflow
        assert joined["Customer_ID"].min() > max(m.frame["Customer_ID"].max() for m in months[:before.index + 1])
        assert tuple(after.frame.columns) == gen.COLUMNS


def test_month_m_label_is_churn_during_month_m_plus_1(months: list[spans.Month]) -> None:
    """Target_Churn of month m is 1 exactly for the customers absent from month m+1's snapshot."""
    for before, after in pairwise(months):
        gone = ~before.frame["Customer_ID"].isin(after.frame["Customer_ID"])
        assert (before.frame["Target_Churn"].astype(bool) == gone).all()
        assert 0.4 < gone.mean() < 0.65


def test_a_month_does_not_depend_on_later_months(months: list[spans.Month]) -> None:
    shorter = spans.simulate(3, shift_at=3, rows=5_000, seed=7)
    for short, long in zip(shorter, months[:3], strict=True):
        pd.testing.assert_frame_equal(short.frame, long.frame)
        assert np.array_equal(short.probability, long.probability)


def test_no_drift_before_the_shift_and_drift_at_it_only_on_the_documented_features(
        months: list[spans.Month]) -> None:
    schema = drift_gate.gate_schema()
    statistics = [drift_gate.statistics_of(m.frame) for m in months[:4]]
    for previous, current in pairwise(statistics[:3]):
        verdict = drift_gate.compare(current, previous, schema)
        assert verdict.distances and not verdict.drifted, verdict.drifted
    at_shift = drift_gate.compare(statistics[3], statistics[2], schema)
    assert {d.feature for d in at_shift.drifted} == set(spans.SHIFTED_FEATURES)
    assert months[2].frame["Email_Opt_In"].mean() - months[3].frame["Email_Opt_In"].mean() > 0.15


def test_the_mechanism_changes_at_the_shift(months: list[spans.Month]) -> None:
    def p(frame: pd.DataFrame, month: int) -> np.ndarray:
        return spans.churn_probability(frame, month, shift_at=3)

    frame = months[2].frame
    opted_in, opted_out = frame.assign(Email_Opt_In=True), frame.assign(Email_Opt_In=False)
    cheap, dear = frame.assign(Average_Transaction_Amount=30.0), frame.assign(Average_Transaction_Amount=150.0)
    assert (p(opted_in, 2) < p(opted_out, 2)).all()  # before: e-mail keeps customers ...
    assert np.array_equal(p(cheap, 2), p(dear, 2))  # ... and price does not matter
    assert np.allclose(p(opted_in, 3), p(opted_out, 3), rtol=0, atol=1e-12)  # from K: e-mail stops mattering
    assert (p(dear, 3) > p(cheap, 3)).all() and (p(dear, 3) - p(cheap, 3)).mean() > 0.5  # basket size dominates
    assert np.array_equal(p(frame, 2), gen.true_churn_probability(frame))  # the standard mechanism before K


def test_labels_follow_each_month_s_probability(months: list[spans.Month]) -> None:
    for month in months:
        assert month.shifted == (month.index >= 3)
        assert abs(month.frame["Target_Churn"].mean() - month.probability.mean()) < 0.03
    assert all(abs(m.bayes_auc - 0.829) < 0.025 for m in months[:3])
    assert all(m.bayes_auc > 0.83 for m in months[3:])  # a model retrained on the new mechanism can do well


def test_the_stale_model_falls_far_enough_for_the_quality_alert(months: list[spans.Month]) -> None:
    """The best pre-shift model (the standard mechanism's exact probability) on each shifted month of 5,000
    customers: even the upper end of its outcome AUC's 95 % interval (monitoring.outcomes, the alert's interval)
    is below what ChurnModelOutcomeQualityDown needs, eval AUC - QUALITY_AUC_MARGIN, for a trained model whose
    eval AUC is up to 0.05 below the pre-shift Bayes AUC."""
    eval_auc = min(m.bayes_auc for m in months[:3]) - 0.05
    for month in months[3:]:
        auc, _, upper = delong_auc(month.frame["Target_Churn"].to_numpy(), gen.true_churn_probability(month.frame))
        assert quality_down(upper, eval_auc, DEFAULT_MIN_AUC), (month.index, auc, upper, eval_auc)
        assert upper < eval_auc - QUALITY_AUC_MARGIN
    # and before the shift it is not down
    for month in months[:3]:
        _, _, upper = delong_auc(month.frame["Target_Churn"].to_numpy(), gen.true_churn_probability(month.frame))
        assert not quality_down(upper, eval_auc, DEFAULT_MIN_AUC)


def test_write_spans_layout_and_manifest(tmp_path: Path, months: list[spans.Month]) -> None:
    entries = spans.write_spans(tmp_path / "spans", 5, shift_at=3, rows=5_000, seed=7, start="2025-11")
    assert [e["date"] for e in entries] == ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    for entry, month in zip(entries, months, strict=True):
        path = tmp_path / "spans" / f"span-{month.index}" / f"customers-{entry['date']}.csv"
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
        pd.testing.assert_frame_equal(pd.read_csv(path), month.frame.reset_index(drop=True))
        assert entry["bayes_auc"] == round(month.bayes_auc, 4)
    manifest = json.loads((tmp_path / "spans" / spans.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["shift_at"] == 3 and manifest["spans"] == entries
    assert not list((tmp_path / "spans").glob("*.partial"))


def test_readme_states_every_month_s_bayes_auc_of_the_default_scenario() -> None:
    readme = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    default = spans.simulate(spans.DEFAULT_MONTHS, spans.DEFAULT_SHIFT_AT)
    assert spans.format_table([spans.describe(m) for m in default]) in readme


def test_month_date_and_bad_arguments() -> None:
    assert spans.month_date("2026-11", 3) == "2027-02"
    for bad in ("2026-13", "26-01", "2026/01", "x"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            spans.month_date(bad, 0)
    with pytest.raises(ValueError, match="months"):
        spans.simulate(0, 1)
    with pytest.raises(ValueError, match="shift-at"):
        spans.simulate(3, 4)
    with pytest.raises(ValueError, match="rows"):
        spans.simulate(3, 1, rows=0)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "data" / "generate.py"), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_writes_spans_and_prints_the_table(tmp_path: Path) -> None:
    result = _run_cli("--months", "2", "--shift-at", "1", "--rows", "1000", "--out", str(tmp_path / "s"),
                      "--seed", "3", "--start", "2026-05")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\| 1 \| 2026-06 \| yes \|", result.stdout, re.MULTILINE)
    written = pd.read_csv(tmp_path / "s" / "span-1" / "customers-2026-06.csv")
    pd.testing.assert_frame_equal(written, spans.simulate(2, 1, rows=1_000, seed=3)[1].frame.reset_index(drop=True))


@pytest.mark.parametrize("args, word", [
    (("--months", "0"), "months"),
    (("--months", "3", "--shift-at", "4"), "shift-at"),
    (("--months", "3", "--shift-at", "0"), "shift-at"),
    (("--shift-at", "2"), "--months"),
    (("--start", "2026-01"), "--months"),
    (("--months", "2", "--start", "Jan 2026"), "YYYY-MM"),
    (("--months", "2", "--variant", "rare_churn"), "variant"),
])
def test_cli_bad_month_arguments_exit_2_with_one_line(tmp_path: Path, args: tuple[str, ...], word: str) -> None:
    result = _run_cli(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert word in result.stderr
    assert not (tmp_path / "out").exists()
