"""The one CSV reader of the product: pipeline staging and `insights score` read customer files with it.

A customer file is read the way a spreadsheet user expects, whatever program wrote it:

- **encoding**: UTF-8 with or without a byte-order mark; otherwise the Windows code page Excel writes
  (cp1252) when `charset-normalizer` finds it plausible, else charset-normalizer's best guess.
  `--encoding` overrides.
- **delimiter**: one of `,` `;` tab `|`, found by `csv.Sniffer` on the first lines and kept only when
  it splits every sampled line into the same number of fields (else the candidate that does).
  `--delimiter` overrides (`tab` may be written for a tab).
- **decimal mark**: `,` when the delimiter is not a comma and the sampled numbers use a comma
  (`24,24`) and never a point; else `.`. `--decimal` overrides.
- **header**, checked as written in the file before pandas renames anything: an empty name, a
  whitespace-only name or a repeated name is an error naming it (`ReadError`). An unnamed first column
  holding 0, 1, 2, ... (what `DataFrame.to_csv` writes by default) is a row index: it is dropped, and
  `Header.dropped_index` says so.
- **names**: a column name that is not a valid TensorFlow name is mapped once to one (`tf_name`):
  accents are removed, every run of characters other than ASCII letters, digits and `_` becomes one
  `_`, leading and trailing `_` are dropped, and a name starting with a digit gets the prefix `col_`
  (`Customer ID` -> `Customer_ID`, `Total Spend (€)` -> `Total_Spend`, `2nd Phone` -> `col_2nd_Phone`).
  Two names mapped to the same name are an error listing both.
- **values** (`normalize_cells`): surrounding whitespace is stripped; an empty cell or one of
  MISSING_TOKENS is a missing value (an empty cell); a number with thousands separators (`"1,234.5"`,
  or `1.234,5` with a decimal comma) loses them; a decimal comma becomes a point; a whole number
  written as a float (`62.0`, as pandas writes integer columns with blanks) becomes the integer
  (`62`), so the column is read as integers; a number that does not fit the types TFX stores
  (beyond int64 for whole numbers, beyond float32 for others) is an error naming the cell.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from common.limits import INT64_MAX

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})
"""Cell values (compared after stripping, case-insensitively) that mean "missing"."""
EXCEL_CODE_PAGE = "cp1252"
"""What Excel writes for "CSV" on Windows in Western locales; chosen when it is one of the encodings
charset-normalizer finds plausible (cp1250 and cp1252 often decode the same bytes)."""
DELIMITERS = {",": ",", ";": ";", "\t": "tab", "|": "|"}
"""Delimiters recognised, with the word the summary uses for each."""
DECIMAL_MARKS = (".", ",")
SAMPLE_BYTES = 1 << 16
"""Bytes read from the start of a file to detect its encoding, delimiter and decimal mark."""
INDEX_COLUMN = ""
"""Name pandas' `DataFrame.to_csv` writes for its row index."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
_VALID_TF_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_]+")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_WHOLE_FLOAT = r"^([+-]?\d+)\.0+$"
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
"""A number as the staged CSVs and TFX write it (after `normalize_cells`)."""
_THOUSANDS = {
    ".": re.compile(r"^([+-]?\d{1,3}(?:,\d{3})+)(\.\d+)?$"),
    ",": re.compile(r"^([+-]?\d{1,3}(?:[. ]\d{3})+)(,\d+)?$"),
}
"""Numbers with thousands separators, by decimal mark: `1,234.5` (decimal point), `1.234,5` (decimal comma)."""
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+\Z")
_COMMA_DECIMAL_CELL = r"^([+-]?\d+),(\d+)$"
_POINT_DECIMAL = re.compile(r"[+-]?\d+\.\d+\Z")


class ReadError(ValueError):
    """The file cannot be read as a customer CSV; the message names the file, column, row and value, and the fix."""


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How a CSV file is written; `detected` lists the settings found in the file rather than given by a flag."""

    encoding: str
    delimiter: str
    decimal: str
    detected: tuple[str, ...] = ()

    def describe(self) -> str:
        """`encoding utf-8, delimiter ';', decimal mark ',' (detected: delimiter, decimal)`."""
        text = (f"encoding {self.encoding}, delimiter {DELIMITERS.get(self.delimiter, self.delimiter)!r}, "
                f"decimal mark {self.decimal!r}")
        return text + (f" (detected: {', '.join(self.detected)})" if self.detected else "")

    def to_json(self) -> dict[str, object]:
        return {"encoding": self.encoding, "delimiter": DELIMITERS.get(self.delimiter, self.delimiter),
                "decimal": self.decimal, "detected": list(self.detected)}


@dataclasses.dataclass(frozen=True)
class Header:
    """A file's column names as written (`written`) and as TensorFlow names (`names`), in file order."""

    written: tuple[str, ...]
    names: tuple[str, ...]
    dropped_index: bool = False
    """The file's unnamed first column was a row index (0, 1, 2, ...) and is not part of `written`."""

    @property
    def mapping(self) -> dict[str, str]:
        """{name as written: TensorFlow name} for the names that had to change."""
        return {w: n for w, n in zip(self.written, self.names, strict=True) if w != n}

    def tf_names(self, requested: Sequence[str], flag: str, source: Path | str) -> tuple[str, ...]:
        """Column names given on the command line (as written in the file, or already mapped) -> TensorFlow names.

        Raises ReadError naming the flag and the file's columns when one is not in the file.
        """
        by_written = dict(zip(self.written, self.names, strict=True))
        by_stripped = {w.strip(): n for w, n in by_written.items()}
        out = []
        for name in requested:
            found = by_written.get(name) or by_stripped.get(name.strip()) or (name if name in self.names else None)
            if found is None:
                raise ReadError(f"{source}: column {name!r} ({flag}) is not in the file; its columns are: "
                                f"{', '.join(self.written)} (give {flag} a column name as the header writes it)")
            out.append(found)
        return tuple(out)


def tf_name(name: str, position: int = 0) -> str:
    """A valid TensorFlow name (`[A-Za-z][A-Za-z0-9_]*`) for the column name `name` (rule in the module docstring).

    `position` (0-based) names a column whose name has no letters or digits at all: `column_<position + 1>`.
    """
    if _VALID_TF_NAME.match(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    mapped = _INVALID_RUN.sub("_", ascii_name).strip("_")
    if not mapped:
        return f"column_{position + 1}"
    return f"col_{mapped}" if not mapped[0].isalpha() else mapped


def detect_dialect(path: Path, delimiter: str | None = None, decimal: str | None = None,
                   encoding: str | None = None) -> Dialect:
    """The encoding, delimiter and decimal mark of the CSV at `path`; arguments that are not None win.

    Raises ReadError for an unreadable or empty file, an unknown encoding or an unsupported flag value.
    """
    detected = []
    try:
        with open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError as e:
        raise ReadError(f"cannot read {path}: {e.strerror} (--data)") from None
    if not sample.strip():
        raise ReadError(f"{path} is empty: expected a CSV with a header row")
    if encoding is None:
        encoding = _detect_encoding(sample)
        detected.append("encoding")
    else:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ReadError(f"unknown encoding {encoding!r} (--encoding); for example utf-8, cp1252, latin-1") from None
    text = _decode(sample, encoding, path, complete=len(sample) < SAMPLE_BYTES)
    if "\x00" in text:
        raise ReadError(f"cannot read {path} as CSV: it is not text in {encoding} (it holds NUL characters); "
                        "if it is a spreadsheet, save it as CSV, or set --encoding")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut short
    lines = lines[:200]
    if delimiter is None:
        delimiter = _detect_delimiter(lines)
        detected.append("delimiter")
    else:
        delimiter = "\t" if delimiter in ("tab", "\\t") else delimiter
        if delimiter not in DELIMITERS:
            raise ReadError(f"--delimiter must be one of , ; tab |, got {delimiter!r}")
    if decimal is None:
        decimal = _detect_decimal(lines, delimiter)
        detected.append("decimal")
    elif decimal not in DECIMAL_MARKS:
        raise ReadError(f"--decimal must be . or , got {decimal!r}")
    if decimal == delimiter:
        raise ReadError(f"{path}: the decimal mark and the delimiter are both {decimal!r}; set --delimiter or "
                        "--decimal")
    return Dialect(encoding, delimiter, decimal, tuple(detected))


def read_header(path: Path, dialect: Dialect) -> Header:
    """The header of `path` as written, checked, and its TensorFlow names (rules in the module docstring).

    Raises ReadError naming an empty, whitespace-only or repeated column name, or two names that map to
    the same TensorFlow name.
    """
    try:
        with open(path, encoding=dialect.encoding, newline="") as handle:
            row = next(csv.reader(handle, delimiter=dialect.delimiter), None)
            first_values = [r[0] if r else "" for r, _ in zip(csv.reader(handle, delimiter=dialect.delimiter),
                                                            range(50), strict=False)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReadError(f"cannot read the header of {path}: {e} (set --encoding or --delimiter)") from None
    if not row:
        raise ReadError(f"{path} is empty: expected a CSV with a header row")
    if len(row) == 1 and any(d in row[0] for d in DELIMITERS if d != dialect.delimiter):
        raise ReadError(f"{path}: the header has one column, {row[0][:80]!r}; the delimiter is not "
                        f"{DELIMITERS[dialect.delimiter]!r}: set --delimiter (one of , ; tab |)")
    dropped_index = row[0] == INDEX_COLUMN and len(row) > 1 and \
        all(v.strip() == str(i) for i, v in enumerate(first_values)) and bool(first_values)
    written = tuple(row[1:] if dropped_index else row)
    offset = 2 if dropped_index else 1
    for i, name in enumerate(written):
        if not name.strip():
            kind = "empty" if not name else "whitespace-only"
            hint = " (an unnamed first column is dropped only when it holds the row numbers 0, 1, 2, ...)" \
                if i == 0 and not name else ""
            raise ReadError(f"{path}: column {i + offset} of the header has an {kind} name{hint}; "
                            "name it in the file's first line")
    repeated = [n for n, count in Counter(w.strip() for w in written).items() if count > 1]
    if repeated:
        where = "; ".join(
            f"{n!r} in columns {', '.join(str(i + offset) for i, w in enumerate(written) if w.strip() == n)}"
            for n in repeated)
        raise ReadError(f"{path}: the header repeats column names: {where}; rename or remove the copies")
    names = tuple(tf_name(w.strip(), i) for i, w in enumerate(written))
    clashes = {n: [w for w, m in zip(written, names, strict=True) if m == n]
               for n, c in Counter(names).items() if c > 1}
    if clashes:
        listed = "; ".join(f"{' and '.join(repr(w) for w in ws)} -> {n!r}" for n, ws in clashes.items())
        raise ReadError(f"{path}: column names map to the same TensorFlow name: {listed}; rename one of them "
                        "(names are mapped by pipeline/reader.py's rule: see docs/data.md)")
    return Header(written, names, dropped_index)


def read_chunks(path: Path, dialect: Dialect, header: Header, chunk_rows: int,
                usecols: Sequence[str] | None = None, handle: BinaryIO | None = None
                ) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first data row's 1-based line number, cells as text) of `path` in chunks of `chunk_rows` rows.

    Columns carry the TensorFlow names (`usecols`: only these, as TensorFlow names); cells are raw text
    (no missing-value handling: see `normalize_cells`). `handle`: `path` already opened in binary mode
    (its position tells a progress bar how far reading got). Raises ReadError for a malformed file.
    """
    positions = list(range(1, len(header.names) + 1)) if header.dropped_index else list(range(len(header.names)))
    wanted = [positions[header.names.index(c)] for c in usecols] if usecols is not None else positions
    names = [header.names[positions.index(p)] for p in sorted(wanted)]
    line = 2
    try:
        chunks = pd.read_csv(path if handle is None else handle, sep=dialect.delimiter, encoding=dialect.encoding,
                             header=None, skiprows=1, dtype=str, keep_default_na=False, na_filter=False,
                             usecols=sorted(wanted), chunksize=chunk_rows, engine="c", skip_blank_lines=True)
        for chunk in chunks:
            chunk.columns = names
            chunk.index = pd.RangeIndex(line, line + len(chunk))
            yield line, chunk
            line += len(chunk)
    except pd.errors.EmptyDataError:
        return  # a header and no rows
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ReadError(f"cannot read {path} as CSV ({dialect.describe()}): {' '.join(str(e).split())} "
                        "(set --delimiter, --decimal or --encoding)") from None


def normalize_cells(frame: pd.DataFrame, dialect: Dialect, source: Path | str, check_range: bool = True
                    ) -> pd.DataFrame:
    """Cells as the pipeline means them (rules in the module docstring); the frame's index is the file's line numbers.

    Raises ReadError naming the first cell (line, column, value) whose number does not fit int64 / float32
    (unless `check_range` is False: scoring reports such cells itself, with every other bad cell).
    """
    out = {}
    missing_tokens = pa.array(sorted(MISSING_TOKENS))
    for column in frame.columns:
        # pyarrow's vectorised string kernels: several times faster than pandas' per-cell .str methods.
        cells = pc.utf8_trim_whitespace(pa.array(frame[column].to_numpy(dtype=object), type=pa.string()))
        cells = pc.if_else(pc.is_in(pc.utf8_lower(cells), value_set=missing_tokens), pa.scalar(""), cells)
        if dialect.decimal == ".":
            grouped = pc.match_substring_regex(cells, _THOUSANDS["."].pattern)
            cells = pc.if_else(grouped, pc.replace_substring(cells, ",", ""), cells)
        else:
            grouped = pc.match_substring_regex(cells, _THOUSANDS[","].pattern)
            cells = pc.if_else(grouped, pc.replace_substring_regex(cells, r"[. ]", ""), cells)
            cells = pc.replace_substring_regex(cells, _COMMA_DECIMAL_CELL, r"\1.\2")
        cells = pc.replace_substring_regex(cells, _WHOLE_FLOAT, r"\1")
        text = pd.Series(cells.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)
        if check_range:
            long_or_exponent = pc.or_(pc.greater_equal(pc.utf8_length(cells), 19),
                                      pc.match_substring(cells, "e", ignore_case=True))
            _check_range(text[long_or_exponent.to_numpy(zero_copy_only=False)], column, source)
        out[column] = text
    return pd.DataFrame(out, index=frame.index)


def _check_range(candidates: pd.Series[Any], column: str, source: Path | str) -> None:
    """ReadError for the first of `candidates` (cells of 19 or more characters, or with an exponent: only
    those can exceed int64 or float32) that is a number too large for its type."""
    if candidates.empty:
        return
    values = candidates[candidates.str.fullmatch(NUMBER.pattern)]
    if values.empty:
        return
    integer = values.str.fullmatch(_INTEGER.pattern)
    too_big = pd.Series([abs(int(v)) > INT64_MAX if whole else not abs(float(v)) <= FLOAT32_MAX
                         for v, whole in zip(values, integer, strict=True)], index=values.index, dtype=bool)
    if too_big.any():
        line = too_big.idxmax()
        kind = "a 64-bit integer" if integer[line] else "a 32-bit float"
        raise ReadError(f"{source}: line {line}, column {column!r}: value {values[line]!r} does not fit {kind}; "
                        "correct the value or remove the row")


def _detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = from_bytes(sample)
    if any(codecs.lookup(r.encoding).name == EXCEL_CODE_PAGE for r in results):
        return EXCEL_CODE_PAGE  # several single-byte code pages decode the same bytes: prefer the usual one
    best = results.best()
    return codecs.lookup(best.encoding).name if best is not None else EXCEL_CODE_PAGE


def _decode(sample: bytes, encoding: str, path: Path, complete: bool) -> str:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=complete)
    except UnicodeDecodeError as e:
        raise ReadError(f"{path} is not valid {encoding} (byte {e.start}): set --encoding, for example "
                        "--encoding cp1252 for a file saved by Excel on Windows") from None


def _detect_delimiter(lines: list[str]) -> str:
    sample = "\n".join(lines)
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None and _consistent_fields(lines, sniffed) > 1:
        return sniffed
    counts = {d: _consistent_fields(lines, d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def _consistent_fields(lines: list[str], delimiter: str) -> int:
    """Fields per line when every line has the same number of them, else 0."""
    widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
    return widths.pop() if len(widths) == 1 else 0


def is_decimal_comma(cell: str) -> bool:
    """Whether `cell` is a number written with a decimal comma (`24,24`, `-3,5`): what the decimal-mark
    detection counts, and what a `--decimal .` read leaves as text in a numeric column."""
    return bool(_COMMA_DECIMAL.match(cell.strip()))


def _detect_decimal(lines: list[str], delimiter: str) -> str:
    if delimiter == ",":
        return "."
    comma = point = 0
    for row in csv.reader(lines[1:], delimiter=delimiter):
        for cell in row:
            cell = cell.strip()
            comma += is_decimal_comma(cell)
            point += bool(_POINT_DECIMAL.match(cell))
    return "," if comma and not point else "."
