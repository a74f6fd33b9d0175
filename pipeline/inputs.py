"""Checks and stages the input CSVs and schema before TFX sees them.

Why a staging step: real CSVs are messy, and TFX's CSV reader would turn one stray token in a
numeric column into a string column, or fail deep inside Beam with a stack trace. Here the input is
checked once, up front, with messages a person can act on (`InputError` -> exit code 2), and a
cleaned copy is written under `<output>/inputs/<content hash>/` so that an unchanged input keeps the
same path and file times and TFX's cache stays valid, while a changed input gets a new folder.

Cleaning rules (documented in docs/data.md):
- surrounding whitespace is stripped from every cell;
- empty cells and the tokens in MISSING_TOKENS become empty cells, which TFX reads as missing values
  (imputed by Transform; the curated schema bounds how many may be missing);
- rows whose label is missing are dropped and counted;
- the label must have exactly two values, one of them the positive label.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})
MIN_ROWS = 50
_CHUNK_ROWS = 200_000
_CLEANING_VERSION = b"1"
"""Part of the staging hash: bump it when the cleaning rules change so old staged copies are not reused."""


class InputError(Exception):
    """The input cannot be used; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class StagedData:
    """Where the cleaned CSVs are, and what cleaning found."""

    directory: Path
    columns: tuple[str, ...]
    rows: int
    dropped_unlabelled_rows: int
    missing_cells: dict[str, int]
    label_values: dict[str, int]


def list_csv_files(data: Path) -> list[Path]:
    """The CSV file itself, or every `*.csv` in a folder (sorted)."""
    if data.is_file():
        return [data]
    if data.is_dir():
        files = sorted(p for p in data.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if files:
            return files
        raise InputError(f"no .csv files in folder {data}")
    raise InputError(f"data not found: {data}")


def stage_data(
    data: Path, staging_root: Path, label_key: str, positive_label: str, id_keys: tuple[str, ...]
) -> StagedData:
    """Check and clean `data` (a CSV file or a folder of CSVs with one header) into `staging_root`."""
    files = list_csv_files(data)
    columns = _common_header(files)
    if label_key not in columns:
        raise InputError(f"label column {label_key!r} not in the data; columns are: {', '.join(columns)} "
                         "(choose one with --label)")
    missing_ids = [k for k in id_keys if k not in columns]
    if missing_ids:
        raise InputError(f"id column(s) {', '.join(missing_ids)} not in the data "
                         "(set --id-columns to the data's identifier columns, or '' for none)")
    digest = hashlib.sha256(_CLEANING_VERSION + label_key.encode())
    for f in files:
        digest.update(f.name.encode())
        digest.update(_file_sha256(f))
    target = staging_root / f"data-{digest.hexdigest()[:16]}"
    staging_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=staging_root))
    try:
        stats = _clean_files(files, columns, label_key, work)
        _check_label(stats.label_values, label_key, positive_label)
        if stats.rows < MIN_ROWS:
            raise InputError(f"only {stats.rows} labelled rows; at least {MIN_ROWS} are needed to train and evaluate")
        if not target.exists():
            os.replace(work, target)
        return dataclasses.replace(stats, directory=target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stage_schema(schema: Path, staging_root: Path) -> Path:
    """Copy a schema to a path named by its content, so an edited schema is never served from cache."""
    try:
        text = schema.read_text()
        text_format.Parse(text, schema_pb2.Schema())
    except OSError as e:
        raise InputError(f"cannot read schema {schema}: {e.strerror}") from None
    except text_format.ParseError as e:
        raise InputError(f"schema {schema} is not a valid tensorflow_metadata Schema: {e}") from None
    target = staging_root / f"schema-{hashlib.sha256(text.encode()).hexdigest()[:16]}" / "schema.pbtxt"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return target


def _common_header(files: list[Path]) -> tuple[str, ...]:
    headers = {}
    for f in files:
        try:
            header = pd.read_csv(f, nrows=0, dtype=str).columns
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise InputError(f"cannot read {f} as CSV: {e}") from None
        headers[f] = tuple(c.strip() for c in header)
    first = next(iter(headers.values()))
    for f, header in headers.items():
        if header != first:
            raise InputError(f"{f} has different columns from {files[0]}; all CSV files must share one header")
    duplicated = [c for c, n in Counter(first).items() if n > 1]
    if duplicated or any(not c for c in first):
        raise InputError(f"header of {files[0]} has empty or duplicated column names: {duplicated or ['']}")
    return first


def _clean_files(files: list[Path], columns: tuple[str, ...], label_key: str, out_dir: Path) -> StagedData:
    rows = dropped = 0
    missing: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for f in files:
        out = out_dir / f.name
        try:
            chunks = pd.read_csv(f, dtype=str, keep_default_na=False, chunksize=_CHUNK_ROWS, skipinitialspace=True)
            for i, chunk in enumerate(chunks):
                chunk.columns = columns
                chunk = chunk.apply(lambda col: col.str.strip())
                chunk = chunk.mask(chunk.apply(lambda col: col.str.lower().isin(MISSING_TOKENS)), "")
                unlabelled = chunk[label_key] == ""
                dropped += int(unlabelled.sum())
                chunk = chunk[~unlabelled]
                missing.update({c: int(n) for c, n in (chunk == "").sum().items() if n})
                labels.update(chunk[label_key].value_counts().to_dict())
                rows += len(chunk)
                chunk.to_csv(out, mode="a" if i else "w", header=i == 0, index=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise InputError(f"cannot read {f} as CSV: {e}") from None
    return StagedData(out_dir, columns, rows, dropped, dict(missing), dict(labels))


def _check_label(values: dict[str, int], label_key: str, positive_label: str) -> None:
    seen = ", ".join(sorted(values)[:10])
    if len(values) != 2:
        raise InputError(f"label {label_key!r} must have exactly two values for churn / no churn; found "
                         f"{len(values)}: {seen}")
    if not any(same_label(v, positive_label) for v in values):
        raise InputError(f"positive label {positive_label!r} not found in column {label_key!r} (values: {seen}); "
                         "set --positive-label")


def same_label(value: str, positive_label: str) -> bool:
    """Text match, or numeric match so that `1` finds `1.0` (Transform compares numbers the same way)."""
    if value == positive_label:
        return True
    try:
        return float(value) == float(positive_label)
    except ValueError:
        return False


def _file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()
