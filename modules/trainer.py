"""TFX Trainer entry point: train with early stopping on the validation split, export signatures."""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from modules import features, hparams
from modules.model import build_model
from modules.runtime import skip_autograph_for_tf_keras
from modules.signatures import make_serving_signatures

_SHUFFLE_ROWS = 100_000
"""Shuffle buffer: the whole training split for data of the bundled size."""
_READ_BATCH = 65_536


# TFX Trainer will call this function.
def run_fn(fn_args: FnArgs) -> None:
    """Train the model and save it with `tf.saved_model.save` (Keras' own save fails on TF 2.16)."""
    skip_autograph_for_tf_keras()
    config: dict[str, Any] = fn_args.custom_config
    seed = config.get("seed", hparams.SEED)
    tf.keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    label_xf = features.transformed_name(config["label_key"])
    batch_size = config.get("batch_size", hparams.BATCH_SIZE)

    def rows(files: list[str]) -> tf.data.Dataset:
        # The split is read once into memory (a few bytes per feature per row: a million rows fit
        # easily) and sliced from there; re-reading TFRecords, or unbatching TFXIO's output, every
        # epoch costs several times more than the training steps themselves.
        batches = list(fn_args.data_accessor.tf_dataset_factory(
            files,
            tfxio.TensorFlowDatasetOptions(batch_size=_READ_BATCH, label_key=label_xf, num_epochs=1, shuffle=False),
            tf_transform_output.transformed_metadata.schema,
        ))
        inputs = {k: tf.concat([b[0][k] for b in batches], axis=0) for k in batches[0][0]}
        return tf.data.Dataset.from_tensor_slices((inputs, tf.concat([b[1] for b in batches], axis=0))).cache()

    model = build_model(*_feature_layout(tf_transform_output, label_xf))
    model.fit(
        rows(fn_args.train_files).shuffle(_SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True).batch(batch_size),
        validation_data=rows(fn_args.eval_files).batch(batch_size),
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
    signatures = make_serving_signatures(model, tf_transform_output, config["label_key"], config["id_keys"])
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures=signatures)


def _feature_layout(tf_transform_output: tft.TFTransformOutput, label_xf: str) -> tuple[list[str], dict[str, int]]:
    """(numeric keys, categorical key -> vocabulary size incl. OOV) read from the Transform output."""
    spec = tf_transform_output.transformed_feature_spec()
    spec.pop(label_xf)
    raw_keys = {features.transformed_name(k): k for k in tf_transform_output.raw_feature_spec()}
    numeric = [raw_keys[name] for name, s in spec.items() if s.dtype == tf.float32]
    vocab_sizes = {
        raw_keys[name]: tf_transform_output.vocabulary_size_by_name(features.vocabulary_name(raw_keys[name]))
        + features.VOCAB_OOV_BUCKETS
        for name, s in spec.items()
        if s.dtype == tf.int64
    }
    return numeric, vocab_sizes
