"""common.exit_codes: one table for every command line; the docs state the same numbers."""
from __future__ import annotations

import argparse
import re
import signal

import pytest

from common import exit_codes
from common.facts import PROJECT_ROOT

PIPELINE = {"OK": exit_codes.OK, "FAILED": exit_codes.FAILED, "USAGE": exit_codes.USAGE,
            "DATA_VALIDATION": exit_codes.DATA_VALIDATION, "NOT_BLESSED": exit_codes.NOT_BLESSED,
            "INTERRUPTED": exit_codes.INTERRUPTED}


def test_each_tool_tells_its_outcomes_apart() -> None:
    assert len(set(PIPELINE.values())) == len(PIPELINE)
    for tool_specific in (exit_codes.DRIFT, exit_codes.NO_MATCH):  # monitoring.drift, monitoring.outcomes
        assert tool_specific not in (exit_codes.OK, exit_codes.FAILED, exit_codes.USAGE)


def test_usage_is_argparse_code_and_interrupted_is_the_shell_convention() -> None:
    with pytest.raises(SystemExit) as exited:
        argparse.ArgumentParser(prog="x").parse_args(["--no-such-flag"])
    assert exited.value.code == exit_codes.USAGE
    assert exit_codes.INTERRUPTED == 128 + signal.SIGINT


def test_docs_pipeline_page_lists_the_pipeline_codes() -> None:
    text = (PROJECT_ROOT / "docs" / "pipeline.md").read_text().split("## Exit codes", 1)[1].split("##", 1)[0]
    stated = {int(code): meaning for code, meaning in re.findall(r"`(\d+)` ([a-z ]+)", text)}
    assert stated[exit_codes.OK].startswith("a blessed model is pushed")
    assert stated[exit_codes.USAGE].startswith("bad usage")
    assert stated[exit_codes.DATA_VALIDATION].startswith("stopped by data validation")
    assert stated[exit_codes.NOT_BLESSED].startswith("model not blessed")
    assert stated[exit_codes.FAILED].startswith("anything else")
    assert stated[exit_codes.INTERRUPTED].startswith("interrupted")
