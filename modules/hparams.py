"""Model and training knobs, nothing else."""

HIDDEN_UNITS: tuple[int, ...] = (256, 64, 16)
LEARNING_RATE = 1e-3
BATCH_SIZE = 128
"""The batch size of training splits up to STEPS_PER_EPOCH x 128 rows (65,536): the bundled data's."""
STEPS_PER_EPOCH = 512
"""Larger splits get the power-of-two batch that keeps an epoch near this many steps (batch_size)."""
MAX_EPOCHS = 200
"""An upper bound only: early stopping on the validation split decides when training ends."""
EARLY_STOPPING_PATIENCE = 10
"""Epochs without a better validation loss before training stops and the best weights are restored."""
SEED = 42


def batch_size(train_rows: int) -> int:
    """Batch size for a training split of `train_rows` rows.

    With a fixed 128, a million-row table means 4,700 optimizer steps per epoch. Growing the batch
    keeps that bounded; early stopping still decides how many epochs.
    """
    batch = BATCH_SIZE
    while train_rows > batch * STEPS_PER_EPOCH:
        batch *= 2
    return batch
