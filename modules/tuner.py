"""TFX Tuner entry point (`--tune`): a random search over training hyperparameters within a wall-clock budget.

The Tuner sees the transformed training and validation splits only, so it chooses training
hyperparameters (Adam's learning rate, dropout, L2, batch size), never Transform options. The search space is
`modules.hparams.SEARCH_SPACE` and `hparams.batch_size_choices`; the objective is the validation binary
cross-entropy without the L2 penalty (`OBJECTIVE`). The Trainer reads the best trial's values from the
Tuner's `best_hyperparameters` output (`hparams.from_tuner`).

keras-tuner 1.3.5 is pinned: 1.4.x imports Keras 3 and rejects the tf-keras models this project
builds (TF_USE_LEGACY_KERAS=1); 1.3.5 uses `tf.keras`, which is tf-keras here.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import keras_tuner
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from modules import hparams
from modules.model import CROSS_ENTROPY, build_model
from modules.trainer import read_training_data

OBJECTIVE = "val_" + CROSS_ENTROPY
"""Validation binary cross-entropy without the L2 penalty: the loss Keras reports includes the penalty,
which would favour the trials with the smallest L2."""


class DefaultsFirstOracle(keras_tuner.oracles.RandomSearchOracle):
    """Random search whose first trial is the search space's defaults (`hparams.DEFAULTS`): another trial is
    chosen only if it reaches a lower validation cross-entropy than the values used without `--tune`."""

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if not self.trials:
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING,
                    "values": dict(self.hyperparameters.values)}
        return super().populate_space(trial_id)


class BudgetedRandomSearch(keras_tuner.Tuner):
    """keras-tuner's random search (`DefaultsFirstOracle`) that starts no new trial once `budget_seconds`
    have passed since `search` began, and stops a running trial's training at that moment (its best
    epoch so far counts). The first trial always runs, so a search always has a best trial.

    Raises:
      ValueError: `budget_seconds` or `max_trials` not positive.
    """

    def __init__(self, hypermodel: Any, *, objective: str, max_trials: int, budget_seconds: float, seed: int,
                 **kwargs: Any) -> None:
        if budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be > 0, got {budget_seconds}")
        if max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {max_trials}")
        oracle = DefaultsFirstOracle(objective=keras_tuner.Objective(objective, direction="min"),
                                     max_trials=max_trials, seed=seed)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.budget_seconds = budget_seconds
        self.deadline: float | None = None

    # TFX's Tuner executor calls these two, which print to stdout, into the run's progress lines; on
    # stderr they go where the run's other library output goes (<output>/pipeline.log without --verbose).
    def search_space_summary(self, extended: bool = False) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            super().search_space_summary(extended)

    def results_summary(self, num_trials: int = 10) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            super().results_summary(num_trials)

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self.deadline = time.monotonic() + self.budget_seconds

    def pre_create_trial(self) -> None:
        super().pre_create_trial()
        if self.deadline is not None and time.monotonic() >= self.deadline and self.oracle.trials:
            # keras-tuner's oracle answers STOPPED once it holds max_trials trials: the search loop ends.
            self.oracle.max_trials = len(self.oracle.trials)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), _StopAt(self.deadline)]
        return super().run_trial(trial, *args, **kwargs)


class _StopAt(tf.keras.callbacks.Callback):
    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.deadline = deadline

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.model.stop_training = True


class ChurnHyperModel(keras_tuner.HyperModel):
    """`build_model` with the values `hp` chooses from `hparams.SEARCH_SPACE` (each a `hp.Choice` whose default is
    `hparams.DEFAULTS`' value), trained with the batch size `hp` chooses from `hparams.batch_size_choices(train_rows)`
    (default `hparams.batch_size(train_rows)`)."""

    def __init__(self, numeric_keys: list[str], vocabulary_sizes: dict[str, int], train_rows: int) -> None:
        super().__init__()
        self.numeric_keys, self.vocabulary_sizes, self.train_rows = numeric_keys, vocabulary_sizes, train_rows

    def build(self, hp: keras_tuner.HyperParameters) -> tf.keras.Model:
        values = {name: hp.Choice(name, list(choices), default=hparams.DEFAULTS[name])
                  for name, choices in hparams.SEARCH_SPACE.items()}
        # Declared here, with the others, so the first trial (the defaults) already knows it.
        hp.Choice(hparams.BATCH_SIZE_KEY, list(hparams.batch_size_choices(self.train_rows)),
                  default=hparams.batch_size(self.train_rows))
        return build_model(self.numeric_keys, self.vocabulary_sizes, **values)

    def fit(self, hp: keras_tuner.HyperParameters, model: tf.keras.Model, *args: Any, **kwargs: Any) -> Any:
        return model.fit(*args, **{**kwargs, "batch_size": hp.get(hparams.BATCH_SIZE_KEY)})


def build_hypermodel(numeric_keys: list[str], vocabulary_sizes: dict[str, int], train_rows: int) -> ChurnHyperModel:
    """The Tuner's hypermodel for a training split of `train_rows` rows (`ChurnHyperModel`)."""
    return ChurnHyperModel(numeric_keys, vocabulary_sizes, train_rows)


# TFX Tuner will call this function.
def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """The search the TFX Tuner runs: `BudgetedRandomSearch` on the transformed train and validation splits.

    `fn_args.custom_config` keys: `label_key`, `tune_budget_seconds` (wall clock of the search, default
    `hparams.TUNE_BUDGET_SECONDS`), `tune_max_trials` (default `hparams.TUNE_MAX_TRIALS`), `max_epochs`
    (per trial, default `hparams.MAX_EPOCHS`), `seed`.
    """
    data = read_training_data(fn_args)
    config, seed, train, validation = data.config, data.seed, data.train, data.validation
    tuner = BudgetedRandomSearch(
        build_hypermodel(data.numeric_keys, data.vocabulary_sizes, int(train[1].shape[0])),
        objective=OBJECTIVE,
        max_trials=config.get("tune_max_trials", hparams.TUNE_MAX_TRIALS),
        budget_seconds=config.get("tune_budget_seconds", hparams.TUNE_BUDGET_SECONDS),
        seed=seed,
        directory=fn_args.working_dir,
        project_name="churn",
        overwrite=True,
    )
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train[0], "y": train[1],
        "validation_data": validation,
        "batch_size": hparams.batch_size(int(train[1].shape[0])),  # ChurnHyperModel.fit replaces it with the trial's
        "epochs": config.get("max_epochs", hparams.MAX_EPOCHS),
        "shuffle": True,
        "callbacks": [tf.keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.get("patience", hparams.EARLY_STOPPING_PATIENCE),
            restore_best_weights=True)],
        "verbose": 0,
    })
