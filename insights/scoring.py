"""Batch scoring: a customer CSV of any size -> one CSV ranked by churn probability.

Each output row: the customer's id, churn probability, risk band, top churn factors (features pushing
the probability up most, with their attribution), segment name, recommended action and rationale.

Why it is built this way:
- the file is read in chunks of `chunk_rows` rows, and ranked without holding it: each chunk's rows
  are sorted and written to a temporary run file, and the runs are merged (heapq.merge) into the
  output; with `top` only a bounded best-so-far table is kept. Memory is about one chunk.
- the model is called on batches of MODEL_BATCH rows counted from the start of the file, whatever
  the chunk size: TensorFlow's kernels can differ in the last bit with the batch's shape, and fixed
  batches make the output byte-identical for any chunk size.
- ties in probability keep file order, so the ranking is deterministic.
- with a prediction store (`record`), the store is the system of record: every scored customer becomes one
  row (customer id, model version, `serving_default`, period, the run's time, probability, decision at the
  model's threshold, segment, action, source `batch`), written as scoring goes, one transaction per
  `chunk_rows` customers; a failed write raises `PredictionStoreError` and ends the run (chunks already
  written stay: each was whole).
"""
from __future__ import annotations

import csv
import dataclasses
import heapq
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from common.limits import INT64_MAX
from insights.model import PREDICT_SIGNATURE, ChurnModel, Scores, ScoringError
from insights.recommend import Customers, RuleSet
from insights.risk import risk_band
from modules import features
from pipeline import reader
from pipeline.reader import MISSING_TOKENS

CHUNK_ROWS = 50_000
MODEL_BATCH = 1_024
MAX_OPEN_RUNS = 200
"""Run files merged at once; more are merged in passes (a file of 10 million rows has 200 runs of 50,000)."""
TOP_FACTORS = 3
"""Factors listed per customer: the features with the largest positive attributions."""
_PROBABILITY = features.PROBABILITY_OUTPUT
"""The model's probability output; the scored file's column of the same name."""
OUTPUT_COLUMNS = (_PROBABILITY, "risk_band", "top_factors", "segment", "recommended_action", "rationale")
"""Written after the id column (which keeps its name)."""
_ROW = "_row"
"""Position in the input file: the tie-breaker that keeps the ranking deterministic."""


def default_output(data: Path) -> Path:
    """`customers.csv` -> `customers_scored.csv` in the same folder."""
    return data.with_name(f"{data.stem}_scored.csv")


@dataclasses.dataclass(frozen=True)
class StoreRecord:
    """Where and as what a scoring run's rows are kept: an open `PredictionStore`, the model version, the
    business period (`YYYY-MM`; None: the UTC month of `scored_at`) and the run's time (UTC)."""

    store: Any
    model_version: int
    scored_at: datetime
    period: str | None = None


class _StoreWriter:
    """Buffers scored rows and appends them to the store `chunk_rows` at a time, each in one transaction."""

    def __init__(self, record: StoreRecord, chunk_rows: int, id_column: str, threshold: float) -> None:
        self.record, self.chunk_rows, self.id_column, self.threshold = record, chunk_rows, id_column, threshold
        self.pending: list[pd.DataFrame] = []
        self.rows = 0
        self.written = 0

    def add(self, scored: pd.DataFrame) -> None:
        self.pending.append(scored)
        self.rows += len(scored)
        while self.rows >= self.chunk_rows:
            whole = pd.concat(self.pending, ignore_index=True)
            self._write(whole.iloc[:self.chunk_rows])
            rest = whole.iloc[self.chunk_rows:]
            self.pending, self.rows = ([rest] if len(rest) else []), len(rest)

    def flush(self) -> None:
        if self.pending:
            self._write(pd.concat(self.pending, ignore_index=True))
            self.pending, self.rows = [], 0

    def _write(self, scored: pd.DataFrame) -> None:
        from common.facts import BATCH_SOURCE

        frame = pd.DataFrame({
            "customer_id": scored[self.id_column].astype(str).to_numpy(),
            "model_version": self.record.model_version,
            "signature": PREDICT_SIGNATURE,
            "period": self.record.period,
            "scored_at": pd.Timestamp(self.record.scored_at),
            "probability": scored[_PROBABILITY].astype(float).to_numpy(),
            "threshold": self.threshold,
            "segment": scored["segment"].to_numpy(),
            "action": scored["recommended_action"].to_numpy(),
            "source": BATCH_SOURCE,
        })
        self.written += self.record.store.append_frame(frame, chunk_rows=max(len(frame), 1))


@dataclasses.dataclass(frozen=True)
class BadCell:
    """A cell that cannot be given to the model: its 1-based line in the file, column as written, value, problem."""

    line: int
    column: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}: {self.problem}"


@dataclasses.dataclass(frozen=True)
class Scored:
    """What `score_file` did: customers written, rows left out, and every bad cell in file order."""

    written: int
    skipped_rows: int
    bad_cells: list[BadCell]
    dialect: reader.Dialect
    stored: int = 0
    """Rows written to the prediction store (0 without one)."""


def score_file(data: Path, model: ChurnModel, rules: RuleSet, out: Path, top: int | None = None,
               chunk_rows: int = CHUNK_ROWS, id_column: str = features.ID_KEYS[0], progress: bool = True,
               strict: bool = False, delimiter: str | None = None, decimal: str | None = None,
               encoding: str | None = None, record: StoreRecord | None = None) -> Scored:
    """Score `data` into `out` (written atomically).

    The file is read by pipeline/reader.py, as the pipeline's staging reads training data (dialect,
    encoding, TensorFlow column names, one meaning per value; `delimiter`, `decimal`, `encoding`
    override detection). A row with a bad cell (a missing number, text in a numeric column, a number
    that does not fit the model's type) is left out and its cells reported; `strict` makes the first
    bad cell a ScoringError instead. Raises ScoringError for an unreadable file or missing columns.
    With `record`, every scored row is also appended to its prediction store, `chunk_rows` per transaction;
    a failed write raises `monitoring.prediction_store.PredictionStoreError` (the output file is not written).
    """
    if not data.is_file():
        raise ScoringError(f"data not found: {data}")
    try:
        dialect = reader.detect_dialect(data, delimiter, decimal, encoding)
        header = reader.read_header(data, dialect)
        (id_key,) = header.tf_names([id_column], "--id-column", data) if (
            id_column in header.written or id_column in header.names) else (None,)
    except reader.ReadError as e:
        raise ScoringError(str(e)) from None
    missing = [c for c in model.input_dtypes if c not in header.names]
    if id_key is None:
        missing.insert(0, id_column)
    if missing:
        raise ScoringError(f"{data}: missing column(s) {', '.join(missing)}; the model needs "
                           f"{', '.join(model.input_dtypes)} and the id column {id_column!r} (--id-column)")
    assert id_key is not None  # for mypy: a missing id column is in `missing`
    written_names = dict(zip(header.names, header.written, strict=True))
    needed = [id_key, *(k for k in model.input_dtypes if k != id_key)]
    rules.check_features({k: _numeric(dtype) for k, dtype in model.input_dtypes.items()})
    if not out.parent.is_dir():
        raise ScoringError(f"output folder {out.parent} does not exist")
    partial = out.with_name(out.name + ".partial")
    bad_cells: list[BadCell] = []
    skipped = 0
    with tempfile.TemporaryDirectory(prefix=".scoring-", dir=out.parent) as runs_dir:
        ranker: _Ranker = _TopRanker(top) if top else _RunRanker(chunk_rows, Path(runs_dir))
        keep = _StoreWriter(record, chunk_rows, id_key, model.threshold) if record is not None else None
        try:
            with open(data, "rb") as raw, tqdm(total=data.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc="scoring", file=sys.stderr, disable=not progress) as bar:
                chunks = (reader.normalize_cells(chunk, dialect, data, check_range=False)
                          for _, chunk in reader.read_chunks(data, dialect, header, chunk_rows, usecols=needed,
                                                             handle=raw))
                for first, batch in batches(chunks, MODEL_BATCH):
                    try:
                        typed = typed_columns(batch, first, model.input_dtypes, strict=strict, names=written_names)
                    except ScoringError as e:
                        raise ScoringError(f"{data}: {e}") from None
                    bad_cells.extend(typed.bad_cells)
                    skipped += int((~typed.ok).sum())
                    if typed.ok.any():
                        scored_batch = _score_batch(batch[typed.ok].reset_index(drop=True),
                                                    {k: v[typed.ok] for k, v in typed.columns.items()},
                                                    np.flatnonzero(typed.ok) + first, model, rules, id_key)
                        ranker.add(scored_batch)
                        if keep is not None:
                            keep.add(scored_batch)
                    bar.update(raw.tell() - bar.n)  # bytes the CSV reader has consumed (it reads ahead a little)
                    bar.set_postfix(customers=f"{first + len(batch):,}", refresh=False)
            if keep is not None:
                keep.flush()
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow([id_column, *OUTPUT_COLUMNS])
                written = 0
                for row in ranker.rows():
                    writer.writerow(row)
                    written += 1
            os.replace(partial, out)
        except reader.ReadError as e:
            raise ScoringError(str(e)) from None
        finally:
            partial.unlink(missing_ok=True)
    return Scored(written, skipped, bad_cells, dialect, keep.written if keep is not None else 0)


@dataclasses.dataclass(frozen=True)
class Typed:
    """A batch's model inputs (`columns`, one array per input), which rows can be scored (`ok`), and the bad cells."""

    columns: dict[str, npt.NDArray[Any]]
    ok: npt.NDArray[Any]
    bad_cells: list[BadCell]


def typed_columns(batch: pd.DataFrame, first: int, dtypes: Mapping[str, tf.DType], strict: bool = True,
                  names: Mapping[str, str] | None = None) -> Typed:
    """The batch's model inputs as the signature's dtypes, and the cells that do not fit, in file order.

    `first` is the batch's first row (0-based: line `first + 2` of the file); `names` maps the model's
    input names to the column names as written (for messages). A missing category becomes "" (the
    pipeline's out-of-vocabulary index, as in training); a missing number cannot be sent to the serving
    signature (one value per input, as over REST), so it is a bad cell, as is text in a numeric column,
    a fraction in an integer column or a number beyond int64 / float32 (never a wrapped number).
    Bad rows hold a placeholder (0) in `columns`. With `strict`, the first bad cell raises ScoringError.
    """
    names = names or {}
    order = {key: i for i, key in enumerate(names)}  # the file's column order, for reporting
    columns = {}
    bad = np.zeros((len(batch), len(dtypes)), dtype=bool)
    problems: dict[tuple[int, int], BadCell] = {}
    for j, (key, dtype) in enumerate(dtypes.items()):
        text = batch[key].str.strip()
        missing = text.str.lower().isin(MISSING_TOKENS).to_numpy()
        if not _numeric(dtype):
            columns[key] = np.where(missing, "", text.to_numpy(dtype=object))
            continue
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            not_number = ~np.isfinite(numbers)
            fraction = dtype.is_integer & ~not_number & (numbers != np.round(numbers))
            # As a float64, INT64_MAX rounds up to 2**63, the first float64 beyond int64.
            too_big = ~not_number & (np.abs(numbers) >= float(INT64_MAX) if dtype.is_integer
                                     else np.abs(numbers) > reader.FLOAT32_MAX)
        column_bad = not_number | fraction | too_big
        bad[:, j] = column_bad
        for row in np.flatnonzero(column_bad):
            value = text.iloc[row]
            if missing[row]:
                problem = f"{names.get(key, key)} is empty; every numeric feature needs a value"
            elif too_big[row]:
                kind = "64-bit integer" if dtype.is_integer else "32-bit float"
                problem = f"{names.get(key, key)} {value!r} does not fit a {kind}"
            else:
                kind = "a whole number" if dtype.is_integer else "a number"
                problem = f"{names.get(key, key)} {value!r} is not {kind}"
            problems[(row, order.get(key, j))] = BadCell(first + row + 2, names.get(key, key), value, problem)
        columns[key] = np.where(column_bad, 0, numbers).astype(dtype.as_numpy_dtype)
    cells = [problems[k] for k in sorted(problems)]
    if strict and cells:
        cell = cells[0]
        raise ScoringError(f"line {cell.line}: {cell.problem} (scoring without --strict leaves such rows out and "
                           "lists every bad cell)")
    return Typed(columns, ~bad.any(axis=1), cells)


def _numeric(dtype: tf.DType) -> bool:
    numeric: bool = dtype.is_integer or dtype.is_floating
    return numeric


def batches(chunks: Iterable[pd.DataFrame], size: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row number, rows) of exactly `size` rows (the last batch fewer), whatever the chunks' sizes."""
    pending: list[pd.DataFrame] = []
    start = 0
    for chunk in chunks:
        pending.append(chunk)
        if sum(len(p) for p in pending) < size:
            continue
        frame = pd.concat(pending, ignore_index=True)
        whole = len(frame) // size * size
        for offset in range(0, whole, size):
            yield start + offset, frame.iloc[offset:offset + size].reset_index(drop=True)
        start += whole
        pending = [frame.iloc[whole:]]
    rest = pd.concat(pending, ignore_index=True) if pending else pd.DataFrame()
    if len(rest):
        yield start, rest


def _score_batch(batch: pd.DataFrame, columns: dict[str, npt.NDArray[Any]], rows: npt.NDArray[Any], model: ChurnModel,
                 rules: RuleSet, id_column: str) -> pd.DataFrame:
    """The scored rows of `batch` (`rows`: their 0-based rows in the file, the ranking's tie-breaker)."""
    scores = model.score(columns)
    bands = risk_band(scores.probability, model.threshold)
    is_top, factors = _top_factors(scores, model.factors, batch)
    profiles = model.profiles
    actions, rationales = rules.recommend(Customers(
        values=pd.DataFrame(columns),
        top_factors=pd.DataFrame(is_top, columns=model.factors),
        risk_band=bands,
        segment_churn_rate=np.array([profiles[s]["churn_rate"] for s in scores.segment], dtype=float),
    ))
    return pd.DataFrame({
        _ROW: rows,
        id_column: batch[id_column].str.strip().to_numpy(),
        _PROBABILITY: scores.probability,
        "risk_band": bands,
        "top_factors": factors,
        "segment": [profiles[s]["name"] for s in scores.segment],
        "recommended_action": actions,
        "rationale": rationales,
    })


def _top_factors(scores: Scores, names: list[str], batch: pd.DataFrame) -> tuple[npt.NDArray[Any], list[str]]:
    """(is each feature a top factor [rows, features], text like "Last_Purchase_Days_Ago=290 (+1.21); ...")."""
    order = np.argsort(-scores.attributions, axis=1, kind="stable")[:, :TOP_FACTORS]
    chosen = np.take_along_axis(scores.attributions, order, axis=1) > 0
    is_top = np.zeros(scores.attributions.shape, dtype=bool)
    np.put_along_axis(is_top, order, chosen, axis=1)
    values = {name: batch[name].str.strip().to_numpy() for name in names}
    texts = [
        "; ".join(f"{names[j]}={values[names[j]][i]} ({scores.attributions[i, j]:+.2f})"
                  for j, keep in zip(order[i], chosen[i], strict=True) if keep)
        for i in range(len(order))
    ]
    return is_top, texts


def format_rows(frame: pd.DataFrame) -> list[list[str]]:
    """Rows as text: row number, id, probability (float32 in its shortest exact form), the other outputs."""
    probability = [np.format_float_positional(p, unique=True, trim="0") for p in frame[_PROBABILITY].to_numpy()]
    id_column = frame.columns[1]  # as _score_batch builds the frame
    return [[str(r), *rest] for r, *rest in zip(
        frame[_ROW], frame[id_column], probability, *(frame[c] for c in OUTPUT_COLUMNS[1:]), strict=True)]


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Highest churn probability first; ties keep file order (row number), so the ranking is deterministic."""
    return frame.sort_values([_PROBABILITY, _ROW], ascending=[False, True], kind="mergesort")


class _Ranker:
    def add(self, scored: pd.DataFrame) -> None:
        raise NotImplementedError

    def rows(self) -> Iterator[list[str]]:
        """Output rows (without the internal row number), most likely to churn first."""
        raise NotImplementedError


@dataclasses.dataclass
class _TopRanker(_Ranker):
    """The `top` rows most likely to churn, kept in memory (at most `top` + one batch)."""

    top: int
    best: pd.DataFrame | None = None

    def add(self, scored: pd.DataFrame) -> None:
        both = scored if self.best is None else pd.concat([self.best, scored], ignore_index=True)
        self.best = ranked(both).head(self.top)

    def rows(self) -> Iterator[list[str]]:
        if self.best is not None:
            for row in format_rows(self.best):
                yield row[1:]


@dataclasses.dataclass
class _RunRanker(_Ranker):
    """Every row: sorted runs of about `run_rows` rows on disk, merged at the end."""

    run_rows: int
    directory: Path
    pending: list[pd.DataFrame] = dataclasses.field(default_factory=list)
    runs: list[Path] = dataclasses.field(default_factory=list)
    _written: int = 0

    def add(self, scored: pd.DataFrame) -> None:
        self.pending.append(scored)
        if sum(len(p) for p in self.pending) >= self.run_rows:
            self._flush()

    def rows(self) -> Iterator[list[str]]:
        self._flush()
        while len(self.runs) > MAX_OPEN_RUNS:  # merge in passes rather than exceed the open-file limit
            groups = [self.runs[i:i + MAX_OPEN_RUNS] for i in range(0, len(self.runs), MAX_OPEN_RUNS)]
            self.runs = []
            for group in groups:
                self._write_run(_merged(group))
                for run in group:
                    run.unlink()
        for row in _merged(self.runs):
            yield row[1:]

    def _write_run(self, rows: Iterable[list[str]]) -> None:
        path = self.directory / f"run-{self._written:06d}.csv"
        self._written += 1
        with open(path, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)
        self.runs.append(path)

    def _flush(self) -> None:
        if self.pending:
            self._write_run(format_rows(ranked(pd.concat(self.pending))))
            self.pending = []


def _merged(runs: list[Path]) -> Iterator[list[str]]:
    """The rows of sorted run files in one sorted stream."""
    handles = [open(run, encoding="utf-8", newline="") for run in runs]
    try:
        # Same order as ranked: probability (its shortest float32 text keeps float32 order), then row.
        yield from heapq.merge(*(csv.reader(h) for h in handles), key=lambda r: (-float(r[2]), int(r[0])))
    finally:
        for handle in handles:
            handle.close()
