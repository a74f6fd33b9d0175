"""A real tf.Transform run on a small generated sample, shared by the module tests."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from data.generate import generate
from modules import features
from modules.preprocessing import preprocessing_fn
from pipeline.config import CURATED_SCHEMA

CUSTOM_CONFIG = {"label_key": features.LABEL_KEY, "positive_label": "1", "id_keys": list(features.ID_KEYS)}


@dataclasses.dataclass
class TransformRun:
    raw: pd.DataFrame
    raw_spec: dict[str, Any]
    transformed: list[dict[str, Any]]
    output: tft.TFTransformOutput


def to_instances(frame: pd.DataFrame, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """CSV-like rows as tf.Transform instance dicts: a missing cell is an empty list."""
    rows = []
    for record in frame.to_dict("records"):
        row = {}
        for key, feature in spec.items():
            value = record[key]
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            if not missing:
                value = str(value).encode() if feature.dtype == tf.string else feature.dtype.as_numpy_dtype(value)
            row[key] = [] if missing else [value]
        rows.append(row)
    return rows


def raw_frame(rows: int = 300) -> pd.DataFrame:
    frame = generate(rows, seed=5).astype({"Age": float, "Email_Opt_In": str})
    frame.loc[[0, 1], "Age"] = float("nan")  # missing numeric cells
    frame.loc[2, "Gender"] = None            # missing category
    return frame


def run_transform(tmp: Path, custom_config: dict[str, Any]) -> TransformRun:
    """preprocessing_fn with `custom_config`, analysed and applied by tf.Transform on `raw_frame()`."""
    spec = schema_utils.schema_as_feature_spec(tfdv.load_schema_text(str(CURATED_SCHEMA))).feature_spec
    frame = raw_frame()
    metadata = dataset_metadata.DatasetMetadata.from_feature_spec(spec)
    with tft_beam.Context(temp_dir=str(tmp / "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (to_instances(frame, spec), metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "transform"))
    metadata_io.write_metadata(metadata, str(tmp / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    return TransformRun(frame, spec, transformed, tft.TFTransformOutput(str(tmp / "transform")))


@pytest.fixture(scope="session")
def transform_run(tmp_path_factory: pytest.TempPathFactory) -> TransformRun:
    return run_transform(tmp_path_factory.mktemp("tft"), CUSTOM_CONFIG)
