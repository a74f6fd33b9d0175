"""RecallGate: a model that flags no churner of the eval split at its own decision threshold is not blessed.

A model can rank churners well (AUC above the Evaluator's bound) and still decide `churn = 0` for
everyone: on imbalanced data (a 2 % churn rate) every probability may stay below the threshold.
Pushing it would make every `churn` output, and every retention action keyed to it, say "nobody".
The gate runs after the Evaluator (and ReferenceGate, when present): blessed iff the blessing it
reads is and the model's recall at its own threshold (modules/threshold.py; read from the
Evaluator's confusion matrices, pipeline/run_summary.at_threshold) is above 0. The reason, in
words, is kept on the blessing (`REASON_PROPERTY`) and shown in the run summary; the Pusher reads
this blessing, so a refused model is never pushed (exit 4).
"""

from typing import Any

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model, ModelBlessing, ModelEvaluation

from pipeline.baseline import write_gate_blessing

RECALL_GATE_ID = "RecallGate"
REASON_PROPERTY = "reason"
"""String custom property of RecallGate's blessing: why it refused the model ("" when it did not)."""


def recall_reason(overall: dict[str, Any]) -> str | None:
    """Why a model is refused for its recall, from its overall eval metrics (run_summary's `metrics.overall`,
    with `confusion_matrix` at the model's threshold); None when it flags a churner or the eval split has none."""
    matrix = overall.get("confusion_matrix")
    if not matrix or matrix["tp"] + matrix["fn"] == 0 or matrix["tp"] > 0:
        return None
    churners, flagged = matrix["tp"] + matrix["fn"], matrix["tp"] + matrix["fp"]
    return (f"recall 0 at the model's decision threshold {matrix['threshold']:g}: it flags none of the {churners:,} "
            f"churners of the eval split ({flagged:,} customers flagged in all), so its `churn` output would say "
            "nobody churns; let the threshold be chosen on the validation split (no --threshold), or give a lower "
            "--threshold")


def evaluate(evaluation_uri: str, model_dir: str) -> str | None:
    """`recall_reason` of the model in `model_dir` (its own threshold) from an Evaluator output folder."""
    from modules import threshold
    from pipeline.run_summary import eval_metrics

    return recall_reason(eval_metrics(evaluation_uri, {"candidate": threshold.read(model_dir)})["overall"])


@component
def RecallGate(  # noqa: N802 (TFX component name)
    model: InputArtifact[Model],
    evaluation: InputArtifact[ModelEvaluation],
    model_blessing: InputArtifact[ModelBlessing],
    blessing: OutputArtifact[ModelBlessing],
    code_fingerprint: Parameter[str] = "",
) -> None:
    """Blessed iff `model_blessing` is and the model flags at least one eval churner at its own threshold.

    `code_fingerprint` is unused here: as a parameter it is part of TFX's cache key (pipeline/fingerprint.py)."""
    from tfx.components.evaluator import constants
    from tfx.utils import path_utils

    reason = evaluate(evaluation.uri, path_utils.serving_model_path(model.uri))
    verdict = model_blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1 and reason is None
    write_gate_blessing(blessing, model, model_blessing, verdict)
    blessing.set_string_custom_property(REASON_PROPERTY, reason or "")
