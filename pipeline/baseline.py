"""The baseline a new model is judged against: the latest blessed model *other than* the candidate.

TFX's LatestBlessedModelStrategy returns the candidate itself on a re-run whose Trainer came from
cache (the candidate was blessed last time). Comparing a model with itself shows nothing and, because
the Evaluator's inputs then differ from the first run's (a baseline where there was none), it made
every cached re-run evaluate again (about half of a cached re-run: docs/performance.md). Leaving the candidate out keeps
the Evaluator's inputs, and so its cache entry, unchanged when nothing changed.

A blessed model that reads other inputs than the candidate (another CSV in the same `--output`: other feature
columns, types or label) is not a baseline either: the Evaluator feeds the candidate's eval examples to the
baseline's `transform_features`, which fails on columns it has never seen (the run died with TFMA's
"Fail to call signature func" after minutes of work). The resolver skips it and takes the newest blessed model
that reads the same inputs, if any (`model_inputs`).
"""
from __future__ import annotations

import os

import ml_metadata as mlmd
from absl import logging
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import signature_constants
from tfx import types
from tfx.components.evaluator import constants as eval_constants
from tfx.dsl.components.common import resolver
from tfx.dsl.io import fileio
from tfx.utils import path_utils

from modules.features import TRANSFORM_FEATURES_SIGNATURE

SERVING_SIGNATURE = signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY

MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"
CANDIDATE_KEY = "candidate"
GATE_PROPERTY = "reference_gate"
"""Custom property (1) of a ModelBlessing written by ReferenceGate (`--require-beat-reference`) or RecallGate:
its `blessed` 0 overrides the Evaluator's 1, so a model the Pusher refused never becomes the baseline."""


def write_gate_blessing(blessing: types.Artifact, model: types.Artifact, model_blessing: types.Artifact,
                        verdict: bool) -> None:
    """Write a gate's ModelBlessing as the Evaluator writes its own, so the Pusher and the resolver read it.

    Copies `model_blessing`'s current/baseline model URIs, sets the current model id, `blessed` (0/1) and
    GATE_PROPERTY 1, and creates the Evaluator's marker file (BLESSED or NOT_BLESSED) in `blessing.uri`.
    """
    for key in (eval_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                eval_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY):
        if model_blessing.has_custom_property(key):
            blessing.set_string_custom_property(key, model_blessing.get_string_custom_property(key))
    blessing.set_int_custom_property(eval_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
    blessing.set_int_custom_property(eval_constants.ARTIFACT_PROPERTY_BLESSED_KEY, int(verdict))
    blessing.set_int_custom_property(GATE_PROPERTY, 1)
    with fileio.open(os.path.join(blessing.uri, "BLESSED" if verdict else "NOT_BLESSED"), "w") as marker:
        marker.write("")  # the Evaluator's marker file; gfile creates a file only on a write


def model_inputs(model: types.Artifact) -> frozenset[str] | None:
    """What a Trainer's model reads, from its `saved_model.pb` (parsed, not loaded: milliseconds).

    Returns `in:<name>:<dtype enum>` per input of `serving_default` (the raw features) and `xf:<name>` per
    output of `transform_features` (the transformed features and label); None when the model has no readable
    SavedModel or lacks either signature (then nothing is known and nothing is excluded).
    """
    path = os.path.join(path_utils.serving_model_path(model.uri), "saved_model.pb")
    if not fileio.exists(path):
        return None
    saved = saved_model_pb2.SavedModel()
    try:
        with fileio.open(path, "rb") as file:
            saved.ParseFromString(file.read())
    except DecodeError:
        return None
    if not saved.meta_graphs:
        return None
    signatures = saved.meta_graphs[0].signature_def
    if SERVING_SIGNATURE not in signatures or TRANSFORM_FEATURES_SIGNATURE not in signatures:
        return None
    raw = {f"in:{name}:{info.dtype}" for name, info in signatures[SERVING_SIGNATURE].inputs.items()}
    return frozenset(raw | {f"xf:{name}" for name in signatures[TRANSFORM_FEATURES_SIGNATURE].outputs})


def latest_blessed_other_model(models: list[types.Artifact], blessings: list[types.Artifact],
                               candidates: list[types.Artifact]) -> dict[str, list[types.Artifact]]:
    """The newest blessed model not among `candidates` that reads the candidate's inputs, with its blessing
    (empty lists if none).

    A model ReferenceGate refused (a blessing with GATE_PROPERTY 1 and `blessed` 0) is not blessed,
    whatever the Evaluator said. A model whose `model_inputs` differ from the candidate's (both known) is
    skipped: the Evaluator could not score it on the candidate's examples.
    """
    excluded = {c.id for c in candidates} | {
        b.get_int_custom_property(eval_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY) for b in blessings
        if b.get_int_custom_property(GATE_PROPERTY) == 1
        and b.get_int_custom_property(eval_constants.ARTIFACT_PROPERTY_BLESSED_KEY) != 1}
    blessing_of = {
        b.get_int_custom_property(eval_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY): b
        for b in blessings if b.get_int_custom_property(eval_constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
    }
    wanted = model_inputs(candidates[0]) if candidates else None
    for model in sorted(models, key=lambda a: a.id, reverse=True):
        if model.id in blessing_of and model.id not in excluded:
            found = model_inputs(model) if wanted is not None else None
            if wanted is not None and found is not None and found != wanted:
                logging.info("baseline: blessed model %s reads other inputs than the candidate (%s); skipped",
                             model.id, ", ".join(sorted(found ^ wanted)))
                continue
            return {MODEL_KEY: [model], BLESSING_KEY: [blessing_of[model.id]]}
    return {MODEL_KEY: [], BLESSING_KEY: []}


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """Resolver strategy over `model`, `model_blessing` and `candidate` channels; see module docstring."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: dict[str, list[types.Artifact]]) -> dict[str, list[types.Artifact]] | None:
        candidates = input_dict.get(CANDIDATE_KEY, [])
        result = latest_blessed_other_model(input_dict.get(MODEL_KEY, []), input_dict.get(BLESSING_KEY, []),
                                            candidates)
        result[CANDIDATE_KEY] = candidates
        return result
