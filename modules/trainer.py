"""TFX Trainer entry point: train with early stopping on the validation split, export signatures."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from modules import calibration, features, hparams, segments
from modules import threshold as decision
from modules.model import build_model
from modules.runtime import skip_autograph_for_tf_keras
from modules.signatures import as_parsed, make_serving_signatures

_READ_BATCH = 65_536


# TFX Trainer will call this function.
def run_fn(fn_args: FnArgs) -> None:
    """Train the model and save it with `tf.saved_model.save` (Keras' own save fails on TF 2.16)."""
    data = read_training_data(fn_args)
    config, seed, tf_transform_output = data.config, data.seed, data.transform_output
    train, validation = data.train, data.validation
    numeric_keys, vocabulary_sizes = data.numeric_keys, data.vocabulary_sizes
    # Defaults, or the TFX Tuner's best trial when `--tune` wired one in (modules/tuner.py).
    chosen = hparams.from_tuner(fn_args.hyperparameters, int(train[1].shape[0]))
    with tf.io.gfile.GFile(f"{fn_args.model_run_dir}/{hparams.HYPERPARAMETERS_FILE}", "w") as handle:
        json.dump({"values": chosen, "tuned": fn_args.hyperparameters is not None}, handle, indent=2, sort_keys=True)
    batch_size = int(chosen.pop(hparams.BATCH_SIZE_KEY))
    model = build_model(numeric_keys, vocabulary_sizes, **chosen)
    model.fit(
        *train,
        batch_size=batch_size,
        # In-memory tensors: Keras shuffles the row indices every epoch and gathers whole batches.
        # A tf.data shuffle buffer moves rows one by one, far slower at scale (docs/performance.md).
        shuffle=True,
        validation_data=validation,
        epochs=config.get("max_epochs", hparams.MAX_EPOCHS),
        callbacks=[
            tf.keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.get("patience", hparams.EARLY_STOPPING_PATIENCE),
                restore_best_weights=True,
            ),
            tf.keras.callbacks.CSVLogger(f"{fn_args.model_run_dir}/history.csv"),
        ],
        verbose=0,
    )
    segmentation = fit_training_segments(tf_transform_output, train, numeric_keys, seed)
    validation_probabilities = model.predict(validation[0], batch_size=_READ_BATCH, verbose=0)
    platt = calibration.fit_platt(validation_probabilities, validation[1].numpy())
    # On the calibrated probability, the one `churn` is decided on (modules/threshold.py).
    calibrated = calibration.apply_numpy(validation_probabilities, platt.scale, platt.offset) if platt.applied \
        else validation_probabilities
    threshold = decision.choose(calibrated, validation[1].numpy(), config.get(decision.CUSTOM_CONFIG_KEY))
    signatures = make_serving_signatures(model, tf_transform_output, config["label_key"], config["id_keys"],
                                         segmentation, platt, threshold.value)
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures=signatures)
    # TF Serving ignores assets.extra; the Pusher copies the whole folder, so every pushed version carries it.
    extra = os.path.join(fn_args.serving_model_dir, segments.ASSETS_EXTRA)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, segments.SEGMENTS_FILE), "w") as handle:
        json.dump(segments.to_json(segmentation), handle, indent=2)
    with tf.io.gfile.GFile(os.path.join(extra, calibration.CALIBRATION_FILE), "w") as handle:
        json.dump(platt.to_json(), handle, indent=2)
    decision.write(fn_args.serving_model_dir, threshold)


@dataclass(frozen=True)
class TrainingData:
    """What the Trainer (`run_fn`) and the Tuner (`modules/tuner.py`) read before they fit a model."""

    config: dict[str, Any]
    """`fn_args.custom_config` (`label_key`, `seed`, `max_epochs`, ...)."""
    seed: int
    transform_output: tft.TFTransformOutput
    train: tuple[dict[str, tf.Tensor], tf.Tensor]
    """The transformed train split in memory (`read_split`)."""
    validation: tuple[dict[str, tf.Tensor], tf.Tensor]
    """The transformed eval split, the validation data of early stopping and of the Tuner's objective."""
    numeric_keys: list[str]
    vocabulary_sizes: dict[str, int]
    """`feature_layout`: the model's numeric inputs, and each categorical input's vocabulary size."""


def read_training_data(fn_args: FnArgs) -> TrainingData:
    """Seed Python/NumPy/TF with `custom_config["seed"]` (default `hparams.SEED`), skip AutoGraph for tf-keras,
    and read both transformed splits (`fn_args.train_files`, `fn_args.eval_files`) and the feature layout.

    Raises KeyError if `custom_config` has no `label_key`.
    """
    skip_autograph_for_tf_keras()
    config: dict[str, Any] = fn_args.custom_config
    seed = config.get("seed", hparams.SEED)
    tf.keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    label_xf = features.transformed_name(config["label_key"])
    train = read_split(fn_args, fn_args.train_files, tf_transform_output, label_xf)
    validation = read_split(fn_args, fn_args.eval_files, tf_transform_output, label_xf)
    numeric_keys, vocabulary_sizes = feature_layout(tf_transform_output, label_xf)
    return TrainingData(config, seed, tf_transform_output, train, validation, numeric_keys, vocabulary_sizes)


def read_split(fn_args: FnArgs, files: list[str], tf_transform_output: tft.TFTransformOutput,
               label_xf: str) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """A transformed split read whole into memory: (transformed name -> [rows, 1] tensor, labels [rows, 1])."""
    # The split is read once into memory (a few bytes per feature per row: a million rows fit
    # easily) and sliced from there; re-reading TFRecords, or unbatching TFXIO's output, every
    # epoch costs several times more than the training steps themselves.
    batches = list(fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=_READ_BATCH, label_key=label_xf, num_epochs=1, shuffle=False),
        tf_transform_output.transformed_metadata.schema,
    ))
    inputs = {k: tf.concat([b[0][k] for b in batches], axis=0) for k in batches[0][0]}
    return inputs, tf.concat([b[1] for b in batches], axis=0)


def fit_training_segments(tf_transform_output: tft.TFTransformOutput, train: tuple[dict[str, tf.Tensor], tf.Tensor],
                  numeric_keys: list[str], seed: int) -> segments.Segmentation:
    """Customer segments on the training rows' z-scored behavioural features (modules/segments.py)."""
    columns = segments.segment_columns(numeric_keys)
    inputs, labels = train
    z_scores = np.concatenate([inputs[features.transformed_name(c)].numpy() for c in columns], axis=1)
    mean, std = z_score_parameters(tf_transform_output, columns)
    return segments.fit_segments(z_scores, labels.numpy().reshape(-1), columns, mean, std, seed)


def z_score_parameters(tf_transform_output: tft.TFTransformOutput,
                        columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and deviation of numeric columns, read off the Transform graph itself.

    Transform keeps them only as constants inside its graph, so raw values go through it: z(a) and
    z(b) give std = (b - a) / (z(b) - z(a)) and mean = a - z(a) * std. A first guess from a, b = 0, 1
    loses float32 precision when the mean is many deviations from 0, so the answer comes from
    a second probe at about the mean and one deviation above it (rounded for integer columns).
    """
    raw_spec = tf_transform_output.raw_feature_spec()
    layer = tf_transform_output.transform_features_layer()

    def probe(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        given = dict(zip(columns, zip(low, high, strict=True), strict=True))
        raw = {k: as_parsed(tf.constant([b"", b""] if s.dtype == tf.string
                                        else np.asarray(given.get(k, (0, 1))).astype(s.dtype.as_numpy_dtype)), s)
               for k, s in raw_spec.items()}
        transformed = layer(raw)
        z = np.stack([transformed[features.transformed_name(c)].numpy().reshape(-1) for c in columns], axis=1)
        std = (high - low) / (z[1] - z[0])
        return low - z[0] * std, std

    mean, std = probe(np.zeros(len(columns)), np.ones(len(columns)))
    whole = np.array([raw_spec[c].dtype.is_integer for c in columns])
    low = np.where(whole, np.round(mean), mean)
    return probe(low, low + np.where(whole, np.maximum(np.round(std), 1.0), std))


def feature_layout(tf_transform_output: tft.TFTransformOutput, label_xf: str) -> tuple[list[str], dict[str, int]]:
    """(numeric keys, categorical key -> number of indices) read from the Transform output.

    A vocabulary's count is its size plus the OOV index; a quantile bucket's (`features.bucket_name`, only with
    the non-default `features.FEATURE_TRANSFORMS` option) is its schema's int_domain max + 1; a feature cross
    (`features.cross_name`, also non-default) is a vocabulary.
    """
    spec = tf_transform_output.transformed_feature_spec()
    spec.pop(label_xf)
    raw = list(tf_transform_output.raw_feature_spec())
    raw_keys = {features.transformed_name(k): k for k in raw}
    buckets = {features.transformed_name(features.bucket_name(k)): features.bucket_name(k) for k in raw}
    # Feature crosses (non-default option): every pair of raw columns, vocabulary named like a column's.
    raw_keys.update({features.transformed_name(features.cross_name(a, b)): features.cross_name(a, b)
                     for a in raw for b in raw if a != b})
    numeric = [raw_keys[name] for name, s in spec.items() if s.dtype == tf.float32]
    domains = {f.name: f.int_domain.max for f in tf_transform_output.transformed_metadata.schema.feature
               if f.HasField("int_domain")}
    sizes = {}
    for name, s in spec.items():
        if s.dtype != tf.int64:
            continue
        if name in buckets:
            sizes[buckets[name]] = int(domains[name]) + 1
        else:
            key = raw_keys[name]
            sizes[key] = tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(key)) \
                + features.VOCAB_OOV_BUCKETS
    return numeric, sizes
