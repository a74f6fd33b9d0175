"""Training-choice benchmark: the Dense net trained with other training settings on the pipeline's own splits.

For each table (bench/bench_quality.py's four) one cold pipeline run (local_pipeline.py, defaults) into
`--runs/<table>` (kept, and reused when it is already there); then, for each variant, the designed
model (modules/model.build_model) is trained the Trainer's way on that run's transformed `train` split
with early stopping on `validation`, and scored on the `eval` split (raw rows through the run's own
Transform graph). Printed per variant: eval AUC, Brier score, ECE (10 equal-mass bins, before the
Trainer's Platt calibration), epochs run, best epoch and training seconds. A variant is a JSON object
of `learning_rate`, `dropout`, `l2`, `normalization` (build_model's), `batch_size`, `patience`, `plateau` (halve the
learning rate after patience/3 epochs without progress), `class_weight` ("balanced"), `oversample`
(repeat churners until both classes are even); absent keys keep modules/hparams.py's values.
Prints figures; asserts nothing. The choice it informed is in docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from sklearn.metrics import roc_auc_score

from bench.bench_quality import add_run_arguments, table_runs
from modules import features, hparams
from modules.model import build_model
from modules.runtime import skip_autograph_for_tf_keras
from modules.trainer import feature_layout
from pipeline.reference_models import expected_calibration_error

VARIANTS = (
    {},
    {"dropout": 0.2}, {"dropout": 0.5}, {"l2": 1e-4}, {"l2": 1e-3}, {"learning_rate": 3e-4},
    {"batch_size": 512}, {"plateau": True}, {"dropout": 0.3, "patience": 20}, {"dropout": 0.3, "l2": 1e-4},
    {"dropout": 0.2, "learning_rate": 3e-4},
    {"learning_rate": 3e-4, "l2": 1e-4}, {"learning_rate": 3e-4, "l2": 1e-4, "dropout": 0.1},
    {"learning_rate": 3e-4, "l2": 3e-4}, {"learning_rate": 3e-4, "l2": 1e-4, "patience": 15},
    {"class_weight": "balanced"}, {"learning_rate": 3e-4, "l2": 1e-4, "class_weight": "balanced"},
    {"oversample": True},
)
"""Variants of the 2026-11-30 measurement (docs/performance.md); {} is the defaults."""
BASE = {"learning_rate": 1e-3, "dropout": 0.0, "l2": 0.0}
"""`--base before`: the settings before issue 15's training changes, which `{}` then means."""


def _newest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: int(p.name))


def load_run(output: Path, label_key: str = features.LABEL_KEY) -> dict[str, Any]:
    """Transformed train and validation splits, the eval split through the run's Transform graph, and the layout."""
    root = output / "tfx"
    transform_output = tft.TFTransformOutput(str(_newest(root / "Transform" / "transform_graph")))
    label_xf = features.transformed_name(label_key)
    spec = transform_output.transformed_feature_spec()

    def parse(files: list[Path], feature_spec: dict[str, Any]) -> list[dict[str, tf.Tensor]]:
        dataset = tf.data.TFRecordDataset([str(f) for f in files], compression_type="GZIP").batch(65_536)
        return [tf.io.parse_example(batch, feature_spec) for batch in dataset]

    def columns(batches: list[dict[str, tf.Tensor]]) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        merged = {k: tf.concat([b[k] for b in batches], axis=0) for k in batches[0]}
        return {k: v for k, v in merged.items() if k in spec and k != label_xf}, merged[label_xf]

    examples = _newest(root / "Transform" / "transformed_examples")
    layer = transform_output.transform_features_layer()
    raw = parse(sorted((_newest(root / "CsvExampleGen" / "examples") / "Split-eval").iterdir()),
                transform_output.raw_feature_spec())
    return {
        "train": columns(parse(sorted((examples / "Split-train").iterdir()), spec)),
        "validation": columns(parse(sorted((examples / "Split-validation").iterdir()), spec)),
        "eval": columns([layer(batch) for batch in raw]),
        "layout": feature_layout(transform_output, label_xf),
    }


def train_and_score(data: dict[str, Any], variant: dict[str, Any], base: dict[str, float]) -> dict[str, Any]:
    """Train one variant the Trainer's way (seeded) and score it on the eval split: auc, brier, ece, epochs,
    best_epoch, seconds, and the eval rows' `probability` and `truth` ([rows] arrays, for paired comparisons)."""
    skip_autograph_for_tf_keras()
    tf.keras.utils.set_random_seed(hparams.SEED)
    settings = {**base, **{k: v for k, v in variant.items() if k in base or k == "normalization"}}
    model = build_model(*data["layout"], **settings)
    x, y = data["train"]
    patience = variant.get("patience", hparams.EARLY_STOPPING_PATIENCE)
    callbacks = [tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    if variant.get("plateau"):
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                              patience=max(1, patience // 3), min_lr=1e-5))
    extra: dict[str, Any] = {}
    labels = y.numpy().reshape(-1)
    if variant.get("class_weight") == "balanced":
        rate = float(labels.mean())
        extra["class_weight"] = {0: 0.5 / (1 - rate), 1: 0.5 / rate}
    if variant.get("oversample"):
        positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        more = np.random.default_rng(hparams.SEED).choice(positives, len(negatives) - len(positives))
        rows = np.concatenate([np.arange(len(labels)), more])
        x, y = {k: tf.gather(v, rows) for k, v in x.items()}, tf.gather(y, rows)
    started = time.monotonic()
    history = model.fit(x, y, batch_size=variant.get("batch_size", hparams.batch_size(len(labels))),
                        epochs=hparams.MAX_EPOCHS, validation_data=data["validation"], callbacks=callbacks,
                        shuffle=True, verbose=0, **extra)
    seconds = time.monotonic() - started
    eval_x, eval_y = data["eval"]
    probability = model.predict(eval_x, batch_size=65_536, verbose=0).reshape(-1)
    truth = eval_y.numpy().reshape(-1)
    losses = history.history["val_loss"]
    return {"auc": roc_auc_score(truth, probability), "brier": float(np.mean((probability - truth) ** 2)),
            "ece": expected_calibration_error(truth, probability), "epochs": len(losses),
            "best_epoch": int(np.argmin(losses)) + 1, "seconds": seconds, "probability": probability, "truth": truth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--variants", type=json.loads, default=list(VARIANTS), help="JSON list of variants")
    parser.add_argument("--base", choices=("current", "before"), default="current",
                        help="what {} means: modules/hparams.py's values, or those before issue 15's changes")
    args = parser.parse_args()
    runs = table_runs(args, parser)
    base = dict(BASE) if args.base == "before" else dict(hparams.DEFAULTS)
    print(f"{'table':<18}{'variant':<58}{'AUC':>8}{'Brier':>8}{'ECE':>8}{'epochs':>8}{'best':>6}{'seconds':>9}")
    for name, output in runs:
        data = load_run(output)
        for variant in args.variants:
            r = train_and_score(data, variant, base)
            print(f"{name:<18}{json.dumps(variant) or '{}':<58}{r['auc']:>8.4f}{r['brier']:>8.4f}{r['ece']:>8.4f}"
                  f"{r['epochs']:>8}{r['best_epoch']:>6}{r['seconds']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
