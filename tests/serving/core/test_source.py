"""The base-path source: failed polls report nothing, version folders settle before they are
reported, and a reported folder that changes is withdrawn for a fresh load."""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from serving.core.source import FileSystemVersionSource, parse_version


def test_failed_polls_report_nothing_and_log_once(tmp_path: Path, model_store: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    base = tmp_path / "m"
    shutil.copytree(model_store / "tf2_v1", base / "1")
    source = FileSystemVersionSource("m", base, settle_seconds=0)
    assert source.poll() == {1: base / "1"}
    base.rename(tmp_path / "away")  # briefly renamed away, as a careless sync tool does
    with caplog.at_level(logging.INFO, logger="serving.core.source"):
        assert [source.poll() for _ in range(3)] == [None, None, None]
        (tmp_path / "away").rename(base)
        assert source.poll() == {1: base / "1"}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"Could not find base path {base} for servable m; keeping the versions already "
                      "served and polling again"]
    assert any("readable again" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


def test_an_empty_base_path_still_reports_no_versions(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    shutil.copytree(model_store / "tf2_v1", base / "1")
    source = FileSystemVersionSource("m", base, settle_seconds=0)
    assert source.poll() == {1: base / "1"}
    shutil.rmtree(base / "1")
    assert source.poll() == {}  # versions removed on purpose are unloaded, as in TF Serving


def test_files_arriving_seconds_apart_are_not_reported_until_settled(tmp_path: Path, model_store: Path) -> None:
    settle = 1.0
    version = tmp_path / "m" / "2"
    version.mkdir(parents=True)
    source = FileSystemVersionSource("m", tmp_path / "m", settle_seconds=settle)
    shutil.copy(model_store / "tf2_v1" / "saved_model.pb", version)
    assert source.poll() == {}
    time.sleep(0.6 * settle)
    shutil.copytree(model_store / "tf2_v1" / "variables", version / "variables")  # the next file, later
    assert source.poll() == {}
    time.sleep(0.6 * settle)
    assert source.poll() == {}  # unchanged since the last poll, but not for `settle` seconds yet
    time.sleep(0.5 * settle)
    assert source.poll() == {2: version}


def test_a_folder_written_long_ago_is_reported_at_once(tmp_path: Path, model_store: Path) -> None:
    shutil.copytree(model_store / "tf2_v1", tmp_path / "staging" / "7")
    time.sleep(0.3)
    (tmp_path / "staging").rename(tmp_path / "m")  # written earlier, renamed into place
    assert FileSystemVersionSource("m", tmp_path / "m", settle_seconds=0.3).poll() == {7: tmp_path / "m" / "7"}


def test_recheck_withdraws_a_changed_folder_until_it_settles(tmp_path: Path, model_store: Path) -> None:
    version = tmp_path / "m" / "3"
    shutil.copytree(model_store / "tf2_v1", version)
    source = FileSystemVersionSource("m", tmp_path / "m", settle_seconds=0.5)
    time.sleep(0.5)
    assert source.poll() == {3: version}
    assert not source.recheck(3, version)
    (version / "saved_model.pb").write_bytes((model_store / "tf2_v2" / "saved_model.pb").read_bytes() + b"")
    os.utime(version / "saved_model.pb", ns=(1, 1))  # a new mtime, as a re-copy gives
    assert source.recheck(3, version)
    assert source.poll() == {}
    time.sleep(0.6)
    assert source.poll() == {3: version}


@pytest.mark.parametrize("name, version", [("1", 1), ("00000123", 123), ("abc", None), ("1a", None),
                                           ("99999999999999999999", None)])
def test_parse_version(name: str, version: object) -> None:
    assert parse_version(name) == version
