"""Model and training knobs, nothing else."""

HIDDEN_UNITS: tuple[int, ...] = (256, 64, 16)
LEARNING_RATE = 1e-3
BATCH_SIZE = 128
MAX_EPOCHS = 200
"""An upper bound only: early stopping on the validation split decides when training ends."""
EARLY_STOPPING_PATIENCE = 10
"""Epochs without a better validation loss before training stops and the best weights are restored."""
SEED = 42
