"""DataValidationGate: the component that stops the run when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing in TFX acts on them. The gate reads them and
raises `DataValidationError`, which stops LocalDagRunner before Transform (Transform depends on the
gate), so a model is never trained on data that breaks the schema.
"""

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

_SCHEMA_DIFF_FILE = "SchemaDiff.pb"


class DataValidationError(Exception):
    """The data breaks the schema; `anomalies` lists each problem in one line."""

    def __init__(self, anomalies: list[str]):
        super().__init__("data validation found anomalies:\n  " + "\n  ".join(anomalies))
        self.anomalies = anomalies


def describe_anomalies(by_split: Mapping[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One line per anomaly: `split: feature: short description (detail)`; empty when the data is clean."""
    lines = []
    for split, anomalies in sorted(by_split.items()):
        infos = dict(anomalies.anomaly_info)
        if anomalies.HasField("dataset_anomaly_info"):
            infos["(dataset)"] = anomalies.dataset_anomaly_info
        for feature, info in sorted(infos.items()):
            detail = "; ".join(r.description for r in info.reason if r.description) or info.description
            lines.append(f"{split}: {feature}: {info.short_description} ({detail})")
    return lines


def load_anomalies(uri: str, split_names: str) -> dict[str, anomalies_pb2.Anomalies]:
    """Per-split Anomalies protos of an ExampleAnomalies artifact (its uri and `split_names` property)."""
    return {
        split: anomalies_util.load_anomalies_binary(os.path.join(uri, f"Split-{split}", _SCHEMA_DIFF_FILE))
        for split in artifact_utils.decode_split_names(split_names)
    }


@component
def DataValidationGate(anomalies: InputArtifact[ExampleAnomalies]) -> None:  # noqa: N802 (TFX component name)
    """Raise DataValidationError when any split has an anomaly."""
    found = describe_anomalies(load_anomalies(anomalies.uri, anomalies.split_names))
    if found:
        raise DataValidationError(found)


def first_out_of_domain_cells(files: list[Path], dialect: Any, header: Any, schema: schema_pb2.Schema,
                              columns: Collection[str], chunk_rows: int = 50_000) -> dict[str, str]:
    """Where an anomaly is in the file: per column, the first cell (file order) outside the schema's domain.

    TFDV's anomalies come from statistics, which keep no rows; this reads the CSV again with
    pipeline/reader.py (so line numbers are the file's own) and checks each cell against the
    feature's `int_domain`/`float_domain` bounds or its string domain. Columns without such a domain,
    or whose every cell fits it (e.g. an anomaly about missing values), are left out.

    Args:
      files, dialect, header: the input as staged (pipeline.inputs.StagedData: its source files' reader state).
      schema: the schema the data was validated against.
      columns: TensorFlow column names to look at (those named in the anomalies).
    Returns:
      {column: "line 7 of bad.csv, column 'Gender': value 'Robot' (the schema allows: Female, Male, Other)"}.
    """
    import pandas as pd

    from pipeline import reader

    allowed: dict[str, tuple[float | None, float | None] | list[str]] = {}
    domains = {d.name: list(d.value) for d in schema.string_domain}
    for feature in schema.feature:
        if feature.name not in columns or feature.name not in header.names:
            continue
        kind = feature.WhichOneof("domain_info")
        if kind in ("int_domain", "float_domain"):
            domain = getattr(feature, kind)
            low = domain.min if domain.HasField("min") else None
            high = domain.max if domain.HasField("max") else None
            if low is not None or high is not None:
                allowed[feature.name] = (low, high)
        elif kind == "string_domain":
            allowed[feature.name] = list(feature.string_domain.value)
        elif kind == "domain" and feature.domain in domains:
            allowed[feature.name] = domains[feature.domain]
    found: dict[str, str] = {}
    written = dict(zip(header.names, header.written, strict=True))
    for path in files:
        wanted = [c for c in allowed if c not in found]
        if not wanted:
            break
        for _, chunk in reader.read_chunks(path, dialect, header, chunk_rows, usecols=wanted):
            cells = reader.normalize_cells(chunk, dialect, path, check_range=False)
            for column in [c for c in wanted if c not in found]:
                values = cells[column]
                values = values[values != ""]
                rule = allowed[column]
                if isinstance(rule, tuple):
                    low, high = rule
                    numbers = pd.to_numeric(values, errors="coerce")
                    bad = numbers.isna() | ((numbers < low) if low is not None else False) | (
                        (numbers > high) if high is not None else False)
                    lower, upper = ('' if b is None else f'{b:g}' for b in (low, high))
                    what = f"the schema allows {lower}..{upper}"
                else:
                    bad = ~values.isin(rule)
                    shown = ", ".join(rule[:10]) + (", ..." if len(rule) > 10 else "")
                    what = f"the schema allows: {shown}"
                if bad.any():
                    line = int(bad.idxmax())
                    if isinstance(rule, tuple) and dialect.decimal == "." and reader.is_decimal_comma(values[line]):
                        what += "; a number with a decimal comma: set --decimal ,"
                    found[column] = (f"line {line} of {path.name}, column {written[column]!r}: value "
                                     f"{values[line]!r} ({what})")
    return found
