"""Deterministic synthetic customer-churn data with a known, learnable churn mechanism.

The public Kaggle "Online Retail Customer Churn" file has the right shape but a label that is
pure noise (AUC ~0.5), so no pipeline can be judged on it. This module produces rows with the
same 15 columns, order, types and value domains, correlated like real customers, and draws the
label from `true_churn_probability`, so the Bayes-optimal AUC of any sample is computable.

Run `python data/generate.py --rows N --out PATH [--seed S] [--variant V]`; see data/README.md.
`--months N [--shift-at K]` writes monthly spans of one population instead (data/spans.py).
Variants other than the default "standard" (which writes the bundled file, byte for byte) change
the churn mechanism or add columns, for benchmarking models on tables unlike the bundled one.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

COLUMNS = (
    "Customer_ID",
    "Age",
    "Gender",
    "Annual_Income",
    "Total_Spend",
    "Years_as_Customer",
    "Num_of_Purchases",
    "Average_Transaction_Amount",
    "Num_of_Returns",
    "Num_of_Support_Contacts",
    "Satisfaction_Score",
    "Last_Purchase_Days_Ago",
    "Email_Opt_In",
    "Promotion_Response",
    "Target_Churn",
)
DEFAULT_ROWS = 10_000
DEFAULT_SEED = 20_240_917
DEFAULT_OUT = Path(__file__).parent / "customers.csv"

# Rows b*BLOCK_ROWS .. (b+1)*BLOCK_ROWS-1 always come from the RNG seeded with (seed, b), so a
# file's bytes do not depend on how it is written and a longer file extends a shorter one.
BLOCK_ROWS = 1_000

GENDERS = ("Female", "Male", "Other")
PROMOTION_RESPONSES = ("Responded", "Ignored", "Unsubscribed")

# Churn model (logit scale), documented in data/README.md. Gender and Customer_ID do not appear.
CHURN_INTERCEPT = -0.4
RECENCY_WEIGHT = 2.8  # non-linear: logistic step in Last_Purchase_Days_Ago ...
RECENCY_MIDPOINT_DAYS = 180.0  # ... centred here ...
RECENCY_SCALE_DAYS = 30.0  # ... and this wide
SATISFACTION_WEIGHT = -0.55  # per point above 3
YEARS_WEIGHT = -0.12  # per year as customer
RETURNS_WEIGHT = 0.12  # per return
SUPPORT_X_DISSATISFACTION_WEIGHT = 0.6  # interaction: per contact, times (5 - satisfaction) / 4
PROMOTION_WEIGHTS = {"Responded": 0.0, "Ignored": 0.3, "Unsubscribed": 0.8}
EMAIL_OPT_IN_WEIGHT = -0.5

STANDARD, INTERACTIONS, RARE_CHURN, MANY_CATEGORICALS = "standard", "interactions", "rare_churn", "many_categoricals"
VARIANTS = (STANDARD, INTERACTIONS, RARE_CHURN, MANY_CATEGORICALS)
"""Tables `generate` can make (data/README.md, "Variants"). The feature columns of every variant equal the
standard ones for the same seed; only the label's probability differs, and MANY_CATEGORICALS adds columns."""
RARE_CHURN_SHIFT = -4.8
"""Added to the standard logit in RARE_CHURN: about 3 % churn (measured on 200,000 rows, data/README.md)."""
INTERACTION_WEIGHTS = {"recency_if_opted_out": 3.0, "recency_if_opted_in": 0.6, "support_x_dissatisfaction": 1.4,
                       "young_x_unsubscribed": 1.6, "intercept": -1.0}
"""INTERACTIONS' logit terms (data/README.md): effects that exist only in combination with another column."""
INTERACTION_PAIRS = (("Last_Purchase_Days_Ago", "Email_Opt_In"), ("Num_of_Support_Contacts", "Satisfaction_Score"),
                     ("Age", "Promotion_Response"))
"""The column pairs of INTERACTIONS' combined terms (`_interactions_logit`)."""
CATEGORICAL_COLUMNS = {"Region": (60, 0.7), "Channel": (8, 0.4), "Plan": (15, 0.5)}
"""MANY_CATEGORICALS' extra columns: name -> (number of levels, standard deviation of their logit effects)."""
_CATEGORY_EFFECT_SEED = 15

_DTYPES = {
    "Customer_ID": "int64",
    "Age": "int64",
    "Gender": "object",
    "Annual_Income": "float64",
    "Total_Spend": "float64",
    "Years_as_Customer": "int64",
    "Num_of_Purchases": "int64",
    "Average_Transaction_Amount": "float64",
    "Num_of_Returns": "int64",
    "Num_of_Support_Contacts": "int64",
    "Satisfaction_Score": "int64",
    "Last_Purchase_Days_Ago": "int64",
    "Email_Opt_In": "bool",
    "Promotion_Response": "object",
    "Target_Churn": "int64",
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _email_opt_in(values: pd.Series) -> np.ndarray:
    """Accept bool (pandas parses True/False that way) or the strings "True"/"False"."""
    text = values.astype(str).to_numpy()
    unknown = (text != "True") & (text != "False")
    if unknown.any():
        raise ValueError(f"Email_Opt_In must be True/False, got {text[unknown][0]!r}")
    return text == "True"


def true_churn_probability(frame: pd.DataFrame, variant: str = STANDARD) -> np.ndarray:
    """Exact P(Target_Churn = 1 | features) used to draw the labels, so anyone can score the
    Bayes-optimal classifier on any frame with these columns (including the Kaggle file).

    Raises:
      ValueError: unknown `variant`, or a value outside a column's domain.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == INTERACTIONS:
        return _sigmoid(_interactions_logit(frame))
    logit = _standard_logit(frame)
    if variant == RARE_CHURN:
        logit = logit + RARE_CHURN_SHIFT
    elif variant == MANY_CATEGORICALS:
        for column, (levels, _) in CATEGORICAL_COLUMNS.items():
            effects = dict(zip(category_levels(column), category_effects(column), strict=True))
            mapped = frame[column].map(effects)
            if mapped.isna().any():
                raise ValueError(f"{column} must be one of {column}_01..{column}_{levels:02d}, "
                                 f"got {frame[column][mapped.isna()].iloc[0]!r}")
            logit = logit + mapped.to_numpy(dtype=float)
    return _sigmoid(logit)


def category_levels(column: str) -> list[str]:
    """The values of one of MANY_CATEGORICALS' extra columns: `Region_01`, `Region_02`, ..."""
    return [f"{column}_{i:02d}" for i in range(1, CATEGORICAL_COLUMNS[column][0] + 1)]


def category_effects(column: str) -> np.ndarray:
    """Logit effect of each level of one of MANY_CATEGORICALS' extra columns (fixed, centred on 0)."""
    levels, scale = CATEGORICAL_COLUMNS[column]
    effects = np.random.default_rng([_CATEGORY_EFFECT_SEED, levels]).normal(0.0, scale, levels)
    return effects - effects.mean()


def _interactions_logit(frame: pd.DataFrame) -> np.ndarray:
    """INTERACTIONS: recency matters mostly for customers who opted out of email, support contacts
    only for unhappy customers (more strongly than in STANDARD), and young customers who unsubscribed
    churn more; no effect on its own of age or unsubscribing."""
    w = INTERACTION_WEIGHTS
    recency = _sigmoid((frame["Last_Purchase_Days_Ago"].to_numpy(dtype=float) - RECENCY_MIDPOINT_DAYS)
                       / RECENCY_SCALE_DAYS)
    opted_in = _email_opt_in(frame["Email_Opt_In"])
    satisfaction = frame["Satisfaction_Score"].to_numpy(dtype=float)
    support = frame["Num_of_Support_Contacts"].to_numpy(dtype=float)
    young = frame["Age"].to_numpy(dtype=float) < 30
    unsubscribed = frame["Promotion_Response"].to_numpy() == "Unsubscribed"
    return (w["intercept"]
            + np.where(opted_in, w["recency_if_opted_in"], w["recency_if_opted_out"]) * recency
            + w["support_x_dissatisfaction"] * support * (5.0 - satisfaction) / 4.0
            + w["young_x_unsubscribed"] * (young & unsubscribed)
            + SATISFACTION_WEIGHT * (satisfaction - 3.0))


def _standard_logit(frame: pd.DataFrame) -> np.ndarray:
    """The standard mechanism's logit (data/README.md, "Churn mechanism")."""
    days = frame["Last_Purchase_Days_Ago"].to_numpy(dtype=float)
    satisfaction = frame["Satisfaction_Score"].to_numpy(dtype=float)
    support = frame["Num_of_Support_Contacts"].to_numpy(dtype=float)
    promotion = frame["Promotion_Response"].map(PROMOTION_WEIGHTS)
    if promotion.isna().any():
        bad = frame["Promotion_Response"][promotion.isna()].iloc[0]
        raise ValueError(f"Promotion_Response must be one of {PROMOTION_RESPONSES}, got {bad!r}")
    return (
        CHURN_INTERCEPT
        + RECENCY_WEIGHT * _sigmoid((days - RECENCY_MIDPOINT_DAYS) / RECENCY_SCALE_DAYS)
        + SATISFACTION_WEIGHT * (satisfaction - 3.0)
        + YEARS_WEIGHT * frame["Years_as_Customer"].to_numpy(dtype=float)
        + RETURNS_WEIGHT * frame["Num_of_Returns"].to_numpy(dtype=float)
        + SUPPORT_X_DISSATISFACTION_WEIGHT * support * (5.0 - satisfaction) / 4.0
        + promotion.to_numpy(dtype=float)
        + EMAIL_OPT_IN_WEIGHT * _email_opt_in(frame["Email_Opt_In"])
    )


def _block(seed: int, index: int, variant: str = STANDARD, stream: Sequence[int] = ()) -> pd.DataFrame:
    """BLOCK_ROWS customers from the RNG of (seed, index, *stream); see data/README.md for each column.

    MANY_CATEGORICALS' extra columns come from a second RNG, (seed, index, 1), so the standard
    columns, and the label's uniform draw, are the same in every variant. `stream` (empty for the
    single-table files) gives data/spans.py one independent stream per month; its last number must not
    be 0 (numpy's seed sequences ignore trailing zeros)."""
    rng = np.random.default_rng([seed, index, *stream])
    n = BLOCK_ROWS
    # Latent shopping activity: drives purchases, recency and marketing engagement together.
    engagement = rng.standard_normal(n)

    age = 18 + np.floor(52 * rng.beta(2.0, 2.6, n))
    gender = rng.choice(GENDERS, n)

    # Income (thousands) peaks in mid-career; a scaled Beta keeps it inside the domain.
    income_mean = 0.2 + 0.2 * np.exp(-(((age - 50.0) / 18.0) ** 2))
    income = 20.01 + 179.97 * rng.beta(6.0 * income_mean, 6.0 * (1.0 - income_mean))

    # Tenure cannot predate adulthood much: at most age - 17 years, and 1..19.
    tenure_cap = np.clip(age - 17.0, 1.0, 19.0)
    years = np.minimum(1 + np.floor(tenure_cap * rng.beta(1.4, 2.4, n)), tenure_cap)

    # Lifetime purchases grow with tenure and activity.
    purchase_rate = np.exp(1.55 + 0.7 * np.log(years) + 0.45 * engagement)
    purchases = np.minimum(1 + rng.poisson(purchase_rate), 99)

    # Basket size grows with income; frequent buyers buy smaller baskets.
    log_basket = (
        np.log(70.0)
        + 0.6 * np.log(income / 80.0)
        - 0.3 * (np.log(purchases) - 2.8)
        + 0.4 * rng.standard_normal(n)
    )
    basket = np.clip(np.round(np.exp(log_basket), 2), 10.5, 499.5)

    # Spend = purchases x basket, blurred by shipping, discounts and refunds.
    spend = purchases * basket * np.exp(0.12 * rng.standard_normal(n))
    spend = np.clip(np.round(spend, 2), 110.0, 9999.0)

    # Returns ~ purchases x personal return rate, saturating smoothly at the cap of 9.
    return_rate = rng.beta(2.0, 22.0, n)
    returns = rng.binomial(9, 1.0 - np.exp(-purchases * return_rate / 9.0))

    # Satisfaction (1..5): ordinal cut of a latent score that returns pull down.
    satisfaction_latent = rng.standard_normal(n) + 0.25 * engagement - 0.25 * (returns - 1.5)
    satisfaction = 1 + np.digitize(satisfaction_latent, (-1.3, -0.55, 0.3, 1.05))

    # Support contacts (0..4) rise with returns and with dissatisfaction.
    support_p = _sigmoid(-1.9 + 0.3 * returns + 0.5 * (3 - satisfaction))
    support = rng.binomial(4, support_p)

    # Days since last purchase: exponential gap (mean shrinks with purchase frequency and
    # activity) truncated to 0..364 by inverse CDF, so no clipping is needed.
    mean_gap = 365.0 / (0.5 * purchases / years + 0.4) * np.exp(-0.35 * engagement)
    truncated_u = rng.random(n) * -np.expm1(-364.0 / mean_gap)
    days = 1 + np.floor(-mean_gap * np.log1p(-truncated_u))

    email_opt_in = rng.random(n) < _sigmoid(0.12 + 0.5 * engagement)

    # Promotion response: engaged, opted-in customers respond; the others unsubscribe.
    promo_logits = np.stack(
        (
            -0.25 + 0.6 * engagement + 0.5 * email_opt_in,
            np.zeros(n),
            0.25 - 0.5 * engagement - 0.5 * email_opt_in,
        ),
        axis=1,
    )
    promo_cdf = np.cumsum(_softmax(promo_logits), axis=1)[:, :-1]
    promotion = np.asarray(PROMOTION_RESPONSES)[(rng.random(n)[:, None] > promo_cdf).sum(axis=1)]

    frame = pd.DataFrame(
        {
            "Customer_ID": index * BLOCK_ROWS + np.arange(1, n + 1),
            "Age": age,
            "Gender": gender,
            "Annual_Income": np.round(income, 2),
            "Total_Spend": spend,
            "Years_as_Customer": years,
            "Num_of_Purchases": purchases,
            "Average_Transaction_Amount": basket,
            "Num_of_Returns": returns,
            "Num_of_Support_Contacts": support,
            "Satisfaction_Score": satisfaction,
            "Last_Purchase_Days_Ago": days,
            "Email_Opt_In": email_opt_in,
            "Promotion_Response": promotion,
        }
    )
    dtypes = dict(_DTYPES)
    if variant == MANY_CATEGORICALS:
        extra = np.random.default_rng([seed, index, 1])
        for column, (levels, _) in CATEGORICAL_COLUMNS.items():
            weights = 1.0 / np.arange(1, levels + 1)  # Zipf-like: a few common levels, many rare ones
            values = extra.choice(category_levels(column), n, p=weights / weights.sum())
            frame.insert(len(frame.columns), column, values)
            dtypes[column] = "object"
        dtypes["Target_Churn"] = dtypes.pop("Target_Churn")  # the label stays the last column
    frame["Target_Churn"] = rng.random(n) < true_churn_probability(frame, variant)
    return frame.astype(dtypes)


def _check(rows: int, seed: int, variant: str = STANDARD) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _chunks(rows: int, seed: int, blocks_per_chunk: int, variant: str = STANDARD) -> Iterator[pd.DataFrame]:
    """Consecutive frames of whole RNG blocks (the last one cut to `rows`), so every caller
    sees exactly the same rows whatever its chunking."""
    n_blocks = math.ceil(rows / BLOCK_ROWS)
    for first in range(0, n_blocks, blocks_per_chunk):
        last = min(first + blocks_per_chunk, n_blocks)
        chunk = pd.concat([_block(seed, b, variant) for b in range(first, last)], ignore_index=True)
        yield chunk.iloc[: rows - first * BLOCK_ROWS]


def generate(rows: int, seed: int = DEFAULT_SEED, variant: str = STANDARD) -> pd.DataFrame:
    """`rows` customers in memory; identical to the first `rows` rows `write_csv` writes."""
    _check(rows, seed, variant)
    return pd.concat(_chunks(rows, seed, math.ceil(rows / BLOCK_ROWS), variant), ignore_index=True)


def write_csv(
    path: str | os.PathLike[str],
    rows: int,
    seed: int = DEFAULT_SEED,
    chunk_rows: int = 100_000,
    variant: str = STANDARD,
) -> None:
    """Stream `rows` customers to a CSV, holding about `chunk_rows` rows (rounded down to whole
    blocks of BLOCK_ROWS) in memory at once. Writes a temporary file and renames it, so an
    interrupted run never leaves a truncated file behind."""
    _check(rows, seed, variant)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            for number, chunk in enumerate(_chunks(rows, seed, max(1, chunk_rows // BLOCK_ROWS), variant)):
                chunk.to_csv(handle, header=number == 0, index=False, lineterminator="\n")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Rank-based ROC AUC (Mann-Whitney U, ties count one half), so Bayes AUC needs no sklearn."""
    positive = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if positive.shape != scores.shape:
        raise ValueError(f"labels {positive.shape} and scores {scores.shape} differ in shape")
    n_positive = int(positive.sum())
    n_negative = positive.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError("roc_auc needs both classes among the labels")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    u_statistic = ranks[positive].sum() - n_positive * (n_positive + 1) / 2
    return float(u_statistic / (n_positive * n_negative))


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = _Parser(prog="generate.py", description="Write synthetic customer-churn data as CSV.")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"default {DEFAULT_ROWS} (with --months: customers per month)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default data/customers.csv (with --months: a folder, default data/spans)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}")
    parser.add_argument("--variant", choices=VARIANTS, default=None,
                        help="churn mechanism / extra columns (data/README.md, Variants); default standard")
    parser.add_argument("--months", type=int, default=None,
                        help="write this many monthly spans of one population instead of one CSV "
                             "(data/README.md, Monthly spans)")
    parser.add_argument("--shift-at", type=int, default=None,
                        help="with --months: first month of the documented change (default 6; with --months 6 "
                             "or fewer, no shift)")
    parser.add_argument("--start", default=None, help="with --months: date of span 0, YYYY-MM (default 2026-01)")
    args = parser.parse_args(argv)
    if args.months is None:
        for flag, value in (("--shift-at", args.shift_at), ("--start", args.start)):
            if value is not None:
                parser.error(f"{flag} needs --months")
        out = args.out or DEFAULT_OUT
        try:
            write_csv(out, args.rows, args.seed, variant=args.variant or STANDARD)
        except ValueError as error:
            parser.error(str(error))
        except OSError as error:
            parser.error(f"cannot write {out}: {error.strerror or error}")
        return 0
    if args.variant not in (None, STANDARD):
        parser.error("--months writes the standard mechanism only (no --variant)")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: make `data` importable
    from data import spans

    out = args.out or spans.DEFAULT_SPANS_DIR
    try:
        entries = spans.write_spans(out, args.months,
                                    min(spans.DEFAULT_SHIFT_AT, max(args.months, 1)) if args.shift_at is None
                                    else args.shift_at,
                                    args.rows, args.seed, args.start or spans.DEFAULT_START)
    except ValueError as error:
        parser.error(str(error))
    except OSError as error:
        parser.error(f"cannot write {out}: {error.strerror or error}")
    print(spans.format_table(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
