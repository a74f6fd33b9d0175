"""DataValidationGate: the component that stops the run when ExampleValidator found anomalies.

ExampleValidator only records anomalies; nothing in TFX acts on them. The gate reads them and
raises `DataValidationError`, which stops LocalDagRunner before Transform (Transform depends on the
gate), so a model is never trained on data that breaks the schema.
"""

import os
from collections.abc import Mapping

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
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
