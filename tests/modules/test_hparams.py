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
