"""The Tuner's search (keras-tuner 1.3.5 on tf-keras): defaults first, random after, stopped by its wall-clock
budget."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import tensorflow as tf

from modules import features, hparams
from modules.runtime import skip_autograph_for_tf_keras
from modules.tuner import OBJECTIVE, BudgetedRandomSearch, build_hypermodel

NUMERIC = ["Age", "Total_Spend"]
SIZES = {"Gender": 4}
TRAIN_ROWS = 400


def data(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    x = {features.transformed_name(k): rng.normal(size=(rows, 1)).astype(np.float32) for k in NUMERIC}
    x[features.transformed_name("Gender")] = rng.integers(0, 4, (rows, 1))
    score = 1.5 * x["Age_xf"][:, 0] - x["Total_Spend_xf"][:, 0] * (x["Gender_xf"][:, 0] == 2)
    return x, (rng.random(rows) < 1 / (1 + np.exp(-score))).astype(np.int64).reshape(-1, 1)


class EpochLog(tf.keras.callbacks.Callback):
    """Records every finished epoch in a class attribute: keras-tuner deep-copies the callbacks it is given."""

    epochs: ClassVar[list[int]] = []
    steps: ClassVar[list[int]] = []
    """Steps per epoch of each trial's fit: ceil(rows / the batch size it trained with)."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        EpochLog.steps.append(self.params["steps"])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        EpochLog.epochs.append(epoch)


def search(tmp_path: Path, max_trials: int, budget_seconds: float, epochs: int = 2) -> BudgetedRandomSearch:
    skip_autograph_for_tf_keras()
    tf.keras.utils.set_random_seed(1)
    tuner = BudgetedRandomSearch(build_hypermodel(NUMERIC, SIZES, TRAIN_ROWS), objective=OBJECTIVE,
                                 max_trials=max_trials, budget_seconds=budget_seconds, seed=1,
                                 directory=str(tmp_path), project_name="t")
    x, y = data(TRAIN_ROWS, seed=1)
    EpochLog.epochs = []
    EpochLog.steps = []
    tuner.search(x=x, y=y, validation_data=data(200, seed=2), batch_size=64, epochs=epochs, verbose=0,
                 callbacks=[EpochLog()])
    return tuner


@pytest.fixture(scope="module")
def four_trials(tmp_path_factory: pytest.TempPathFactory) -> tuple[BudgetedRandomSearch, list[int]]:
    """A search of 4 trials of 2 epochs each, well within its budget; the epochs it ran and each trial's steps per
    epoch."""
    tuner = search(tmp_path_factory.mktemp("tuner"), max_trials=4, budget_seconds=600)
    return tuner, list(EpochLog.epochs), list(EpochLog.steps)


def test_the_first_trial_is_the_defaults_and_later_ones_draw_from_the_search_space(four_trials) -> None:
    tuner, epochs, _ = four_trials
    trials = [tuner.oracle.trials[i] for i in tuner.oracle.start_order]
    assert len(trials) == 4 and all(t.status == "COMPLETED" for t in trials)
    assert len(epochs) == 4 * 2  # no budget reached: every trial runs its epochs
    assert trials[0].hyperparameters.values == {**hparams.DEFAULTS, "batch_size": hparams.batch_size(TRAIN_ROWS)}
    for trial in trials[1:]:
        assert all(trial.hyperparameters.values[k] in hparams.SEARCH_SPACE[k] for k in hparams.DEFAULTS)
        assert trial.hyperparameters.values["batch_size"] in hparams.batch_size_choices(TRAIN_ROWS)
    assert len({tuple(sorted(t.hyperparameters.values.items())) for t in trials}) > 1
    best = tuner.get_best_hyperparameters()[0].values
    scores = {t.trial_id: t.score for t in trials}
    assert best == tuner.oracle.trials[min(scores, key=scores.get)].hyperparameters.values


def test_each_trial_trains_with_the_batch_size_it_chose(four_trials) -> None:
    tuner, _, steps = four_trials
    trials = [tuner.oracle.trials[i] for i in tuner.oracle.start_order]
    assert steps == [-(-TRAIN_ROWS // t.hyperparameters.values["batch_size"]) for t in trials]
    assert len(set(steps)) > 1  # the seeded search did try another batch size


def test_the_best_trials_values_are_what_the_trainer_reads(four_trials) -> None:
    tuner, _, _ = four_trials
    config = tuner.get_best_hyperparameters()[0].get_config()  # what TFX's Tuner writes for the Trainer
    assert hparams.from_tuner(config, TRAIN_ROWS) == tuner.get_best_hyperparameters()[0].values


def test_no_trial_starts_after_the_budget_and_a_running_one_stops(tmp_path: Path) -> None:
    tuner = search(tmp_path, max_trials=10, budget_seconds=0.01, epochs=50)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 1 and trials[0].status == "COMPLETED"  # the first trial always runs
    assert EpochLog.epochs == [0]  # stopped at the end of its first epoch, not after 50


@pytest.mark.parametrize("kwargs,message", [({"budget_seconds": 0}, "budget_seconds must be > 0"),
                                            ({"max_trials": 0}, "max_trials must be >= 1")])
def test_bad_budget_is_a_clear_error(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"objective": OBJECTIVE, "max_trials": 2, "budget_seconds": 1.0, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        BudgetedRandomSearch(build_hypermodel(NUMERIC, SIZES, TRAIN_ROWS), directory=str(tmp_path), **arguments)


def test_the_summaries_tfx_prints_go_to_stderr_not_into_the_progress_lines(four_trials, capsys) -> None:
    tuner, _, _ = four_trials
    capsys.readouterr()
    tuner.search_space_summary()
    tuner.results_summary()
    out, err = capsys.readouterr()
    assert out == "" and "Search space summary" in err and "Results summary" in err
