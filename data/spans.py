"""Monthly customer snapshots of one population, written as integer spans, with a documented change at month K.

`python data/generate.py --months N [--shift-at K] [--rows R] [--out DIR] [--start YYYY-MM]` writes
`DIR/span-<m>/customers-<YYYY-MM>.csv` for months m = 0..N-1 (span = month index; the month's date is in
the file name, so the table keeps the 15 columns of the curated schema) and `DIR/spans.json` (per month:
date, rows, churn rate, Bayes AUC, whether the shift is in force). See data/README.md, "Monthly spans".

The population (R customers every month, inflow = outflow):

- snapshot m is taken at the end of month m. Its `Target_Churn` is 1 for the customers who churn during
  month m+1: exactly those absent from snapshot m+1 (so month m's labels exist only once month m+1 has
  passed). Each churner is replaced in snapshot m+1 by a new customer with the next unused Customer_ID;
- a customer keeps its Customer_ID and Gender from month to month; every other column is a fresh draw of
  the standard generator (data/generate.py) from the RNG of (seed, block, MONTH_STREAM, m + 1). Only
  Gender, which has no effect on churn, persists, so who churned does not change next month's mix:
  before month K every month is drawn from the same distribution (stationary);
- the probability of churning during month m+1 is `churn_probability(snapshot m, m, K)`: the standard
  mechanism (`true_churn_probability`) before K. From month K a discount competitor opens and the e-mail
  channel dies: a share SHIFT_OPT_OUT_SHARE of the opted-in customers opt out of e-mail (the mix change:
  Email_Opt_In's True share falls from about 0.52 to 0.31; no other column's distribution changes);
  e-mail stops mattering (EMAIL_OPT_IN_WEIGHT -> 0); the old drivers (recency, satisfaction, tenure,
  returns, support x dissatisfaction, promotion response) keep only OLD_DRIVERS_WEIGHT of their effect;
  and basket size dominates (customers with large baskets have the most to save at the competitor:
  + PRICE_WEIGHT * sigmoid((Average_Transaction_Amount - PRICE_MIDPOINT) / PRICE_SCALE)), with
  SHIFT_INTERCEPT keeping the churn rate near one half.
  The new weights change only the label's mechanism (concept drift): a feature-distribution gate
  cannot see them; the out-of-time evaluation and the outcome AUC on late labels can.

Every month, and the whole folder, is a deterministic function of (rows, seed, K, start): writing N+1
months gives the same first N spans as writing N.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from data.generate import (
    BLOCK_ROWS,
    COLUMNS,
    DEFAULT_ROWS,
    DEFAULT_SEED,
    EMAIL_OPT_IN_WEIGHT,
    GENDERS,
    _block,
    _email_opt_in,
    _sigmoid,
    _standard_logit,
    roc_auc,
)
from pipeline.config import SPAN_DIR_PREFIX

DEFAULT_MONTHS = 12
DEFAULT_SHIFT_AT = 6
DEFAULT_START = "2026-01"
DEFAULT_SPANS_DIR = Path(__file__).parent / "spans"
"""Where `--months` writes by default; git-ignored (generated data is never committed)."""
MANIFEST = "spans.json"
MONTH_STREAM = 202_611
"""Tag in the RNG seed of monthly draws, so they never reuse the single-table streams (seed, block)."""

SHIFT_OPT_OUT_SHARE = 0.4
"""From month K, this share of the opted-in customers is switched to Email_Opt_In = False."""
OLD_DRIVERS_WEIGHT = 0.4
"""From month K, the standard logit (without its e-mail term) is multiplied by this: the old drivers matter less."""
PRICE_WEIGHT = 4.5
PRICE_MIDPOINT = 70.0  # currency units of Average_Transaction_Amount (its median is about 66)
PRICE_SCALE = 15.0
SHIFT_INTERCEPT = -2.33
"""Added to the logit from month K, so the churn rate stays near one half (measured in data/README.md)."""
SHIFTED_FEATURES = ("Email_Opt_In",)
"""Features whose distribution changes at month K (the gate should flag these, and only these)."""
SHIFTED_MECHANISM = ("Email_Opt_In", "Average_Transaction_Amount")
"""Features whose effect on churn changes at month K besides the old drivers' common damping (e-mail no longer
matters; price now dominates)."""


@dataclass(frozen=True)
class Month:
    """One snapshot. `frame` has the 15 columns of data/generate.py's COLUMNS, Target_Churn included."""

    index: int
    date: str
    """YYYY-MM of the month the snapshot closes."""
    frame: pd.DataFrame
    probability: npt.NDArray[np.float64]
    """P(churn during month index + 1) of each row, the probability its Target_Churn was drawn from."""
    shifted: bool

    @property
    def bayes_auc(self) -> float:
        """AUC of `probability` against the month's labels: what no model can beat except by luck."""
        return roc_auc(self.frame["Target_Churn"].to_numpy(), self.probability)


def churn_probability(frame: pd.DataFrame, month: int, shift_at: int) -> npt.NDArray[np.float64]:
    """Exact P(churn during month `month` + 1 | month `month`'s row), shape (len(frame),).

    The standard mechanism before `shift_at`; from it, OLD_DRIVERS_WEIGHT times the standard logit without
    its e-mail term, plus the price term and SHIFT_INTERCEPT (module docstring). Raises ValueError for a value
    outside a column's domain (as true_churn_probability).
    """
    logit = _standard_logit(frame)
    if month >= shift_at:
        logit = (OLD_DRIVERS_WEIGHT * (logit - EMAIL_OPT_IN_WEIGHT * _email_opt_in(frame["Email_Opt_In"]))
                 + SHIFT_INTERCEPT
                 + PRICE_WEIGHT * _sigmoid((frame["Average_Transaction_Amount"].to_numpy(dtype=float)
                                            - PRICE_MIDPOINT) / PRICE_SCALE))
    return _sigmoid(logit)


def month_date(start: str, month: int) -> str:
    """`start` (YYYY-MM) plus `month` months, as YYYY-MM. Raises ValueError for a malformed `start`."""
    try:
        year, number = (int(part) for part in start.split("-"))
    except ValueError:
        raise ValueError(f"start must be YYYY-MM, got {start!r}") from None
    if not 1 <= number <= 12 or not 1 <= year <= 9999 or len(start) != 7:
        raise ValueError(f"start must be YYYY-MM, got {start!r}")
    total = year * 12 + number - 1 + month
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _check(months: int, shift_at: int, rows: int, seed: int) -> None:
    if months < 1:
        raise ValueError(f"months must be >= 1, got {months}")
    if not 1 <= shift_at <= months:
        raise ValueError(f"shift-at must be in 1..months ({months}), got {shift_at} "
                         f"(shift-at = months: no shift among the written months)")
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def iter_months(months: int, shift_at: int = DEFAULT_SHIFT_AT, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED,
                start: str = DEFAULT_START) -> Iterator[Month]:
    """`months` monthly snapshots of `rows` customers each (module docstring), one at a time.

    Raises ValueError (when iteration starts): months < 1, shift_at outside 1..months, rows < 1, seed < 0
    or a malformed start.
    """
    _check(months, shift_at, rows, seed)
    month_date(start, 0)
    n_blocks = -(-rows // BLOCK_ROWS)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    genders: npt.NDArray[np.str_] | None = None
    next_id = rows + 1
    for m in range(months):
        stream = (MONTH_STREAM, m + 1)
        frame = pd.concat([_block(seed, b, stream=stream) for b in range(n_blocks)], ignore_index=True).iloc[:rows]
        frame = frame.drop(columns="Target_Churn").copy()
        if genders is None:
            genders = frame["Gender"].to_numpy()
        frame["Customer_ID"] = ids
        frame["Gender"] = genders
        rng = np.random.default_rng([seed, MONTH_STREAM, m + 1, 1])
        opt_out = rng.random(rows) < SHIFT_OPT_OUT_SHARE
        shifted = m >= shift_at
        if shifted:
            frame["Email_Opt_In"] = frame["Email_Opt_In"].to_numpy() & ~opt_out
        probability = churn_probability(frame, m, shift_at)
        churned = rng.random(rows) < probability
        frame["Target_Churn"] = churned.astype(np.int64)
        yield Month(m, month_date(start, m), frame[list(COLUMNS)], probability, shifted)
        joined = int(churned.sum())
        ids = np.concatenate([ids[~churned], np.arange(next_id, next_id + joined, dtype=np.int64)])
        genders = np.concatenate([genders[~churned], rng.choice(GENDERS, joined)])
        next_id += joined


def simulate(months: int, shift_at: int = DEFAULT_SHIFT_AT, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED,
             start: str = DEFAULT_START) -> list[Month]:
    """iter_months as a list (every month in memory)."""
    return list(iter_months(months, shift_at, rows, seed, start))


def span_dir(out: str | os.PathLike[str], month: int) -> Path:
    """`out/span-<month>`: the folder of one span."""
    return Path(out) / f"{SPAN_DIR_PREFIX}{month}"


def write_spans(out: str | os.PathLike[str], months: int, shift_at: int = DEFAULT_SHIFT_AT, rows: int = DEFAULT_ROWS,
                seed: int = DEFAULT_SEED, start: str = DEFAULT_START) -> list[dict[str, object]]:
    """Write `simulate(...)` as `out/span-<m>/customers-<YYYY-MM>.csv` plus `out/spans.json`; return the
    manifest's month entries (index, date, file, rows, churn_rate, bayes_auc, shifted).

    Each span is written to a temporary folder and renamed, so an interrupted run leaves no half span;
    an existing span folder of the same index is replaced. Raises ValueError for bad arguments
    (see simulate) and OSError when `out` cannot be written.
    """
    root = Path(out)
    entries: list[dict[str, object]] = []
    _check(months, shift_at, rows, seed)
    month_date(start, 0)
    root.mkdir(parents=True, exist_ok=True)
    for month in iter_months(months, shift_at, rows, seed, start):  # one month in memory at a time
        final = span_dir(root, month.index)
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        name = f"customers-{month.date}.csv"
        month.frame.to_csv(partial / name, index=False, lineterminator="\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        entries.append({**describe(month), "file": f"{final.name}/{name}"})
    manifest = {"months": months, "shift_at": shift_at, "rows": rows, "seed": seed, "start": start,
                "spans": entries}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


def describe(month: Month) -> dict[str, object]:
    """A month's manifest entry (without its file): span, date, rows, churn_rate, bayes_auc, shifted."""
    return {"span": month.index, "date": month.date, "rows": len(month.frame),
            "churn_rate": round(float(month.frame["Target_Churn"].mean()), 4),
            "bayes_auc": round(month.bayes_auc, 4), "shifted": month.shifted}


def format_table(entries: list[dict[str, object]]) -> str:
    """The manifest's months as the Markdown table data/README.md shows."""
    lines = ["| Span | Month | Shift in force | Churn rate | Bayes AUC |", "|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['span']} | {e['date']} | {'yes' if e['shifted'] else 'no'} | "
                     f"{float(str(e['churn_rate'])):.3f} | {float(str(e['bayes_auc'])):.3f} |")
    return "\n".join(lines)
