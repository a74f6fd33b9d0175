"""Evaluator that does not compare a model with itself.

On a re-run where Trainer came from cache, the latest blessed model resolved as the baseline is
the candidate itself. Comparing them costs a second model load and inference pass and can only
show a zero difference, so the baseline is dropped: the value threshold (`--min-auc`) still decides,
and the blessing records `same_as_baseline = 1` so the run summary can say why.
"""
from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.evaluator.component import Evaluator
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

SAME_AS_BASELINE_PROPERTY = "same_as_baseline"


def is_same_model(input_dict: dict[str, list[types.Artifact]]) -> bool:
    """True when the resolved baseline is the very artifact being evaluated."""
    baseline = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
    model = input_dict.get(standard_component_specs.MODEL_KEY) or []
    return len(baseline) == 1 and len(model) == 1 and baseline[0].id == model[0].id


class SelfAwareEvaluatorExecutor(evaluator_executor.Executor):
    def Do(  # noqa: N802 (TFX executor API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        same = is_same_model(input_dict)
        if same:
            input_dict = {k: v for k, v in input_dict.items() if k != standard_component_specs.BASELINE_MODEL_KEY}
        super().Do(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        blessing.set_int_custom_property(SAME_AS_BASELINE_PROPERTY, int(same))


class SelfAwareEvaluator(Evaluator):
    """TFX's Evaluator (same inputs, outputs and properties) running SelfAwareEvaluatorExecutor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(SelfAwareEvaluatorExecutor)
