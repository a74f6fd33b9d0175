"""`tools/suite_time.py`: a JUnit report's times summed per file, folder or test, restricted to the tests that
existed at a git revision (found by name wherever they moved), and a clear exit 2 for a bad report or revision."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from common.exit_codes import USAGE
from tools.suite_time import Case, main, names_defined_at, read_report, sum_groups

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.e2e.test_tune" name="test_tune_runs" time="70.5"/>
<testcase classname="tests.serving.core.test_manager" name="test_swap[a]" time="2.0"/>
<testcase classname="tests.serving.core.test_manager" name="test_swap[b]" time="3.0"/>
<testcase classname="tests.serving.core.test_manager.TestPolicy" name="test_latest" time="0.5"/>
<testcase classname="tests.test_docs" name="test_links" time="1.25"><skipped message="x"/></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(REPORT)
    return path


def test_cases_keep_their_file_and_function_without_parameters_or_class(report: Path) -> None:
    cases = read_report(report)
    assert [(c.file, c.function, c.seconds) for c in cases] == [
        ("tests/e2e/test_tune.py", "test_tune_runs", 70.5),
        ("tests/serving/core/test_manager.py", "test_swap", 2.0),
        ("tests/serving/core/test_manager.py", "test_swap", 3.0),
        ("tests/serving/core/test_manager.py", "test_latest", 0.5),
        ("tests/test_docs.py", "test_links", 1.25),
    ]
    assert cases[1].node_id == "tests/serving/core/test_manager.py::test_swap[a]"


def test_groups_are_summed_slowest_first() -> None:
    cases = [Case("tests/a/test_x.py", "test_f", "", 1.0), Case("tests/a/test_x.py", "test_f", "", 2.0),
             Case("tests/a/test_y.py", "test_g", "", 4.0), Case("tests/test_z.py", "test_h", "", 0.5)]
    assert sum_groups(cases, "file") == [("tests/a/test_y.py", 1, 4.0), ("tests/a/test_x.py", 2, 3.0),
                                         ("tests/test_z.py", 1, 0.5)]
    assert sum_groups(cases, "dir") == [("tests/a", 3, 7.0), ("tests", 1, 0.5)]
    assert sum_groups(cases, "test")[1] == ("tests/a/test_x.py::test_f", 2, 3.0)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_existing_at_keeps_the_tests_defined_then_wherever_they_moved(tmp_path: Path, report: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / "tests" / "serving").mkdir(parents=True)
    git(repo, "init", "-q")
    # Then: test_swap lived in tests/serving/test_units.py; test_tune_runs and test_latest did not exist.
    (repo / "tests" / "serving" / "test_units.py").write_text(
        "def helper():\n    pass\n\n\ndef test_swap(tmp_path):\n    pass\n\n\nasync def test_links():\n    pass\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "then")
    assert names_defined_at("HEAD", repo) == {"test_swap", "test_links"}

    assert main([str(report), "--existing-at", "HEAD", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["tests/serving/core/test_manager.py", "2", "5.0", "s"]
    assert out[1].split() == ["tests/test_docs.py", "1", "1.2", "s"]  # 1.25 printed to one decimal
    assert out[2].split()[:3] == ["total", "3", "6.2"]
    assert out[3] == "not at HEAD: 2 tests, 71.0 s"


def test_a_file_that_is_not_a_junit_report_or_an_unknown_revision_exits_2(
        tmp_path: Path, report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "other.xml").write_text("<html/>")
    assert main([str(tmp_path / "other.xml")]) == USAGE
    assert "not a JUnit XML report (root element <html>)" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.xml")]) == USAGE
    assert "not a readable JUnit XML report" in capsys.readouterr().err
    assert main([str(report), "--existing-at", "no-such-revision-anywhere"]) == USAGE
    assert "git does not know revision 'no-such-revision-anywhere'" in capsys.readouterr().err
