"""Atomic, de-duplicated pushes into a TF Serving base path."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.pusher import model_digest, push_model, versions


def make_model(root: Path, content: bytes = b"graph") -> Path:
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(content)
    (root / "variables" / "variables.index").write_bytes(b"index" + content)
    return root


def test_first_push_creates_numeric_version_with_all_files(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    version_dir, is_new = push_model(model, tmp_path / "base", clock=lambda: 1700000000.7)
    assert is_new and version_dir == tmp_path / "base" / "1700000000"
    assert model_digest(version_dir) == model_digest(model)
    assert [p.name for p in (tmp_path / "base").iterdir()] == ["1700000000"]  # no staging folder left


def test_same_model_again_is_not_pushed_twice(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    first, _ = push_model(model, tmp_path / "base", clock=lambda: 100.0)
    again, is_new = push_model(model, tmp_path / "base", clock=lambda: 200.0)
    assert again == first and not is_new
    assert versions(tmp_path / "base") == [100]


def test_new_model_gets_a_version_above_the_newest_even_if_the_clock_is_behind(tmp_path: Path) -> None:
    push_model(make_model(tmp_path / "a", b"a"), tmp_path / "base", clock=lambda: 500.0)
    second, is_new = push_model(make_model(tmp_path / "b", b"b"), tmp_path / "base", clock=lambda: 400.0)
    assert is_new and second.name == "501"
    third, _ = push_model(make_model(tmp_path / "c", b"a"), tmp_path / "base", clock=lambda: 400.0)
    assert third.name == "502"  # an older model pushed again becomes the newest: a roll-back is possible


def test_copy_happens_outside_numeric_names_and_is_renamed_into_place(tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[str, str]] = []
    real_rename = os.rename

    def spy(src: str | Path, dst: str | Path) -> None:
        assert (Path(src) / "saved_model.pb").exists()  # complete before it becomes visible
        seen.append((Path(src).name, Path(dst).name))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    push_model(make_model(tmp_path / "m"), tmp_path / "base", clock=lambda: 42.0)
    ((src, dst),) = seen
    assert not src.isdigit() and src.startswith(".") and dst == "42"


def test_versions_ignores_non_numeric_entries(tmp_path: Path) -> None:
    for name in ("3", "12", ".incoming-5-1", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert versions(tmp_path) == [3, 12]
    assert versions(tmp_path / "missing") == []


def test_failed_copy_leaves_no_version_behind(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        push_model(tmp_path / "does-not-exist", tmp_path / "base", clock=lambda: 1.0)
    assert versions(tmp_path / "base") == []
