"""`make lint` (ruff + mypy, settings in pyproject.toml) and its place in `make test`."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT

OPTIONAL_SIGNATURE = "from typing import Optional\n\n\ndef f(x: Optional[int]) -> Optional[int]:\n    return x\n"


def component_modules() -> list[str]:
    """Modules under pipeline/ that define a TFX `@component` (TFX 1.16 parses their signatures)."""
    return sorted(str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "pipeline").rglob("*.py")
                  if re.search(r"^@component\b", p.read_text(), re.M))


def ruff(filename: str, source: str) -> subprocess.CompletedProcess[str]:
    """`ruff check` of `source` as if it were `filename`, with the project's settings."""
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "--stdin-filename", filename, "-"],
                          input=source, capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)


def test_the_component_modules_are_found() -> None:
    assert "pipeline/gates.py" in component_modules()


@pytest.mark.parametrize("module", component_modules())
def test_component_modules_may_keep_typing_optional(module: str) -> None:
    result = ruff(module, OPTIONAL_SIGNATURE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_other_modules_use_x_or_none() -> None:
    result = ruff("pipeline/cli.py", OPTIONAL_SIGNATURE)
    assert result.returncode == 1
    assert "UP045" in result.stdout, result.stdout


def test_make_test_runs_ruff_and_mypy_before_pytest(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"  # newer than the locks: `make -n` prints no venv set-up
    stamp.touch()
    dry_run = subprocess.run(["make", "-n", "test", f"STAMP={stamp}", "PY=python", "PYTEST_ARGS="],
                             capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, check=True,
                             env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
                             ).stdout.splitlines()
    commands = [line for line in dry_run if line.startswith("python -m ")]
    assert commands == ["python -m ruff check .", "python -m mypy", "python -m pytest "], dry_run
