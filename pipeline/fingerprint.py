"""Hashes of the code behind the pipeline's components, passed to them as parameters.

TFX's cache keys hash a component's parameters, not the code behind dotted `preprocessing_fn`/`run_fn`
paths or a function component's body, so every runner passes these hashes in (create_pipeline).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from common.facts import PROJECT_ROOT

MODULE_CODE = sorted((PROJECT_ROOT / "modules").glob("*.py"))
"""Code behind Transform's and the Trainer's dotted functions: its hash busts their cache."""
FACTORS_CODE = [*MODULE_CODE, *(PROJECT_ROOT / "pipeline" / n for n in ("factors.py", "factor_analysis.py"))]
"""ChurnFactors' own code, plus the modules the model comes from."""
REFERENCE_CODE = [*MODULE_CODE, *(PROJECT_ROOT / "pipeline" / n for n in ("reference.py", "reference_models.py"))]
"""ReferenceModels' own code, plus the modules the model and its transformed rows come from."""
RECALL_GATE_CODE = [*MODULE_CODE, *(PROJECT_ROOT / "pipeline" / n for n in ("recall_gate.py", "run_summary.py"))]
"""RecallGate's own code, the summary code it reads the Evaluator's metrics with, and modules/threshold.py."""


def code_fingerprint() -> str:
    """Hash of the code behind Transform's and the Trainer's dotted functions (create_pipeline)."""
    return _fingerprint(MODULE_CODE)


def factors_fingerprint() -> str:
    """Hash of ChurnFactors' code and the modules its model comes from (create_pipeline)."""
    return _fingerprint(FACTORS_CODE)


def reference_fingerprint() -> str:
    """Hash of ReferenceModels' code and the modules its model comes from (create_pipeline)."""
    return _fingerprint(REFERENCE_CODE)


def recall_gate_fingerprint() -> str:
    """Hash of RecallGate's code and what it reads the threshold and metrics with (create_pipeline)."""
    return _fingerprint(RECALL_GATE_CODE)


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
