"""hparams.batch_size: 128 for data of the bundled size, bounded steps per epoch for large tables."""
from __future__ import annotations

import pytest

from modules import hparams


@pytest.mark.parametrize("rows,batch", [(1, 128), (6_043, 128), (65_536, 128), (65_537, 256),
                                        (600_000, 2048), (6_000_000, 16384)])
def test_batch_size(rows: int, batch: int) -> None:
    assert hparams.batch_size(rows) == batch


@pytest.mark.parametrize("rows", [10, 70_000, 131_073, 600_000, 6_000_000])
def test_an_epoch_never_exceeds_the_step_budget_and_the_batch_is_not_larger_than_needed(rows: int) -> None:
    batch = hparams.batch_size(rows)
    assert -(-rows // batch) <= hparams.STEPS_PER_EPOCH
    assert batch == hparams.BATCH_SIZE or -(-rows // (batch // 2)) > hparams.STEPS_PER_EPOCH


def test_every_tunable_default_is_one_of_the_tuners_choices() -> None:
    assert hparams.SEARCH_SPACE.keys() == hparams.DEFAULTS.keys()
    for name, choices in hparams.SEARCH_SPACE.items():
        assert hparams.DEFAULTS[name] in choices, name
        assert len(set(choices)) == len(choices) > 1, name


def test_without_a_tuner_training_uses_the_defaults_and_the_row_based_batch_size() -> None:
    defaults = {**hparams.DEFAULTS, hparams.BATCH_SIZE_KEY: 128}
    assert hparams.from_tuner(None, 6_043) == defaults
    assert hparams.from_tuner({"space": [], "values": {}}, 6_043) == defaults
    assert hparams.from_tuner(None, 600_000)[hparams.BATCH_SIZE_KEY] == 2048


def test_the_tuners_values_override_the_defaults_they_name() -> None:
    config = {"space": [], "values": {"dropout": 0.3, "learning_rate": 0.003, "batch_size": 64}}
    chosen = hparams.from_tuner(config, 6_043)
    assert chosen == {**hparams.DEFAULTS, "dropout": 0.3, "learning_rate": 0.003, "batch_size": 64}
    assert isinstance(chosen["batch_size"], int)


def test_an_unknown_tuner_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown hyperparameters from the Tuner: units"):
        hparams.from_tuner({"values": {"units": 32}}, 6_043)


@pytest.mark.parametrize("rows,choices", [(6_043, (32, 64, 128, 256, 512)), (600_000, (512, 1024, 2048, 4096, 8192))])
def test_the_tuners_batch_sizes_surround_the_row_based_one(rows: int, choices: tuple[int, ...]) -> None:
    assert hparams.batch_size_choices(rows) == choices
    assert hparams.batch_size(rows) in choices
