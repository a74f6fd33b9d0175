"""Model and training knobs, nothing else."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HIDDEN_UNITS: tuple[int, ...] = (256, 64, 16)
# LEARNING_RATE, L2, DROPOUT and no class weights were chosen by measurement on four tables (docs/performance.md,
# "Training changes of issue 15"): 3e-4 with L2 1e-4 ranked and calibrated better than or as well as 1e-3
# without a penalty on every table; dropout, a larger batch, a longer patience, a plateau schedule, class
# weights and oversampling churners did not; nor did batches of 32, 64 or 256 rows, or batch / layer
# normalisation (docs/performance.md, "Feature transforms, batch size and normalisation").
LEARNING_RATE = 3e-4
"""Adam's learning rate."""
DROPOUT = 0.0
"""Dropout after each relu layer (modules/model.py)."""
L2 = 1e-4
"""L2 penalty on the Dense kernels."""
NO_NORMALIZATION, BATCH_NORMALIZATION, LAYER_NORMALIZATION = "none", "batch", "layer"
NORMALIZATIONS = (NO_NORMALIZATION, BATCH_NORMALIZATION, LAYER_NORMALIZATION)
NORMALIZATION = NO_NORMALIZATION
"""Normalisation layer after each relu layer (modules/model.py); measured, not adopted (docs/performance.md)."""
BATCH_SIZE = 128
"""The batch size of training splits up to STEPS_PER_EPOCH x 128 rows (65,536): the bundled data's."""
STEPS_PER_EPOCH = 512
"""Larger splits get the power-of-two batch that keeps an epoch near this many steps (batch_size)."""
MAX_EPOCHS = 200
"""An upper bound only: early stopping on the validation split decides when training ends."""
EARLY_STOPPING_PATIENCE = 10
"""Epochs without a better validation loss before training stops and the best weights are restored."""
SEED = 42

DEFAULTS: dict[str, float] = {"learning_rate": LEARNING_RATE, "dropout": DROPOUT, "l2": L2}
"""The training hyperparameters `--tune` may change (`build_model`'s keyword arguments), at their defaults."""
SEARCH_SPACE: dict[str, tuple[float, ...]] = {
    "learning_rate": (1e-4, 3e-4, 1e-3, 3e-3),
    "dropout": (0.0, 0.1, 0.2, 0.3, 0.5),
    "l2": (0.0, 1e-5, 1e-4, 1e-3),
}
"""The values the Tuner (modules/tuner.py) chooses from; each holds its DEFAULTS value."""
BATCH_SIZE_KEY = "batch_size"
"""The Tuner also chooses the batch size, from `batch_size_choices`: not a build_model argument."""
BATCH_SIZE_FACTORS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
"""`--tune`'s batch sizes, as multiples of `batch_size(train_rows)` (32 ... 512 on the bundled data)."""
HYPERPARAMETERS_FILE = "hyperparameters.json"
"""Written by the Trainer into its model_run folder: {"values": the training hyperparameters used,
"tuned": whether they came from the Tuner}; the run summary reads it."""
TUNE_BUDGET_SECONDS = 300.0
"""`--tune`'s default wall-clock budget for the search: no trial starts after it, a running one stops."""
TUNE_MAX_TRIALS = 20
"""At most this many trials, even within the budget."""


def batch_size(train_rows: int) -> int:
    """Batch size for a training split of `train_rows` rows.

    With a fixed 128, a million-row table means 4,700 optimizer steps per epoch. Growing the batch
    keeps that bounded; early stopping still decides how many epochs.
    """
    batch = BATCH_SIZE
    while train_rows > batch * STEPS_PER_EPOCH:
        batch *= 2
    return batch


def batch_size_choices(train_rows: int) -> tuple[int, ...]:
    """The batch sizes `--tune` chooses from for a training split of `train_rows` rows: `batch_size(train_rows)`
    times each of BATCH_SIZE_FACTORS, ascending."""
    default = batch_size(train_rows)
    return tuple(sorted({max(1, int(default * factor)) for factor in BATCH_SIZE_FACTORS}))


def from_tuner(config: Mapping[str, Any] | None, train_rows: int) -> dict[str, float]:
    """The training hyperparameters to use: DEFAULTS and `batch_size(train_rows)`, overridden by a TFX Tuner's
    best trial.

    Args:
      config: `FnArgs.hyperparameters`, the `keras_tuner.HyperParameters.get_config()` dict the Tuner
        wrote (its chosen values are under "values"), or None without a Tuner.
      train_rows: rows of the training split.
    Returns:
      name -> value for every key of DEFAULTS (build_model's arguments) and BATCH_SIZE_KEY (an int).
    Raises:
      ValueError: the config names a hyperparameter that is not in DEFAULTS or BATCH_SIZE_KEY.
    """
    chosen = dict((config or {}).get("values", {}))
    unknown = sorted(set(chosen) - set(DEFAULTS) - {BATCH_SIZE_KEY})
    if unknown:
        raise ValueError(f"unknown hyperparameters from the Tuner: {', '.join(unknown)}")
    values: dict[str, float] = {**DEFAULTS, BATCH_SIZE_KEY: batch_size(train_rows)}
    values.update({k: int(v) if k == BATCH_SIZE_KEY else float(v) for k, v in chosen.items()})
    return values
