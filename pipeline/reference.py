"""ReferenceModels: the component beside the Evaluator that says whether the Dense net was worth it.

It reads CsvExampleGen's raw `train` and `eval` rows and the Trainer's SavedModel, turns both splits
into model inputs with the model's own `transform_features` signature (the same transformed rows the
Trainer fitted on, the same eval rows the Evaluator scores), fits a regularised logistic regression
and gradient-boosted trees on the training rows, scores all three models on the eval rows and writes
`reference_models.json`:
- `reference_models`: each reference model's AUC, the paired AUC difference (net minus reference)
  with its DeLong 95 % interval, a verdict and one sentence (maths in pipeline/reference_models.py);
- `calibration`: the served (calibrated) probability's Brier score, ECE and reliability curve, overall
  and per slice, and under `platt` what the Trainer's calibration step did (modules/calibration.py).
It also keeps those served probabilities of the eval rows in `eval_scores.csv` (one `churn_probability`
column, one row per eval row, in the split's order; no ids, no features: no personal data), the reference
that `python -m monitoring.drift --eval-scores` compares the served scores with.
Seeds are fixed, so a re-run gives the same file (and TFX's cache can reuse it).

`ReferenceGate` (only with `--require-beat-reference`) turns the Evaluator's blessing into one that
also requires that no reference model ranks churners better beyond the paired interval; the Pusher
then reads that blessing.
"""

import json
import os
from typing import Any

import numpy as np
import numpy.typing as npt
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.artifact import Artifact
from tfx.types.standard_artifacts import Examples, Model, ModelBlessing

from modules import features
from pipeline import config as cfg
from pipeline import reference_models as rm
from pipeline.baseline import GATE_PROPERTY

REFERENCE_FILE = "reference_models.json"
EVAL_SCORES_FILE = "eval_scores.csv"
"""The eval split's served (calibrated) churn probabilities, next to reference_models.json."""
MAX_TRAIN_ROWS = 100_000
"""Training rows the reference models fit on at most (a seeded random subset beyond that)."""
_BATCH = 4096


class ReferenceModelsArtifact(Artifact):
    """Folder holding reference_models.json."""

    TYPE_NAME = "churn.ReferenceModels"  # "<namespace>.<Name>": the form Kubeflow V2 artifact schemas require


@component
def ReferenceModels(  # noqa: N802 (TFX component name)
    examples: InputArtifact[Examples],
    model: InputArtifact[Model],
    reference: OutputArtifact[ReferenceModelsArtifact],
    label_key: Parameter[str],
    slice_keys: Parameter[str] = "[]",
    seed: Parameter[int] = 0,
    code_fingerprint: Parameter[str] = "",
) -> None:
    """Fit and score the reference models, and measure the net's calibration, on this run's splits.

    `slice_keys` is a JSON list of raw column names (the Evaluator's slices). `code_fingerprint` is
    unused here: as a parameter it is part of TFX's cache key (see pipeline/fingerprint.py).
    """
    from tfx.utils import path_utils

    result, scores = analyse_with_scores(path_utils.serving_model_path(model.uri), examples.uri, label_key,
                                         json.loads(slice_keys), seed)
    with fileio.open(os.path.join(reference.uri, REFERENCE_FILE), "w") as handle:  # local, or gs:// on Vertex
        json.dump(result, handle, indent=2)
    with fileio.open(os.path.join(reference.uri, EVAL_SCORES_FILE), "w") as handle:
        handle.write(eval_scores_csv(scores))


def eval_scores_csv(scores: npt.NDArray[Any]) -> str:
    """`eval_scores.csv`'s text: the header `churn_probability`, then one probability per line (6 decimals).

    `scores` has shape [rows]; about 9 bytes per eval row (1,000 eval rows: 9 KB)."""
    return "\n".join([features.PROBABILITY_OUTPUT, *(f"{p:.6f}" for p in np.asarray(scores).reshape(-1))]) + "\n"


def eval_scores_path(uri: str) -> str | None:
    """`eval_scores.csv` of a ReferenceModels artifact folder, None when absent (a run older than the file)."""
    path = os.path.join(uri, EVAL_SCORES_FILE)
    return path if fileio.exists(path) else None


def analyse(model_dir: str, examples_uri: str, label_key: str, slice_keys: list[str], seed: int = 0
            ) -> dict[str, Any]:
    """The content of reference_models.json: {"reference_models": ..., "calibration": ...} (analyse_with_scores)."""
    return analyse_with_scores(model_dir, examples_uri, label_key, slice_keys, seed)[0]


def analyse_with_scores(model_dir: str, examples_uri: str, label_key: str, slice_keys: list[str], seed: int = 0
                        ) -> tuple[dict[str, Any], npt.NDArray[Any]]:
    """The content of reference_models.json, and the served churn probabilities of the eval rows ([eval rows]).

    Args:
      model_dir: the Trainer's SavedModel (with the `transform_features` signature and its assets).
      examples_uri: CsvExampleGen's artifact folder (Split-train, Split-eval of gzipped tf.Examples).
      label_key: raw label column.
      slice_keys: raw columns to report calibration per value of (those absent are skipped).
      seed: seeds the training-row subset and both reference models.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(model_dir)
    transform = loaded.signatures["transform_features"]
    label_xf = features.transformed_name(label_key)
    rng = np.random.default_rng(seed)

    def read(split: str, max_rows: int | None = None
             ) -> tuple[npt.NDArray[Any], dict[str, npt.NDArray[Any]], npt.NDArray[Any]]:
        files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
        records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH)
        serialized = np.concatenate([batch.numpy() for batch in records])
        if max_rows is not None and len(serialized) > max_rows:
            serialized = serialized[np.sort(rng.choice(len(serialized), max_rows, replace=False))]
        parts = [transform(examples=tf.constant(serialized[i:i + _BATCH])) for i in range(0, len(serialized), _BATCH)]
        columns = {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
        return serialized, columns, columns.pop(label_xf).reshape(-1)

    _, train, train_labels = read(cfg.TRAIN_SPLIT, MAX_TRAIN_ROWS)
    serialized, evaluation, labels = read(cfg.EVAL_SPLIT)
    # The served probability (calibrated, modules/calibration.py), as the Evaluator scores it.
    serve = loaded.signatures["serving_tf_example"]
    model_scores = np.concatenate([serve(examples=tf.constant(serialized[i:i + _BATCH]))[
        features.PROBABILITY_OUTPUT].numpy().reshape(-1) for i in range(0, len(serialized), _BATCH)])
    sizes = {name: _vocabulary_size(model_dir, name) for name, values in train.items() if values.dtype.kind in "iu"}
    reason = rm.not_fitted(labels, train_labels)
    if reason is None:
        fitted = rm.fit_references(train, train_labels, sizes, seed)
        comparison = rm.compare(labels, model_scores, rm.score_references(fitted, evaluation, sizes))
    else:
        comparison = rm.skipped(labels, reason)
    comparison.update(split=cfg.EVAL_SPLIT, train_rows=int(len(train_labels)), seed=seed)
    found = calibration_by_slice(labels, model_scores, serialized, slice_keys)
    found["platt"] = _platt(model_dir)
    return {"reference_models": comparison, "calibration": found}, model_scores


def calibration_by_slice(labels: npt.NDArray[Any], probabilities: npt.NDArray[Any], serialized: npt.NDArray[Any],
                         slice_keys: list[str]) -> dict[str, Any]:
    """{"overall": calibration, "slices": {"Gender=Male": calibration, ...}} of the net on the eval rows."""
    import tensorflow as tf

    values: dict[str, list[str | None]] = {key: [] for key in slice_keys}
    for record in serialized:
        feature = tf.train.Example.FromString(record).features.feature
        for key in slice_keys:
            values[key].append(_text(feature[key]) if key in feature else None)
    slices = {}
    for key, column in values.items():
        column_array = np.array(column, dtype=object)
        for value in sorted({v for v in column if v is not None}):
            rows = column_array == value
            slices[f"{key}={value}"] = rm.calibration(labels[rows], probabilities[rows])
    return {"split": cfg.EVAL_SPLIT, "bins": rm.CALIBRATION_BINS, "binning": "equal-mass",
            "overall": rm.calibration(labels, probabilities), "slices": slices}


def load_reference(uri: str) -> dict[str, Any]:
    """reference_models.json of a ReferenceModels artifact."""
    with fileio.open(os.path.join(uri, REFERENCE_FILE)) as handle:
        reference: dict[str, Any] = json.load(handle)
    return reference


@component
def ReferenceGate(  # noqa: N802 (TFX component name)
    model: InputArtifact[Model],
    model_blessing: InputArtifact[ModelBlessing],
    reference: InputArtifact[ReferenceModelsArtifact],
    blessing: OutputArtifact[ModelBlessing],
) -> None:
    """Blessed iff the Evaluator blessed the model and no reference model is better beyond the interval."""
    from tfx.components.evaluator import constants

    verdict = gate_verdict(model_blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1,
                           load_reference(reference.uri)["reference_models"])
    for key in (constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY):
        if model_blessing.has_custom_property(key):
            blessing.set_string_custom_property(key, model_blessing.get_string_custom_property(key))
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, int(verdict))
    blessing.set_int_custom_property(GATE_PROPERTY, 1)
    with fileio.open(os.path.join(blessing.uri, "BLESSED" if verdict else "NOT_BLESSED"), "w") as marker:
        marker.write("")  # the Evaluator's marker file; gfile creates a file only on a write


def gate_verdict(evaluator_blessed: bool, comparison: dict[str, Any]) -> bool:
    """`--require-beat-reference`'s rule: the Evaluator's blessing, and no reference model significantly better."""
    return evaluator_blessed and bool(comparison["holds_its_own"])


def _platt(model_dir: str) -> dict[str, Any] | None:
    """The Trainer's calibration record (modules/calibration.py) saved with the model; None for older models."""
    from modules.calibration import CALIBRATION_FILE
    from modules.segments import ASSETS_EXTRA

    path = os.path.join(model_dir, ASSETS_EXTRA, CALIBRATION_FILE)
    if not fileio.exists(path):
        return None
    with fileio.open(path) as handle:
        platt: dict[str, Any] = json.load(handle)
    return platt


def _vocabulary_size(model_dir: str, transformed: str) -> int:
    """Indices of a categorical transformed feature: its vocabulary (a Transform asset) plus the OOV buckets."""
    raw = transformed[: -len(features.transformed_name(""))]
    with fileio.open(os.path.join(model_dir, "assets", features.vocabulary_name(raw))) as handle:
        return sum(1 for _ in handle) + features.VOCAB_OOV_BUCKETS


def _text(feature: Any) -> str | None:
    """A tf.Example feature's first value as text (bytes decoded, numbers as written), None when empty."""
    kind = feature.WhichOneof("kind")
    found = list(getattr(feature, kind).value) if kind else []
    if not found:
        return None
    value = found[0]
    return value.decode() if isinstance(value, bytes) else f"{value:g}" if isinstance(value, float) else str(value)
