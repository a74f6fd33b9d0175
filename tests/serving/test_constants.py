"""serving/constants.py holds only the server's own defaults: what it shares lives in common/, and nothing in
serving/ knows the churn model (its outputs and id columns reach the server through flags)."""
from __future__ import annotations

import ast

from common.facts import PROJECT_ROOT
from modules import features
from serving import constants

SERVING = PROJECT_ROOT / "serving"


def imported_packages(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_server_imports_no_churn_pipeline_or_model_code() -> None:
    offenders = {str(p.relative_to(PROJECT_ROOT)): sorted(imported_packages(p) & {"modules", "pipeline", "insights",
                                                                                  "monitoring"})
                 for p in SERVING.rglob("*.py")}
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_server_code_names_no_churn_output_or_id_column() -> None:
    churn_names = {features.PROBABILITY_OUTPUT, features.CLASS_OUTPUT, *features.ID_KEYS}
    for path in SERVING.rglob("*.py"):
        strings = {node.value for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not churn_names & strings, f"{path.relative_to(PROJECT_ROOT)} names {churn_names & strings}"


def test_server_defaults_are_positive_limits() -> None:
    assert constants.DEFAULT_MAX_REQUEST_BYTES > 0 and constants.DEFAULT_MAX_INSTANCES > 0
    assert constants.DEFAULT_SETTLE_SECONDS >= 0
