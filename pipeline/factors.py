"""ChurnFactors: the pipeline component that says which features drive the trained model's churn predictions.

It reads the raw `eval` rows CsvExampleGen wrote and the Trainer's SavedModel (blessed or not: a run
that ends unblessed still learns that its model found nothing), and writes `factors.json` (maths in
pipeline/factor_analysis.py). The model is called in-process through its own exported functions:
`transform_features` turns the tf.Examples into model inputs and the label, then the Keras model
(saved with the SavedModel) scores them, so no shuffle ever passes through a re-implemented Transform.
Deterministic for a seed, so TFX's cache can reuse it; a few seconds per run.
"""

import json
import os
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.artifact import Artifact
from tfx.types.standard_artifacts import Examples, Model

from modules import features
from pipeline import config as cfg
from pipeline import factor_analysis as fa

FACTORS_FILE = "factors.json"
MAX_ROWS = 5_000
"""Eval rows used at most (a seeded random subset beyond that): keeps the bootstrap to seconds."""
_BATCH = 4096


class ChurnFactorsArtifact(Artifact):
    """Folder holding factors.json."""

    TYPE_NAME = "churn.ChurnFactors"  # "<namespace>.<Name>": the form Kubeflow V2 artifact schemas require


@component
def ChurnFactors(  # noqa: N802 (TFX component name)
    examples: InputArtifact[Examples],
    model: InputArtifact[Model],
    factors: OutputArtifact[ChurnFactorsArtifact],
    label_key: Parameter[str],
    seed: Parameter[int] = 0,
    code_fingerprint: Parameter[str] = "",
) -> None:
    """Permutation importance (with simultaneous intervals) and direction of every model feature on `eval`.

    `code_fingerprint` (a hash of this component's code) is unused here: as a parameter it is part of
    TFX's cache key, so editing the analysis re-runs it instead of serving the old result from cache.
    """
    from tfx.utils import path_utils

    result = analyse(path_utils.serving_model_path(model.uri), os.path.join(examples.uri, f"Split-{cfg.EVAL_SPLIT}"),
                     label_key, seed)
    with fileio.open(os.path.join(factors.uri, FACTORS_FILE), "wb") as handle:  # local, or gs:// on Vertex
        handle.write(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))  # NaN -> null


def analyse(model_dir: str, examples_dir: str, label_key: str, seed: int = 0) -> dict[str, Any]:
    """The content of factors.json for the SavedModel in `model_dir` on the gzipped tf.Examples in `examples_dir`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    files = sorted(tf.io.gfile.glob(os.path.join(examples_dir, "*")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH)
    serialized = np.concatenate([batch.numpy() for batch in records])
    eval_rows = len(serialized)
    if eval_rows > MAX_ROWS:
        serialized = serialized[np.sort(rng.choice(eval_rows, MAX_ROWS, replace=False))]
    loaded = tf.saved_model.load(model_dir)
    transform = loaded.signatures["transform_features"]
    parts = [transform(examples=tf.constant(serialized[i:i + _BATCH])) for i in range(0, len(serialized), _BATCH)]
    columns = {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
    labels = columns.pop(features.transformed_name(label_key)).reshape(-1)

    def predict(batch: fa.Columns) -> npt.NDArray[Any]:
        scores: npt.NDArray[Any] = loaded({k: tf.constant(v) for k, v in batch.items()}, training=False).numpy()
        return scores.reshape(-1)

    suffix = features.transformed_name("")
    raw_of = {name: name[: -len(suffix)] for name in columns}  # `Age_xf` -> `Age`
    auc, importances = fa.permutation_importance(predict, columns, labels, rng)
    rows = []
    for found in importances:
        raw_key = raw_of[found.feature]
        row: dict[str, Any] = {"feature": raw_key, "importance": round(found.importance, 5),
                               "ci": [round(found.ci[0], 5), round(found.ci[1], 5)],
                               "distinguishable": found.distinguishable}
        row.update(_direction(predict, columns, found.feature, raw_key, serialized, model_dir))
        rows.append(row)
    return {
        "method": "permutation importance on AUC (AUC minus AUC with the feature shuffled across customers, "
                  f"mean of {fa.PERMUTATIONS} shuffles); intervals: estimate +- z x standard error from "
                  f"{fa.BOOTSTRAPS} paired bootstrap resamples of the rows, Bonferroni-corrected over the features; "
                  f"direction: mean predicted churn probability with every customer set to the feature's "
                  f"{fa.LOW_QUANTILE:.0%} / {fa.HIGH_QUANTILE:.0%} quantile value, or to each category",
        "split": cfg.EVAL_SPLIT, "eval_rows": eval_rows, "rows_used": len(labels), "auc": round(auc, 5),
        "confidence": fa.CONFIDENCE, "multiple_comparisons": "bonferroni",
        "z": round(fa.simultaneous_z(len(importances)), 4), "seed": seed,
        "features": rows,
        "drivers": [r["feature"] for r in rows if r["distinguishable"] and r["importance"] > 0],
        "summary": fa.summary_sentence([fa.Importance(raw_of[i.feature], i.importance, i.ci) for i in importances]),
    }


def _direction(predict: fa.Predict, columns: fa.Columns, name: str, raw_key: str, serialized: npt.NDArray[Any],
               model_dir: str) -> dict[str, Any]:
    """factors.json fields saying which way a feature moves the churn probability, in raw values or categories."""
    if columns[name].dtype.kind == "f":
        ends = fa.numeric_effect(predict, columns, name)
        for end in ends.values():
            end["value"] = _raw_value(serialized[end.pop("row")], raw_key)
            end["probability"] = round(end["probability"], 4)
        return {"kind": "numeric", "low": ends["low"], "high": ends["high"],
                "direction": "up" if ends["high"]["probability"] > ends["low"]["probability"] else "down"}
    vocabulary = _vocabulary(model_dir, raw_key)
    probabilities = fa.category_effects(predict, columns, name, len(vocabulary))
    categories = sorted(zip(vocabulary, probabilities, strict=True), key=lambda c: -c[1])
    return {"kind": "categorical", "categories": {category: round(p, 4) for category, p in categories}}


def load_factors(uri: str) -> dict[str, Any]:
    """factors.json of a ChurnFactors artifact."""
    with fileio.open(os.path.join(uri, FACTORS_FILE)) as handle:
        factors: dict[str, Any] = json.load(handle)
    return factors


def _raw_value(serialized: bytes, key: str) -> float | None:
    """A numeric raw feature's value in one tf.Example (None when the cell was empty)."""
    import tensorflow as tf

    feature = tf.train.Example.FromString(serialized).features.feature.get(key)
    if feature is None:
        return None
    values = list(feature.float_list.value) or list(feature.int64_list.value)
    return float(values[0]) if values else None


def _vocabulary(model_dir: str, key: str) -> list[str]:
    """The categories behind vocabulary indices 0..n-1, from the Transform asset saved with the model."""
    with fileio.open(os.path.join(model_dir, "assets", features.vocabulary_name(key))) as handle:
        return [line.rstrip("\n") for line in handle]
