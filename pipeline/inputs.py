"""Checks and stages the input CSVs and schema before TFX sees them.

Why a staging step: real CSVs are messy, and TFX's CSV reader would turn one stray token in a
numeric column into a string column, or fail deep inside Beam with a stack trace. Here the input is
checked once, up front, with messages a person can act on (`InputError` -> exit code 2), and a
cleaned copy is written under `<output>/inputs/<content hash>/` so that an unchanged input keeps the
same path and file times and TFX's cache stays valid, while a changed input gets a new folder.

Reading and cleaning rules (docs/data.md): the file is read by pipeline/reader.py (dialect, encoding,
header checks, TensorFlow column names, one meaning per value), then
- rows whose label is missing are dropped and counted;
- the label must have exactly two values, one of them the positive label;
- each class must be expected at least MIN_CLASS_PER_SPLIT times in each split (else refused).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from modules import features
from pipeline import config as cfg
from pipeline import reader

MIN_ROWS = 50
MIN_CLASS_PER_SPLIT = 5
"""Fewest churners, and fewest non-churners, expected in the smallest split (validation and eval each get
SPLIT_BUCKETS' 2 of 10 buckets): below it the early-stopping choice and the eval AUC rest on a handful of
customers, so the data is refused before TFX runs."""
_CHUNK_ROWS = 200_000
_CLEANING_VERSION = b"2"
"""Part of the staging hash: bump it when the cleaning rules change so old staged copies are not reused."""
_ID_NAME = re.compile(r"(^|[^A-Za-z])(id|key|uuid|guid)$|[a-z]I[dD]$|^ID", re.IGNORECASE)
"""Names that look like an identifier: `customerID`, `Customer ID`, `account_id`, `Key`, `ID_number`."""

InputError = reader.ReadError
"""The input cannot be used; the message says why and what to do (one class with the reader's errors)."""


@dataclasses.dataclass(frozen=True)
class StagedData:
    """Where the cleaned CSVs are, and what reading and cleaning found. Column names are TensorFlow names."""

    directory: Path
    columns: tuple[str, ...]
    rows: int
    dropped_unlabelled_rows: int
    missing_cells: dict[str, int]
    label_values: dict[str, int]
    label_key: str = ""
    id_keys: tuple[str, ...] = ()
    id_keys_chosen: str = ""
    """How the id columns were chosen: `given` (--id-columns), or the `auto` rule that chose them."""
    header: reader.Header | None = None
    dialect: reader.Dialect | None = None
    unique_text_columns: tuple[str, ...] = ()
    """Text columns (not ids) with a different value in every row: a category the model cannot learn from."""


def list_csv_files(data: Path) -> list[Path]:
    """The CSV file itself, or every `*.csv` in a folder (sorted)."""
    if data.is_file():
        return [data]
    if data.is_dir():
        files = sorted(p for p in data.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if files:
            return files
        raise InputError(f"no .csv files in folder {data} (--data: a CSV file, or a folder of CSV files)")
    raise InputError(f"data not found: {data} (--data: a CSV file, or a folder of CSV files)")


def stage_data(
    data: Path, staging_root: Path, label_key: str, positive_label: str, id_keys: tuple[str, ...] | str,
    delimiter: str | None = None, decimal: str | None = None, encoding: str | None = None,
) -> StagedData:
    """Check and clean `data` (a CSV file or a folder of CSVs with one header) into `staging_root`.

    `label_key` and `id_keys` are column names as written in the file (or their TensorFlow names);
    `id_keys` may be cfg.AUTO. `delimiter`, `decimal`, `encoding` override what pipeline/reader.py detects.
    The staged CSVs are UTF-8, comma-delimited, with a decimal point and TensorFlow column names.
    Raises InputError (a message naming file, column, row and value, and the fix).
    """
    files = list_csv_files(data)
    dialect = reader.detect_dialect(files[0], delimiter, decimal, encoding)
    header = _common_header(files, dialect)
    columns = header.names
    if label_key not in columns and label_key not in header.written:
        raise InputError(f"label column {label_key!r} not in the data ({files[0]}); its columns are: "
                         f"{', '.join(header.written)} (choose one with --label)")
    (label,) = header.tf_names([label_key], "--label", files[0])
    given_ids = None if id_keys == cfg.AUTO else tuple(id_keys)
    if given_ids is not None:
        missing_ids = [k for k in given_ids if k not in columns and k not in header.written]
        if missing_ids:
            raise InputError(f"id column(s) {', '.join(missing_ids)} not in {files[0]}; its columns are: "
                             f"{', '.join(header.written)} (set --id-columns to the data's identifier columns, "
                             f"'{cfg.AUTO}' to find them, or '' for none)")
        given_ids = header.tf_names(given_ids, "--id-columns", files[0])
    digest = hashlib.sha256(_CLEANING_VERSION + label.encode()
                            + repr((dialect.encoding, dialect.delimiter, dialect.decimal)).encode())
    for f in files:
        digest.update(f.name.encode())
        digest.update(_file_sha256(f))
    target = staging_root / f"data-{digest.hexdigest()[:16]}"
    staging_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".staging-", dir=staging_root))
    try:
        stats, unique = _clean_files(files, dialect, header, label, work)
        _check_label(stats.label_values, label, positive_label, files[0])
        if stats.rows < MIN_ROWS:
            raise InputError(f"{data}: only {stats.rows} labelled rows in column {label!r}; at least {MIN_ROWS} "
                             "are needed to train and evaluate: add more customers, or check --label")
        _check_class_counts(stats.label_values, label, positive_label, data)
        if given_ids is None:
            ids, chosen = auto_id_keys(columns, label, unique)
        else:
            ids, chosen = given_ids, "given (--id-columns)"
        text_unique = tuple(c for c in columns if c in unique and c not in ids and c != label
                            and unique[c] == "text")
        if not target.exists():
            os.replace(work, target)
        return dataclasses.replace(stats, directory=target, label_key=label, id_keys=ids, id_keys_chosen=chosen,
                                   header=header, dialect=dialect, unique_text_columns=text_unique)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def schema_columns(schema: Path) -> set[str]:
    """The feature names of a tensorflow_metadata Schema file; InputError when it cannot be read."""
    try:
        parsed = text_format.Parse(schema.read_text(), schema_pb2.Schema())
    except OSError as e:
        raise InputError(f"cannot read schema {schema}: {e.strerror} (--schema)") from None
    except text_format.ParseError as e:
        raise InputError(f"schema {schema} is not a valid tensorflow_metadata Schema: {e} (--schema)") from None
    return {f.name for f in parsed.feature}


def choose_schema(config: cfg.PipelineConfig, staged: StagedData) -> tuple[cfg.PipelineConfig, str]:
    """`--schema auto`: (config with the schema to use, why): the curated schema when the data's columns are
    the bundled data's, else None (SchemaGen infers one)."""
    curated = schema_columns(cfg.CURATED_SCHEMA)
    if set(staged.columns) == curated and staged.label_key == features.LABEL_KEY:
        return dataclasses.replace(config, schema=cfg.CURATED_SCHEMA), \
            "auto: curated, the data's columns are the bundled data's"
    return dataclasses.replace(config, schema=None), \
        "auto: inferred by SchemaGen, the data's columns are not the bundled data's"


def check_schema_columns(schema: Path, staged: StagedData) -> None:
    """An explicit --schema must describe the data: InputError when they share no feature column."""
    described = schema_columns(schema)
    model_columns = set(staged.columns) - {staged.label_key, *staged.id_keys}
    if model_columns and not model_columns & described:
        raise InputError(
            f"--schema {schema} describes none of the data's columns (schema: {', '.join(sorted(described))}; "
            f"data: {', '.join(staged.columns)}); pass the schema made for this data, or --schema {cfg.AUTO} to "
            "use an inferred one")


def served_inputs(staged: StagedData) -> list[str]:
    """The served signature's input names: the model's features (TensorFlow names), sorted as the model sorts them."""
    return features.model_feature_keys(staged.columns, staged.label_key, staged.id_keys)


def auto_id_keys(columns: tuple[str, ...], label_key: str, unique: dict[str, str]) -> tuple[tuple[str, ...], str]:
    """(`--id-columns auto`'s choice, how it was made): the bundled data's `Customer_ID` when present, else
    every column whose name looks like an identifier (`_ID_NAME`) and whose values are unique per row.

    `unique` maps the columns whose values are all different (and never missing) to `text` or `number`.
    """
    default = features.ID_KEYS
    if all(k in columns for k in default):
        return default, f"auto: {', '.join(default)} is present"
    found = tuple(c for c in columns if c != label_key and c in unique and _ID_NAME.search(c))
    if found:
        return found, "auto: named like an identifier and unique per row"
    return (), "auto: no column is named like an identifier and unique per row"


def stage_schema(schema: Path, staging_root: Path) -> Path:
    """Copy a schema to a path named by its content, so an edited schema is never served from cache."""
    try:
        text = schema.read_text()
        text_format.Parse(text, schema_pb2.Schema())
    except OSError as e:
        raise InputError(f"cannot read schema {schema}: {e.strerror} (--schema)") from None
    except text_format.ParseError as e:
        raise InputError(f"schema {schema} is not a valid tensorflow_metadata Schema: {e} (--schema)") from None
    target = staging_root / f"schema-{hashlib.sha256(text.encode()).hexdigest()[:16]}" / "schema.pbtxt"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return target


def _common_header(files: list[Path], dialect: reader.Dialect) -> reader.Header:
    headers = {f: reader.read_header(f, dialect) for f in files}
    first = headers[files[0]]
    for f, header in headers.items():
        if header.written != first.written:
            only_here = [c for c in header.written if c not in first.written]
            only_first = [c for c in first.written if c not in header.written]
            differs = (f"columns only in {f.name}: {', '.join(map(repr, only_here)) or 'none'}; only in "
                       f"{files[0].name}: {', '.join(map(repr, only_first)) or 'none'}") if only_here or only_first \
                else "the same columns in another order"
            raise InputError(f"{f} has different columns from {files[0]} ({differs}); all CSV files in --data "
                             "must share one header: make the headers match, or pass one file with --data")
    return first


def _clean_files(files: list[Path], dialect: reader.Dialect, header: reader.Header, label_key: str,
                 out_dir: Path) -> tuple[StagedData, dict[str, str]]:
    """The staged copy and its counts, and the columns whose values are all different ({name: text | number})."""
    rows = dropped = 0
    missing: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    hashes: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in header.names}
    numeric: dict[str, bool] = {c: True for c in header.names}
    for f in files:
        out = out_dir / f.name
        for i, (_, chunk) in enumerate(reader.read_chunks(f, dialect, header, _CHUNK_ROWS)):
            chunk = reader.normalize_cells(chunk, dialect, f)
            for column in list(hashes):
                values = chunk[column]
                if (values == "").any() or values.duplicated().any():
                    del hashes[column]
                    continue
                hashes[column].append(pd.util.hash_pandas_object(values, index=False).to_numpy())
                numeric[column] = numeric[column] and bool(values.str.fullmatch(reader.NUMBER.pattern).all())
            unlabelled = chunk[label_key] == ""
            dropped += int(unlabelled.sum())
            chunk = chunk[~unlabelled]
            missing.update({str(c): int(n) for c, n in (chunk == "").sum().items() if n})
            labels.update(chunk[label_key].value_counts().to_dict())
            rows += len(chunk)
            chunk.to_csv(out, mode="a" if i else "w", header=i == 0, index=False)
    unique = {c: "number" if numeric[c] else "text" for c, parts in hashes.items()
              if parts and len(np.unique(np.concatenate(parts))) == sum(len(p) for p in parts)}
    return StagedData(out_dir, header.names, rows, dropped, dict(missing), dict(labels)), unique


def _check_label(values: dict[str, int], label_key: str, positive_label: str, source: Path) -> None:
    seen = ", ".join(sorted(values)[:10])
    if len(values) != 2:
        raise InputError(f"{source}: label {label_key!r} must have exactly two values for churn / no churn; found "
                         f"{len(values)}: {seen} (choose the label column with --label)")
    if not any(same_label(v, positive_label) for v in values):
        raise InputError(f"positive label {positive_label!r} not found in column {label_key!r} of {source} "
                         f"(values: {seen}); set --positive-label")


def _check_class_counts(values: dict[str, int], label_key: str, positive_label: str, source: Path) -> None:
    """Refuse data with fewer than MIN_CLASS_PER_SPLIT churners or non-churners expected in the smallest split."""
    share = min(cfg.SPLIT_BUCKETS.values()) / sum(cfg.SPLIT_BUCKETS.values())
    churners = sum(n for v, n in values.items() if same_label(v, positive_label))
    others = sum(values.values()) - churners
    needed = math.ceil(MIN_CLASS_PER_SPLIT / share)
    if min(churners, others) < needed:
        raise InputError(
            f"{source}: too little data to train and evaluate: {churners} churners and {others} non-churners "
            f"({label_key!r}); each split (validation and eval get {share:.0%} of the rows) needs at least "
            f"{MIN_CLASS_PER_SPLIT} of each, so at least {needed} churners and {needed} non-churners; "
            "add more customers (for example several months of exports)")


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


_SPAN_NAME = re.compile(re.escape(cfg.SPAN_DIR_PREFIX) + r"(0|[1-9][0-9]*)")
"""A monthly span's folder name, `span-<n>` (pipeline/spans.py)."""


def is_span_folder(data: Path) -> bool:
    """True when `data` is a folder with at least one `span-<n>` sub-folder."""
    return data.is_dir() and any(p.is_dir() and _SPAN_NAME.fullmatch(p.name) for p in data.iterdir())


_VERSION_NAME = re.compile(re.escape(cfg.VERSION_DIR_PREFIX) + r"(0|[1-9][0-9]*)")
"""A corrected span's folder name inside its span folder, `version-<v>` (TFX's `{VERSION}`)."""


@dataclasses.dataclass(frozen=True)
class SpanSource:
    """The data a run reads for one span: its newest version."""

    folder: Path
    """The folder of the span's CSV files: `span-<n>/` itself (version 0) or `span-<n>/version-<v>/`."""
    version: int
    """0 when the CSV files sit directly in `span-<n>/`; otherwise the highest `version-<v>` folder's v."""


def _has_csv(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() == ".csv" for p in folder.iterdir())


def newest_version(span_folder: Path, span: int) -> SpanSource:
    """The version of span `span` a run reads: the highest `version-<v>/` sub-folder of `span_folder`, or
    the CSV files directly in it (version 0) when it has no version folder. This is TFX's rule for the
    `{VERSION}` spec (tfx/components/example_gen/utils.py: the highest version of the span wins).

    Raises InputError: no CSV file at all, CSV files both directly in the folder and in `version-0/`
    (two versions 0), or a newest version folder without a CSV file.
    """
    versions = {int(m.group(1)): p for p in span_folder.iterdir()
                if p.is_dir() and (m := _VERSION_NAME.fullmatch(p.name))}
    if _has_csv(span_folder):
        if 0 in versions:
            raise InputError(f"{span_folder} holds .csv files and a {cfg.VERSION_DIR_PREFIX}0 folder (span {span}): "
                             f"keep one; a corrected span goes in {cfg.VERSION_DIR_PREFIX}1, 2, ...")
        versions[0] = span_folder
    if not versions:
        raise InputError(f"{span_folder} holds no .csv file (span {span})")
    newest = max(versions)
    if not _has_csv(versions[newest]):
        raise InputError(f"{versions[newest]} holds no .csv file (span {span}, version {newest}: the newest "
                         "version is the one read)")
    return SpanSource(versions[newest], newest)


def find_span_sources(data: Path) -> dict[int, SpanSource]:
    """Span number -> its newest version (newest_version), sorted by number, for a folder of `span-<n>/`
    sub-folders.

    Raises InputError: `data` is not a folder, holds no span folder, a span between the first and the last
    is missing (the message names the missing numbers), or a span's versions are unreadable (newest_version).
    """
    if not data.is_dir():
        raise InputError(f"span folder not found: {data}")
    spans = {int(m.group(1)): p for p in data.iterdir() if p.is_dir() and (m := _SPAN_NAME.fullmatch(p.name))}
    if not spans:
        raise InputError(f"{data} holds no {cfg.SPAN_DIR_PREFIX}<n> folder (write some with "
                         "python data/generate.py --months N --out FOLDER)")
    missing = sorted(set(range(min(spans), max(spans) + 1)) - set(spans))
    if missing:
        raise InputError(f"{data}: span(s) {', '.join(map(str, missing))} missing between {cfg.SPAN_DIR_PREFIX}"
                         f"{min(spans)} and {cfg.SPAN_DIR_PREFIX}{max(spans)}")
    return {number: newest_version(folder, number) for number, folder in sorted(spans.items())}


def find_spans(data: Path) -> dict[int, Path]:
    """Span number -> the folder of its newest version's CSV files (find_span_sources), sorted by number.
    Raises InputError as find_span_sources does."""
    return {number: source.folder for number, source in find_span_sources(data).items()}
