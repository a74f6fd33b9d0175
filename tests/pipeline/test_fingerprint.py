"""pipeline.fingerprint: a change to the code behind a component changes its hash, and only its."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import fingerprint


def test_each_hash_covers_the_modules_and_the_components_own_code() -> None:
    modules = {p.name for p in fingerprint.MODULE_CODE}
    assert {"preprocessing.py", "trainer.py", "model.py"} <= modules
    assert {p.name for p in fingerprint.FACTORS_CODE} == modules | {"factors.py", "factor_analysis.py"}
    assert {p.name for p in fingerprint.REFERENCE_CODE} == modules | {"reference.py", "reference_models.py"}
    assert all(p.is_file() for p in fingerprint.FACTORS_CODE + fingerprint.REFERENCE_CODE)


def test_an_edited_file_changes_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = [tmp_path / "a.py", tmp_path / "b.py"]
    for path in code:
        path.write_text("x = 1\n")
    monkeypatch.setattr(fingerprint, "MODULE_CODE", code)
    before = fingerprint.code_fingerprint()
    assert before == fingerprint.code_fingerprint() and len(before) == 16
    code[1].write_text("x = 2\n")
    assert fingerprint.code_fingerprint() != before
