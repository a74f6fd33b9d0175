"""local_pipeline.py's command line: help, usage errors, locking; no TFX run needed."""
from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.config import PROJECT_ROOT

SCRIPT = str(PROJECT_ROOT / "local_pipeline.py")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_documented_flag() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for flag in ("--data", "--output", "--serving-dir", "--label", "--positive-label", "--id-columns",
                 "--min-auc", "--verbose", "--schema", "--slice-columns", "--max-epochs"):
        assert flag in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-auc", "1.5"], "must be between 0 and 1"),
        (["--max-epochs", "0"], "must be at least 1"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_usage_exits_2_with_a_message(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_output_is_a_usage_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["--output", str(blocker / "out")]) == cli.EXIT_USAGE
    assert "cannot write to --output" in capsys.readouterr().err


def test_second_run_on_the_same_output_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    with (tmp_path / "out" / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli.main(["--output", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "another pipeline run is using" in capsys.readouterr().err


def test_missing_data_exits_2_before_any_tfx_work(tmp_path: Path) -> None:
    proc = run("--data", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2 and "error: data not found" in proc.stderr
    assert not (tmp_path / "out" / "tfx").exists()


def test_unexpected_failure_exits_1_with_a_message_and_a_summary(tmp_path: Path) -> None:
    from data.generate import generate

    generate(200).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metadata.sqlite").write_bytes(b"this is not a SQLite database" * 100)
    proc = run("--data", str(tmp_path / "c.csv"), "--output", str(tmp_path / "out"),
               "--serving-dir", str(tmp_path / "serving"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: " in proc.stderr and "--verbose" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] and summary["pushed_model_dir"] is None
    assert not (tmp_path / "serving").exists()
