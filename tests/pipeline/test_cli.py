"""local_pipeline.py's command line: help, usage errors, locking; no TFX run needed."""
from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

import pytest

from common import exit_codes
from modules import hparams
from pipeline import cli
from pipeline.config import CURATED_SCHEMA
from tests.field_cases import BLANK_NUMBERS, DUPLICATE_HEADER, SEMICOLON, SIXTY_CUSTOMERS, SPACES_IN_NAMES
from tests.helpers import run_cli


def test_help_lists_every_documented_flag() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for flag in ("--data", "--output", "--serving-dir", "--label", "--positive-label", "--id-columns",
                 "--min-auc", "--verbose", "--schema", "--slice-columns", "--max-epochs", "--report-only",
                 "--require-beat-reference", "--threshold", "--tune", "--window", "--on-drift"):
        assert flag in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-auc", "1.5"], "must be between 0 and 1"),
        (["--max-epochs", "0"], "must be at least 1"),
        (["--threshold", "1"], "--threshold: must lie strictly between 0 and 1, got 1"),
        (["--threshold", "nan"], "--threshold: must lie strictly between 0 and 1, got nan"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--on-drift", "maybe"], "invalid choice"),
    ],
)
def test_bad_usage_exits_2_with_a_message(args: list[str], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == exit_codes.USAGE and message in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_output_is_a_usage_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["--output", str(blocker / "out")]) == exit_codes.USAGE
    assert "cannot write to --output" in capsys.readouterr().err


def test_second_run_on_the_same_output_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    with (tmp_path / "out" / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli.main(["--output", str(tmp_path / "out")]) == exit_codes.USAGE
    assert "another pipeline run is using" in capsys.readouterr().err


def test_missing_data_exits_2_before_any_tfx_work(tmp_path: Path) -> None:
    proc = run_cli("--data", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "out"))
    assert proc.returncode == exit_codes.USAGE and "error: data not found" in proc.stderr
    assert not (tmp_path / "out" / "tfx").exists()


def test_unexpected_failure_exits_1_with_a_message_and_a_summary(tmp_path: Path) -> None:
    from data.generate import generate

    generate(200).to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metadata.sqlite").write_bytes(b"this is not a SQLite database" * 100)
    proc = run_cli("--data", str(tmp_path / "c.csv"), "--output", str(tmp_path / "out"),
               "--serving-dir", str(tmp_path / "serving"))
    assert proc.returncode == exit_codes.FAILED, proc.stdout + proc.stderr
    assert "error: " in proc.stderr and "--verbose" in proc.stderr and "Traceback" not in proc.stderr
    # The file the message points to holds the failure's traceback.
    log = tmp_path / "out" / "pipeline.log"
    assert f"(library output: {log};" in proc.stderr
    assert "Traceback (most recent call last)" in log.read_text() and summary_error(tmp_path) in log.read_text()
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] and summary["pushed_model_dir"] is None
    assert not (tmp_path / "serving").exists()
    # The report is still written from the summary; the unreadable metadata is a warning, not a new exit code.
    assert f"Report: {tmp_path / 'out' / 'report.html'}" in proc.stdout
    assert "warning: report incomplete: artifacts: cannot read ML Metadata" in proc.stderr
    assert "failed (exit code 1)" in (tmp_path / "out" / "report.html").read_text()


def summary_error(tmp_path: Path) -> str:
    """The last line of the recorded error (`Type: message`), as the traceback's last line also has it."""
    return json.loads((tmp_path / "out" / "run_summary.json").read_text())["error"].splitlines()[-1]


def test_a_report_that_cannot_be_written_is_a_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    from pipeline import report

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    assert cli.write_report_or_warn({"status": "pushed"}, cli.cfg.PipelineConfig(output=tmp_path), sys.stderr) is False
    out, err = capsys.readouterr()
    assert "warning: report not written: OSError: disk full" in err and "Report:" not in out


def test_report_only_needs_an_existing_run(tmp_path: Path, capsys) -> None:
    assert cli.main(["--report-only", "--output", str(tmp_path / "nothing")]) == exit_codes.USAGE
    assert "no pipeline run in" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_report_only_rewrites_the_report_from_the_recorded_summary(tmp_path: Path, capsys) -> None:
    summary = {"status": "stopped_by_data_validation", "exit_code": 3, "anomalies": ["train: Age: out of range"],
               "total_seconds": 12.0, "component_seconds": {"StatisticsGen": 3.0}}
    (tmp_path / "run_summary.json").write_text(json.dumps(summary))
    assert cli.main(["--report-only", "--output", str(tmp_path)]) == 0
    assert f"Report: {tmp_path / 'report.html'}" in capsys.readouterr().out
    html = (tmp_path / "report.html").read_text()
    assert "stopped_by_data_validation (exit code 3)" in html and "StatisticsGen" in html


# Real-world exports (../shared/field-cases/): each stops before any TFX work with a message naming the fix.

@pytest.mark.parametrize(("case", "flags", "message"), [
    (DUPLICATE_HEADER, [], f"error: {DUPLICATE_HEADER}: the header repeats column names: 'Age' in columns 2, 3"),
    (SIXTY_CUSTOMERS, [], "6 churners and 54 non-churners ('Target_Churn'); each split"),
    (SEMICOLON, ["--delimiter", ","], "the delimiter is not ',': set --delimiter"),
    (BLANK_NUMBERS, ["--label", "Churn", "--positive-label", "Yes", "--schema", str(CURATED_SCHEMA)],
     f"--schema {CURATED_SCHEMA} describes none of the data's columns"),
    (SPACES_IN_NAMES, ["--label", "Churn"],
     f"label column 'Churn' not in the data ({SPACES_IN_NAMES}); its columns are: Customer ID"),
])
def test_field_cases_that_cannot_train_exit_2_before_tfx(tmp_path: Path, case: Path, flags: list[str],
                                                         message: str) -> None:
    proc = run_cli("--data", str(case), "--output", str(tmp_path / "out"), "--serving-dir", str(tmp_path / "s"), *flags)
    assert proc.returncode == exit_codes.USAGE, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "tfx").exists()


def test_the_data_validation_message_names_the_file_the_schema_and_the_fixes() -> None:
    config = cli.cfg.PipelineConfig(data=Path("/data/june.csv"))
    message = cli.validation_message(config, 3)
    assert message.startswith(f"/data/june.csv does not match {cli.cfg.CURATED_SCHEMA}: 3 anomalies listed above")
    assert "--schema PATH" in message and "--schema auto" in message
    assert "1 anomaly listed" in cli.validation_message(config, 1)
    where = cli.validation_message(config, 1, {"Gender": "line 7 of june.csv, column 'Gender': value 'Robot'"})
    assert "(split: column: problem); first values outside the schema: line 7 of june.csv, column 'Gender': " \
           "value 'Robot'; correct those values" in where


def test_require_beat_reference_is_a_flag_off_by_default() -> None:
    parser = cli.build_parser()
    assert parser.parse_args([]).require_beat_reference is False
    assert parser.parse_args(["--require-beat-reference"]).require_beat_reference is True


def test_tune_is_off_by_default_and_takes_an_optional_budget() -> None:
    parser = cli.build_parser()
    assert parser.parse_args([]).tune is None
    assert parser.parse_args(["--tune"]).tune == hparams.TUNE_BUDGET_SECONDS
    assert parser.parse_args(["--tune", "30"]).tune == 30.0


@pytest.mark.parametrize("budget", ["0", "-5", "abc", "inf", "nan"])
def test_a_bad_tune_budget_is_a_usage_error(budget: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--tune", budget])
    assert exit_info.value.code == 2
    assert "argument --tune:" in capsys.readouterr().err


def test_input_bytes_of_a_span_folder_count_every_span(tmp_path: Path) -> None:
    from data import spans as data_spans
    from pipeline.cli import input_bytes

    data_spans.write_spans(tmp_path / "spans", 2, shift_at=2, rows=100, seed=1)
    sizes = [p.stat().st_size for p in (tmp_path / "spans").glob("span-*/*.csv")]
    assert len(sizes) == 2 and input_bytes(tmp_path / "spans") == sum(sizes)
    assert input_bytes(tmp_path / "nowhere") == 0
