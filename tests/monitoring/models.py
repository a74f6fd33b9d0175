"""A small churn-like SavedModel for the monitoring tests: the real model's serving interface
(`serving_default`, one input per feature of the curated schema, outputs `churn_probability` and
`churn`) without running the pipeline."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from common.facts import MODEL_NAME
from data.generate import generate
from modules.features import CLASS_OUTPUT, ID_KEYS, LABEL_KEY, PROBABILITY_OUTPUT, model_feature_keys
from pipeline.config import CURATED_SCHEMA

_DTYPES = {schema_pb2.INT: tf.int64, schema_pb2.FLOAT: tf.float32, schema_pb2.BYTES: tf.string}


def serving_features() -> dict[str, tf.DType]:
    """Input name -> dtype of every model feature in the curated schema."""
    schema = text_format.Parse(CURATED_SCHEMA.read_text(), schema_pb2.Schema())
    types = {f.name: _DTYPES[f.type] for f in schema.feature}
    return {name: types[name] for name in model_feature_keys(types, LABEL_KEY, ID_KEYS)}


def build_churn_model(export_dir: Path) -> Path:
    """`serving_default`: probability = sigmoid((Age - 44) / 8), so generated customers spread over (0, 1)."""
    features = serving_features()

    class Model(tf.Module):
        @tf.function(input_signature=[{k: tf.TensorSpec([None], d, name=k) for k, d in features.items()}])
        def serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            probability = tf.sigmoid((tf.cast(inputs["Age"], tf.float32) - 44.0) / 8.0)
            return {PROBABILITY_OUTPUT: probability, CLASS_OUTPUT: tf.cast(probability >= 0.5, tf.int64)}

    model = Model()
    tf.saved_model.save(model, str(export_dir), signatures={"serving_default": model.serve})
    return export_dir


def instances(rows: int, seed: int) -> list[dict]:
    """Generated customers as REST `instances`."""
    return traffic(rows, seed).to_dict(orient="records")


def write_log(path: Path, frame: pd.DataFrame, version: int = 1) -> Path:
    """A request log as the server writes it (inputs only matter here)."""
    with path.open("w") as out:
        for record in json.loads(frame.to_json(orient="records")):
            out.write(json.dumps({"time": 0.0, "model_name": MODEL_NAME, "version": version, "inputs": record,
                                  "churn_probability": 0.5}) + "\n")
    return path


def traffic(rows: int, seed: int, change: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """Generated customers as clients send them: the model's inputs only, typed as the schema says
    (so the boolean `Email_Opt_In` column becomes the schema's text categories), then `change`d."""
    frame = generate(rows, seed=seed)
    out = pd.DataFrame({name: frame[name].astype(str) if dtype == tf.string else frame[name]
                        for name, dtype in serving_features().items()})
    if change:
        change(out)
    return out
