"""serving/constants.py holds only the server's own defaults: what it shares lives in common/, and nothing in
serving/ knows the churn model (its outputs and id columns reach the server through flags)."""
from __future__ import annotations

import ast
import subprocess
import sys

from common.facts import PROJECT_ROOT
from modules import features
from serving import constants

SERVING = PROJECT_ROOT / "serving"


CHURN_PACKAGES = {"modules", "pipeline", "insights", "monitoring"}
STORE_MODULE = "monitoring.prediction_store"
"""The one churn-side module the server may import, and only inside the function that needs it: the
prediction store, when `--prediction_store_url` turns recording on (our documented extension, issue 17)."""


def imported_modules(path) -> list[tuple[str, bool]]:
    """(module, imported at module level) for every absolute import in `path`."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        found += [(name, node in tree.body) for name in names]
    return found


def test_the_server_imports_no_churn_pipeline_or_model_code() -> None:
    offenders = {}
    for path in SERVING.rglob("*.py"):
        found = sorted({name for name, at_top in imported_modules(path)
                        if name.split(".")[0] in CHURN_PACKAGES and (at_top or name != STORE_MODULE)})
        if found:
            offenders[str(path.relative_to(PROJECT_ROOT))] = found
    assert offenders == {}


def test_a_server_that_records_nothing_loads_no_churn_code() -> None:
    """Importing the whole server (flags, REST, gRPC, recording off) loads no churn package."""
    code = ("import sys, serving.main, serving.observability.prediction_log; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {CHURN_PACKAGES!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_the_server_code_names_no_churn_output_or_id_column() -> None:
    churn_names = {features.PROBABILITY_OUTPUT, features.CLASS_OUTPUT, *features.ID_KEYS}
    for path in SERVING.rglob("*.py"):
        strings = {node.value for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not churn_names & strings, f"{path.relative_to(PROJECT_ROOT)} names {churn_names & strings}"


def test_server_defaults_are_positive_limits() -> None:
    assert constants.DEFAULT_MAX_REQUEST_BYTES > 0 and constants.DEFAULT_MAX_INSTANCES > 0
    assert constants.DEFAULT_SETTLE_SECONDS >= 0
