"""Tests for data/generate.py: the synthetic data must be reproducible, inside the schema's
domains, and carry exactly the churn signal documented in data/README.md."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import generate as gen

REPO = Path(__file__).resolve().parents[2]
KAGGLE_CSV = REPO.parent / "shared" / "data" / "online_retail_customer_churn.csv"

# Bayes-optimal AUC on 200,000 fresh rows, as stated in data/README.md.
README_BAYES_AUC = 0.829

# Inclusive bounds the generator guarantees (data/README.md); all inside the curated schema.
DOMAINS = {
    "Age": (18, 69),
    "Annual_Income": (20.01, 199.98),
    "Total_Spend": (110.0, 9999.0),
    "Years_as_Customer": (1, 19),
    "Num_of_Purchases": (1, 99),
    "Average_Transaction_Amount": (10.5, 499.5),
    "Num_of_Returns": (0, 9),
    "Num_of_Support_Contacts": (0, 4),
    "Satisfaction_Score": (1, 5),
    "Last_Purchase_Days_Ago": (1, 364),
}
CURATED_SCHEMA = {
    "Age": (18, 70),
    "Annual_Income": (20, 200),
    "Total_Spend": (100, 10000),
    "Years_as_Customer": (1, 20),
    "Num_of_Purchases": (1, 100),
    "Average_Transaction_Amount": (10, 500),
    "Num_of_Returns": (0, 10),
    "Num_of_Support_Contacts": (0, 5),
    "Satisfaction_Score": (1, 5),
    "Last_Purchase_Days_Ago": (1, 365),
}
FLOAT_COLUMNS = ("Annual_Income", "Total_Spend", "Average_Transaction_Amount")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return gen.generate(20_000)


def test_same_seed_gives_identical_frame_and_other_seed_differs() -> None:
    first = gen.generate(2_500, seed=7)
    pd.testing.assert_frame_equal(first, gen.generate(2_500, seed=7))
    other = gen.generate(2_500, seed=8)
    assert not first.drop(columns="Customer_ID").equals(other.drop(columns="Customer_ID"))


def test_columns_order_and_dtypes(frame: pd.DataFrame) -> None:
    assert tuple(frame.columns) == gen.COLUMNS
    assert len(gen.COLUMNS) == 15
    for column in gen.COLUMNS:
        if column in FLOAT_COLUMNS:
            assert frame[column].dtype == np.float64, column
        elif column in ("Gender", "Promotion_Response"):
            assert frame[column].dtype == object, column
        elif column == "Email_Opt_In":
            assert frame[column].dtype == bool
        else:
            assert frame[column].dtype == np.int64, column


def test_values_inside_documented_and_curated_domains(frame: pd.DataFrame) -> None:
    for column, (low, high) in DOMAINS.items():
        assert frame[column].between(low, high).all(), column
        curated_low, curated_high = CURATED_SCHEMA[column]
        assert curated_low <= low and high <= curated_high, column
    for column in FLOAT_COLUMNS:
        cents = frame[column] * 100
        assert np.allclose(cents, cents.round(), rtol=0, atol=1e-6), column


def test_categorical_values_and_balance(frame: pd.DataFrame) -> None:
    assert set(frame["Gender"]) == set(gen.GENDERS)
    assert set(frame["Promotion_Response"]) == set(gen.PROMOTION_RESPONSES)
    assert set(frame["Target_Churn"]) == {0, 1}
    assert frame["Gender"].value_counts(normalize=True).between(0.30, 0.37).all()
    assert frame["Promotion_Response"].value_counts(normalize=True).between(0.25, 0.42).all()
    assert 0.45 <= frame["Email_Opt_In"].mean() <= 0.60


def test_customer_id_is_unique_sequence(frame: pd.DataFrame) -> None:
    assert frame["Customer_ID"].is_unique
    assert (frame["Customer_ID"].to_numpy() == np.arange(1, len(frame) + 1)).all()


def test_features_are_correlated_like_real_customers(frame: pd.DataFrame) -> None:
    basket_total = frame["Num_of_Purchases"] * frame["Average_Transaction_Amount"]
    assert np.corrcoef(frame["Total_Spend"], basket_total)[0, 1] > 0.9
    assert frame["Num_of_Purchases"].corr(frame["Num_of_Returns"]) > 0.3
    assert frame["Num_of_Returns"].corr(frame["Num_of_Support_Contacts"]) > 0.2
    assert frame["Satisfaction_Score"].corr(frame["Num_of_Support_Contacts"]) < -0.2
    assert frame["Age"].corr(frame["Annual_Income"]) > 0.15
    assert (frame["Years_as_Customer"] <= (frame["Age"] - 17).clip(lower=1)).all()


def test_clipping_is_rare(frame: pd.DataFrame) -> None:
    for column in ("Total_Spend", "Average_Transaction_Amount", "Num_of_Purchases"):
        low, high = DOMAINS[column]
        assert ((frame[column] == low) | (frame[column] == high)).mean() < 0.005, column


def test_churn_rate_near_half(frame: pd.DataFrame) -> None:
    assert 0.45 <= frame["Target_Churn"].mean() <= 0.55
    assert 0.45 <= gen.true_churn_probability(frame).mean() <= 0.55


def test_bayes_auc_matches_readme(frame: pd.DataFrame) -> None:
    auc = gen.roc_auc(frame["Target_Churn"], gen.true_churn_probability(frame))
    assert abs(auc - README_BAYES_AUC) <= 0.01


def test_true_effect_directions(frame: pd.DataFrame) -> None:
    p = gen.true_churn_probability
    observed = p(frame)
    days = frame["Last_Purchase_Days_Ago"]
    assert observed[days > 270].mean() > observed[days < 60].mean() + 0.2

    def higher(column: str, value: object, other: object) -> bool:
        """Counterfactual: does `column` = `value` raise P(churn) over `other` for every row?"""
        return bool((p(frame.assign(**{column: value})) > p(frame.assign(**{column: other}))).all())

    assert higher("Last_Purchase_Days_Ago", 300, 30)
    assert higher("Satisfaction_Score", 2, 4)
    assert higher("Promotion_Response", "Unsubscribed", "Ignored")
    assert higher("Promotion_Response", "Ignored", "Responded")
    assert higher("Email_Opt_In", False, True)
    assert (p(frame.assign(Years_as_Customer=frame["Years_as_Customer"] + 1)) < observed).all()
    assert (p(frame.assign(Num_of_Returns=frame["Num_of_Returns"] + 1)) > observed).all()


def test_features_without_direct_effect_do_not_change_probability(frame: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    baseline = gen.true_churn_probability(frame)
    for column in ("Gender", "Customer_ID", "Age", "Annual_Income", "Total_Spend",
                   "Num_of_Purchases", "Average_Transaction_Amount"):
        shuffled = frame.assign(**{column: rng.permutation(frame[column].to_numpy())})
        assert np.array_equal(gen.true_churn_probability(shuffled), baseline), column


def test_recency_effect_is_non_linear(frame: pd.DataFrame) -> None:
    def mean_p(days: int) -> float:
        return float(gen.true_churn_probability(frame.assign(Last_Purchase_Days_Ago=days)).mean())

    early = mean_p(90) - mean_p(30)
    middle = mean_p(210) - mean_p(150)
    late = mean_p(364) - mean_p(300)
    assert middle > 0.2
    assert early < middle / 4 and late < middle / 4


def test_support_contacts_hurt_more_when_satisfaction_is_low(frame: pd.DataFrame) -> None:
    def support_effect(satisfaction: int) -> np.ndarray:
        at = frame.assign(Satisfaction_Score=satisfaction)
        many = gen.true_churn_probability(at.assign(Num_of_Support_Contacts=4))
        none = gen.true_churn_probability(at.assign(Num_of_Support_Contacts=0))
        return many - none

    assert support_effect(1).mean() > 0.2
    assert np.abs(support_effect(5)).max() < 1e-12


def test_labels_are_drawn_from_true_probability(frame: pd.DataFrame) -> None:
    probability = gen.true_churn_probability(frame)
    quintiles = pd.qcut(probability, 5, labels=False)
    observed = frame["Target_Churn"].groupby(quintiles).mean()
    expected = pd.Series(probability).groupby(quintiles).mean()
    assert (observed - expected).abs().max() < 0.03
    assert observed.iloc[-1] - observed.iloc[0] > 0.6


def test_generate_equals_written_csv(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    gen.write_csv(path, 2_345, seed=3)
    pd.testing.assert_frame_equal(pd.read_csv(path), gen.generate(2_345, seed=3))


def test_output_does_not_depend_on_chunking(tmp_path: Path) -> None:
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    gen.write_csv(small, 3_500, seed=5, chunk_rows=1)
    gen.write_csv(big, 3_500, seed=5, chunk_rows=100_000)
    assert small.read_bytes() == big.read_bytes()
    pd.testing.assert_frame_equal(
        gen.generate(3_500, seed=5).head(1_750), gen.generate(1_750, seed=5)
    )


def test_first_rows_of_bigger_file_equal_smaller_file(tmp_path: Path) -> None:
    short, long = tmp_path / "short.csv", tmp_path / "long.csv"
    gen.write_csv(short, 1_500, seed=11, chunk_rows=1_000)
    gen.write_csv(long, 3_000, seed=11, chunk_rows=2_000)
    short_lines = short.read_bytes().splitlines(keepends=True)
    long_lines = long.read_bytes().splitlines(keepends=True)
    assert len(short_lines) == 1_501 and len(long_lines) == 3_001
    assert long_lines[:1_501] == short_lines
    assert long_lines[1_501].startswith(b"1501,")


def test_bundled_csv_matches_code(tmp_path: Path) -> None:
    bundled = gen.DEFAULT_OUT
    pd.testing.assert_frame_equal(pd.read_csv(bundled), gen.generate(gen.DEFAULT_ROWS))
    fresh = tmp_path / "customers.csv"
    gen.write_csv(fresh, gen.DEFAULT_ROWS)
    assert fresh.read_bytes() == bundled.read_bytes()


def test_bundled_csv_has_header_and_no_index() -> None:
    header = gen.DEFAULT_OUT.read_text(encoding="utf-8").split("\n", 1)[0]
    assert header == ",".join(gen.COLUMNS)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "data" / "generate.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_cli_writes_same_file_as_write_csv(tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    result = _run_cli("--rows", "1200", "--out", str(out), "--seed", "9")
    assert result.returncode == 0, result.stderr
    expected = tmp_path / "api.csv"
    gen.write_csv(expected, 1_200, seed=9)
    assert out.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize(
    "args, word",
    [
        (("--rows", "0"), "rows"),
        (("--rows", "-3"), "rows"),
        (("--rows", "ten"), "rows"),
        (("--rows", "10", "--out", "/nonexistent-dir/sub/x.csv"), "cannot write"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args: tuple[str, ...], word: str) -> None:
    result = _run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert word in result.stderr


def test_cli_output_that_is_a_directory_exits_2_and_leaves_nothing(tmp_path: Path) -> None:
    result = _run_cli("--rows", "10", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("generate.py: error: cannot write")
    assert "Traceback" not in result.stderr
    assert not (tmp_path.parent / (tmp_path.name + ".partial")).exists()


def test_api_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        gen.generate(0)
    with pytest.raises(ValueError):
        gen.generate(10, seed=-1)
    with pytest.raises(ValueError):
        gen.true_churn_probability(gen.generate(5).assign(Email_Opt_In="yes"))
    with pytest.raises(ValueError):
        gen.true_churn_probability(gen.generate(5).assign(Promotion_Response="Maybe"))


def test_roc_auc_handles_order_and_ties() -> None:
    assert gen.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert gen.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert gen.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (0.4 vs 0.1) win, (0.4 vs 0.4) tie, (0.2 vs 0.1) win, (0.2 vs 0.4) loss
    assert gen.roc_auc([0, 1, 1, 0], [0.1, 0.4, 0.2, 0.4]) == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError):
        gen.roc_auc([1, 1], [0.1, 0.2])


def test_true_probability_on_kaggle_file_is_chance_level() -> None:
    kaggle = pd.read_csv(KAGGLE_CSV)
    assert kaggle["Email_Opt_In"].dtype == bool
    probability = gen.true_churn_probability(kaggle)
    as_strings = kaggle.assign(Email_Opt_In=kaggle["Email_Opt_In"].astype(str))
    assert np.array_equal(gen.true_churn_probability(as_strings), probability)
    assert abs(gen.roc_auc(kaggle["Target_Churn"], probability) - 0.5) <= 0.06


def test_write_csv_streams_holding_one_chunk_at_a_time(tmp_path: Path) -> None:
    """`--rows 1000000` must not need the whole table in memory: peak allocation follows chunk_rows, not rows."""
    import tracemalloc

    def peak_bytes(write: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            write()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = peak_bytes(lambda: gen.write_csv(tmp_path / "a.csv", 100_000, seed=3, chunk_rows=5_000))
    whole = peak_bytes(lambda: gen.generate(100_000, seed=3))
    assert streamed < whole / 5, (streamed, whole)


@pytest.fixture(scope="module")
def variants() -> dict[str, pd.DataFrame]:
    return {v: gen.generate(40_000, seed=1, variant=v) for v in gen.VARIANTS}


def test_variants_keep_the_standard_feature_columns_and_only_change_the_label(variants) -> None:
    standard = variants[gen.STANDARD]
    features = standard.columns.drop("Target_Churn")
    for _variant, frame in variants.items():
        pd.testing.assert_frame_equal(frame[features], standard[features])
        assert frame.columns[-1] == "Target_Churn"
    assert list(variants[gen.MANY_CATEGORICALS].columns[-4:]) == [*gen.CATEGORICAL_COLUMNS, "Target_Churn"]
    assert not variants[gen.INTERACTIONS]["Target_Churn"].equals(standard["Target_Churn"])


def test_rare_churn_variant_churns_about_three_percent_with_a_ranking_signal(variants) -> None:
    frame = variants[gen.RARE_CHURN]
    assert 0.025 <= frame["Target_Churn"].mean() <= 0.035
    assert gen.roc_auc(frame["Target_Churn"], gen.true_churn_probability(frame, gen.RARE_CHURN)) > 0.85


def test_many_categoricals_variant_has_many_levels_that_matter(variants) -> None:
    frame = variants[gen.MANY_CATEGORICALS]
    for column, (levels, _) in gen.CATEGORICAL_COLUMNS.items():
        assert set(frame[column]) == set(gen.category_levels(column)) and len(gen.category_levels(column)) == levels
    probability = gen.true_churn_probability(frame, gen.MANY_CATEGORICALS)
    assert gen.roc_auc(frame["Target_Churn"], probability) > gen.roc_auc(
        frame["Target_Churn"], gen.true_churn_probability(frame)) + 0.01  # the categories carry signal
    with pytest.raises(ValueError, match="Region"):
        gen.true_churn_probability(frame.assign(Region="Atlantis"), gen.MANY_CATEGORICALS)


def test_interactions_variant_defeats_an_additive_model(variants) -> None:
    """Its churn depends on combinations: a logistic regression on the columns stays well below the Bayes AUC."""
    from sklearn.linear_model import LogisticRegression

    frame = variants[gen.INTERACTIONS]
    columns = pd.get_dummies(frame.drop(columns=["Customer_ID", "Target_Churn"]), dtype=float)
    columns = (columns - columns.mean()) / columns.std()
    train, test = slice(0, 30_000), slice(30_000, None)
    labels = frame["Target_Churn"].to_numpy()
    additive = LogisticRegression(max_iter=1_000).fit(columns[train], labels[train]).predict_proba(columns[test])[:, 1]
    bayes = gen.true_churn_probability(frame.iloc[test], gen.INTERACTIONS)
    assert gen.roc_auc(labels[test], bayes) - gen.roc_auc(labels[test], additive) > 0.02


def test_unknown_variant_is_rejected_by_the_api_and_the_cli() -> None:
    with pytest.raises(ValueError, match="variant"):
        gen.generate(10, variant="tiny")
    result = _run_cli("--rows", "10", "--variant", "tiny")
    assert result.returncode == 2 and "variant" in result.stderr and "Traceback" not in result.stderr
