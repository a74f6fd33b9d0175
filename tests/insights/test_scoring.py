"""Batch scoring's pieces that need no model: type checks, fixed batches, version lookup, CLI errors.

Scoring a real pushed model end to end is in tests/e2e/test_insights_score.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from insights import scoring
from insights.__main__ import main
from insights.model import ScoringError
from insights.scoring import OUTPUT_COLUMNS, batches, default_output, typed_columns

DTYPES = {"Age": tf.int64, "Annual_Income": tf.float32, "Gender": tf.string}


def frame(**columns: list[str]) -> pd.DataFrame:
    base = {"Age": ["30", " 41 ", "52.0"], "Annual_Income": ["10.5", "20", "1e2"], "Gender": ["Male", "NA", " Other"]}
    return pd.DataFrame({**base, **columns})


def test_text_cells_become_the_signature_dtypes() -> None:
    typed = typed_columns(frame(), 0, DTYPES)
    columns = typed.columns
    assert typed.ok.all() and typed.bad_cells == []
    assert columns["Age"].dtype == np.int64 and columns["Age"].tolist() == [30, 41, 52]
    assert columns["Annual_Income"].dtype == np.float32 and columns["Annual_Income"].tolist() == [10.5, 20.0, 100.0]
    assert columns["Gender"].tolist() == ["Male", "", "Other"]  # a missing category is "", as in training


@pytest.mark.parametrize(("column", "cells", "message"), [
    ("Age", ["30", "thirty", "1"], "line 12: Age 'thirty' is not a whole number"),
    ("Age", ["30", "4.5", "1"], "line 12: Age '4.5' is not a whole number"),
    ("Annual_Income", ["1", "2", "n/a"], "line 13: Annual_Income is empty; every numeric feature needs a value"),
    ("Annual_Income", ["1", "", "2"], "line 12: Annual_Income is empty"),
    ("Annual_Income", ["inf", "2", "3"], "line 11: Annual_Income 'inf' is not a number"),
])
def test_a_value_that_does_not_fit_names_its_line_and_column(column: str, cells: list[str], message: str) -> None:
    with pytest.raises(ScoringError, match=message):
        typed_columns(frame(**{column: cells}), 9, DTYPES)  # rows 9.. of the file: line 11 is the first


def test_without_strict_every_bad_cell_is_reported_in_file_order_and_its_row_left_out() -> None:
    typed = typed_columns(frame(Age=["x", "30", "9223372036854775808"], Annual_Income=["", "1", "3.5e39"]), 0,
                          DTYPES, strict=False, names={"Age": "Age (years)"})
    assert [str(c) for c in typed.bad_cells] == [
        "line 2, column 'Age (years)': Age (years) 'x' is not a whole number",
        "line 2, column 'Annual_Income': Annual_Income is empty; every numeric feature needs a value",
        "line 4, column 'Age (years)': Age (years) '9223372036854775808' does not fit a 64-bit integer",
        "line 4, column 'Annual_Income': Annual_Income '3.5e39' does not fit a 32-bit float",
    ]
    assert typed.ok.tolist() == [False, True, False] and typed.columns["Age"][1] == 30


def test_the_largest_int64_that_a_float_holds_is_not_wrapped() -> None:
    typed = typed_columns(frame(Age=["9223372036854774784", "-9223372036854774784", "1"]), 0, DTYPES)
    assert typed.columns["Age"].tolist() == [9223372036854774784, -9223372036854774784, 1]


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 25])
def test_batches_have_a_fixed_size_counted_from_the_first_row_whatever_the_chunks(chunk: int) -> None:
    rows = pd.DataFrame({"n": np.arange(25)})
    chunks = (rows.iloc[i:i + chunk] for i in range(0, len(rows), chunk))
    found = list(batches(chunks, 10))
    assert [(first, b["n"].tolist()) for first, b in found] == [
        (0, list(range(10))), (10, list(range(10, 20))), (20, list(range(20, 25)))]


def test_default_output_sits_next_to_the_data() -> None:
    assert default_output(Path("/d/customers.csv")) == Path("/d/customers_scored.csv")


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "{tmp}/missing.csv", "--model", "{tmp}"], "no model at"),
    (["--data", "{tmp}/missing.csv", "--model", "{tmp}", "--rules", "{tmp}/r.yaml"], "rules file"),
    (["--data", "{tmp}/missing.csv", "--model", "{tmp}", "--top", "0"], "--top: must be at least 1, got 0"),
    (["--model", "{tmp}"], "the following arguments are required: --data"),
])
def test_bad_usage_is_one_line_on_stderr_and_exit_code_2(args: list[str], message: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["score", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def exit_code(argv: list[str]) -> int:
    """`python -m insights ...` in-process: argparse's usage errors exit, scoring errors return."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def scored_batches(rows: int, batch: int) -> list[pd.DataFrame]:
    """Frames shaped like _score_batch's output, with many tied probabilities."""
    rng = np.random.default_rng(0)
    probability = rng.choice(np.linspace(0, 1, 11, dtype=np.float32), rows)
    frame = pd.DataFrame({"_row": np.arange(rows), "Customer_ID": [f"c{i}" for i in range(rows)],
                          "churn_probability": probability,
                          **{c: [f"{c} {i}, with a comma" for i in range(rows)] for c in OUTPUT_COLUMNS[1:]}})
    return [frame.iloc[i:i + batch] for i in range(0, rows, batch)]


def test_sorted_runs_merged_in_passes_rank_like_one_sort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring, "MAX_OPEN_RUNS", 3)  # 30 runs of 2 rows, merged in passes: 10, 4, then 2 runs
    batches = scored_batches(60, 2)
    expected = [row[1:] for row in scoring.format_rows(scoring.ranked(pd.concat(batches)))]
    ranker = scoring._RunRanker(2, tmp_path)
    for batch in batches:
        ranker.add(batch)
    assert list(ranker.rows()) == expected
    assert len(ranker.runs) == 2 and sorted(tmp_path.iterdir()) == sorted(ranker.runs)
    top = scoring._TopRanker(7)
    for batch in batches:
        top.add(batch)
    assert list(top.rows()) == expected[:7]
    probabilities = [float(row[1]) for row in expected]
    assert probabilities == sorted(probabilities, reverse=True)
    ties = [int(row[0][1:]) for row in expected if row[1] == expected[0][1]]
    assert ties == sorted(ties)  # equal probabilities keep file order
