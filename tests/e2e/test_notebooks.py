"""The notebooks run headless, top to bottom, on small data; any cell error fails the test.

They execute in this interpreter's own kernel (jupyter_client starts the `python3` kernel spec with
`sys.executable`), parameterised through environment variables: 01 on a few thousand bundled rows, 02 on
the session's `bundled_style` pipeline run, so no extra pipeline runs. Executed copies are saved under
test-artifacts/ for people to look at. The committed notebooks themselves must carry no outputs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipeline.config import PROJECT_ROOT
from tests import browser

NOTEBOOKS = PROJECT_ROOT / "notebooks"
_MACHINE_PATH = re.compile(r"(/home/|/root/|/tmp/|/work/|/Users/|[A-Z]:\\)")


def execute(name: str) -> nbformat.NotebookNode:
    """Run every cell of notebooks/<name> in its folder, save the executed copy, and return it."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nbformat.write(notebook, browser.artifacts_dir() / name)
    return notebook


def text_outputs(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(output.get("text", "") + json.dumps(output.get("data", {}))
                     for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_no_machine_paths(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        assert not _MACHINE_PATH.search(cell.source), cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.e2e
def test_data_exploration_compares_bundled_and_kaggle_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_NOTEBOOK_ROWS", "2000")
    monkeypatch.setenv("CHURN_PERMUTATIONS", "20")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # gradient boosting's threads fight for 2 shared cores: 5x slower
    output = text_outputs(execute("01_data_exploration.ipynb"))
    assert "bundled: best cross-validated AUC" in output and "Kaggle: best cross-validated AUC" in output
    assert "image/png" in output  # the charts were drawn


@pytest.mark.e2e
def test_pipeline_walkthrough_reads_the_run_and_predicts_over_rest(bundled_style,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tmp, first, _ = bundled_style
    assert first.returncode == 0, first.stdout + first.stderr
    monkeypatch.setenv("CHURN_PIPELINE_OUTPUT", str(tmp / "out"))
    monkeypatch.setenv("CHURN_SERVING_DIR", str(tmp / "serving"))
    output = text_outputs(execute("02_pipeline_walkthrough.ipynb"))
    assert "No run in" not in output  # the session's run was read, not a new one made
    assert '"state": "AVAILABLE"' in output and "churn_probability" in output
