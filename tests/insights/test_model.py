"""`insights/model.py`: which SavedModel version scoring loads, and a clear error where there is none."""
from __future__ import annotations

from pathlib import Path

import pytest

from insights.model import ScoringError, resolve_version


def test_the_newest_numeric_version_is_used_unless_a_version_is_given(tmp_path: Path) -> None:
    for version in ("9", "10", "11-partial", ".incoming-12"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").touch()
    (tmp_path / "13").mkdir()  # no SavedModel inside: not a version
    assert resolve_version(tmp_path) == tmp_path / "10"
    assert resolve_version(tmp_path / "9") == tmp_path / "9"
    with pytest.raises(ScoringError, match="no model at .*run the pipeline first"):
        resolve_version(tmp_path / "13")
