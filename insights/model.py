"""The pushed SavedModel as batch scoring uses it: one version, three of its signatures, its segment profiles.

Probabilities come from `serving_default`, the signature REST clients call, so a scored file and the
model server agree; `explain` gives each feature's attribution and `segment` the customer segment,
whose profiles the Trainer wrote next to the model (`assets.extra/segments.json`), as it wrote the
decision threshold (`assets.extra/threshold.json`, modules/threshold.py) the risk bands start at.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from modules import features, segments
from modules import threshold as decision
from modules.signatures import EXPLAIN_SIGNATURE, SEGMENT_OUTPUT, SEGMENT_SIGNATURE

PREDICT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY


class ScoringError(Exception):
    """Scoring cannot go on; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class Scores:
    """Model outputs for a batch of customers, in input order."""

    probability: npt.NDArray[Any]
    attributions: npt.NDArray[Any]
    """[customers, len(ChurnModel.factors)], logit scale; positive pushes towards churn."""
    segment: npt.NDArray[Any]


def resolve_version(path: Path) -> Path:
    """A version folder given directly, or the newest numeric version under a TF Serving base path."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()),
                      key=lambda p: int(p.name)) if path.is_dir() else []
    if not versions:
        raise ScoringError(f"no model at {path}: expected a SavedModel folder or numeric version folders "
                           "holding one (run the pipeline first)")
    return versions[-1]


def id_columns(signatures: Any) -> list[str]:
    """The inputs of a model's `serving_with_ids` signature that `serving_default` does not take: the id
    column(s) of the run that trained it (the pipeline's `--id-columns`, e.g. `customerID`), sorted; [] when
    the model has no such signature (no id column, or exported before it existed).

    `signatures`: a loaded SavedModel's `.signatures` mapping."""
    if features.WITH_IDS_SIGNATURE not in signatures or PREDICT_SIGNATURE not in signatures:
        return []
    served = signatures[PREDICT_SIGNATURE].structured_input_signature[1]
    return sorted(set(signatures[features.WITH_IDS_SIGNATURE].structured_input_signature[1]) - set(served))


class ChurnModel:
    """Loaded signatures plus segment profiles of one model version."""

    def __init__(self, path: Path) -> None:
        self.path = resolve_version(path)
        self._loaded = tf.saved_model.load(str(self.path))  # the signatures need the object alive
        signatures = self._loaded.signatures
        missing = [s for s in (PREDICT_SIGNATURE, EXPLAIN_SIGNATURE, SEGMENT_SIGNATURE) if s not in signatures]
        if missing:
            raise ScoringError(f"model {self.path} has no {' or '.join(missing)} signature: it was exported by an "
                               "older version of the pipeline; run the pipeline again")
        self._predict = signatures[PREDICT_SIGNATURE]
        self._explain = signatures[EXPLAIN_SIGNATURE]
        self._segment = signatures[SEGMENT_SIGNATURE]
        self.id_columns: list[str] = id_columns(signatures)
        """The id column(s) the model was trained with (the pipeline's `--id-columns`); [] when unknown."""
        specs = self._predict.structured_input_signature[1]
        self.input_dtypes: dict[str, tf.DType] = {k: specs[k].dtype for k in sorted(specs)}
        explained = self._explain.structured_outputs
        self.factors: list[str] = [k for k in self.input_dtypes if features.attribution_name(k) in explained]
        self.profiles: list[dict[str, Any]] = _profiles(self.path)
        try:
            self.threshold: float = decision.read(self.path)
            """The decision threshold of the model's `churn` output (modules/threshold.py; risk bands start there)."""
        except ValueError as e:
            raise ScoringError(str(e)) from None

    def score(self, columns: dict[str, npt.NDArray[Any]]) -> Scores:
        """Run the three signatures on one batch (one array per model input)."""
        tensors = {k: tf.constant(columns[k], dtype=dtype) for k, dtype in self.input_dtypes.items()}
        probability = self._predict(**tensors)[features.PROBABILITY_OUTPUT].numpy()
        explained = self._explain(**tensors)
        attributions = np.stack([explained[features.attribution_name(k)].numpy() for k in self.factors], axis=1)
        segment = self._segment(**tensors)[SEGMENT_OUTPUT].numpy()
        return Scores(probability, attributions, segment)


def _profiles(version: Path) -> list[dict[str, Any]]:
    path = version / segments.ASSETS_EXTRA / segments.SEGMENTS_FILE
    try:
        profiles: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["segments"]
    except (OSError, ValueError, KeyError) as e:
        raise ScoringError(f"cannot read the segment profiles {path}: {e}; run the pipeline again") from None
    if [p["id"] for p in profiles] != list(range(len(profiles))):
        raise ScoringError(f"segment profiles {path} are not numbered 0..{len(profiles) - 1}")
    return profiles
