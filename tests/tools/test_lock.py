"""`tools/lock.py`: names normalised as PEP 503 says, what an `.in` file names, the closure of one resolution
(markers and extras evaluated), and a clear exit 2 for a report that is not pip's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from common.exit_codes import USAGE
from tools.lock import ROOT, canonical, closure, direct, main

LINUX_310 = {"python_version": "3.10", "sys_platform": "linux", "platform_system": "Linux"}


def test_canonical_names_follow_pep_503() -> None:
    assert canonical("Jinja2") == "jinja2"
    assert canonical("ruamel.yaml_clib") == canonical("ruamel-yaml-clib") == "ruamel-yaml-clib"
    assert canonical("tensorflow__serving-API") == "tensorflow-serving-api"


def test_direct_skips_includes_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "requirements-dev.in"
    path.write_text("-r requirements.in\n# why\n\npytest==8.3.3  # tests\nuvicorn[standard]==0.30.0\n")
    assert [str(r) for r in direct(path)] == ["pytest==8.3.3", "uvicorn[standard]==0.30.0"]


def test_closure_follows_markers_and_requested_extras_only() -> None:
    metadata: dict[str, dict] = {
        "app": {"requires_dist": ["lib[fast]>=1", "winonly; sys_platform == 'win32'", "old; python_version < '3.8'"]},
        "lib": {"requires_dist": ["speedup; extra == 'fast'", "docs-tool; extra == 'docs'", "Common_Base"]},
        "speedup": {"requires_dist": None},
        "common-base": {},
    }
    assert closure([Requirement("App")], metadata, LINUX_310) == {"app", "lib", "speedup", "common-base"}
    assert closure([Requirement("lib")], metadata, LINUX_310) == {"lib", "common-base"}


def test_a_package_missing_from_the_resolution_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        closure([Requirement("absent")], {}, LINUX_310)


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"no": "install"})])
def test_a_report_that_is_not_pips_exits_2_with_a_message(tmp_path: Path, content: str | None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv: list[str] = []
    if content is not None:
        (tmp_path / "report.json").write_text(content)
        argv = [str(tmp_path / "report.json")]
    assert main(argv) == USAGE
    assert capsys.readouterr().err.startswith("error: usage: python tools/lock.py PIP_REPORT.json")


def test_a_report_without_a_named_package_exits_2_and_writes_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": "only-this", "version": "1"}}]}))
    locks = [(ROOT / name).read_text() for name in ("requirements.txt", "requirements-dev.txt")]
    assert main([str(report)]) == USAGE
    assert "is not in" in capsys.readouterr().err
    assert [(ROOT / name).read_text() for name in ("requirements.txt", "requirements-dev.txt")] == locks
