"""Sums a pytest JUnit XML report's test times per group: `python -m tools.suite_time REPORT.xml [...]`.

Write the report with `pytest --junitxml=REPORT.xml` (pytest's default `junit_duration_report = total`: a test's
time is its set-up, call and tear-down, so a module or session fixture is counted in the first test that uses it).
Groups (`--by`): `file` (default), `dir`, or `test` (a test function, its parametrized cases summed).

`--existing-at REV` keeps only the tests whose function name was defined under `tests/` at git revision REV
(tests moved to another file since then are still found by name): the time today of the tests that existed
then. Tests renamed since then are not found; the line `not at REV` counts what was left out.

Prints one row per group, slowest first (`--top N` rows at most), then the total in seconds and minutes.
Exits 2 with a message when a report is not a JUnit XML file or REV is not a revision of this repository.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.exit_codes import USAGE

ROOT = Path(__file__).resolve().parent.parent
TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(", re.MULTILINE)
"""A test function's definition, as pytest collects it (`test` prefix, pytest's default `python_functions`)."""


@dataclass(frozen=True)
class Case:
    """One `<testcase>`: its file (`tests/e2e/test_tune.py`), function name without parameters, id, seconds."""

    file: str
    function: str
    node_id: str
    seconds: float


class ReportError(Exception):
    """A report that cannot be read, or a revision git does not know."""


def read_report(path: Path) -> list[Case]:
    """Every `<testcase>` of a JUnit XML report (pytest's `--junitxml`), in report order.

    Raises ReportError when the file is missing or is not JUnit XML.
    """
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise ReportError(f"{path}: not a readable JUnit XML report ({err})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"{path}: not a JUnit XML report (root element <{root.tag}>)")
    cases = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        # pytest writes classname "tests.e2e.test_tune" (or "...test_x.TestClass") and name "test_f[param]".
        parts = classname.split(".")
        while parts and not parts[-1].startswith("test_"):
            parts.pop()  # a TestClass or a trailing non-module part
        file = "/".join(parts) + ".py" if parts else classname
        function = name.split("[", 1)[0]
        cases.append(Case(file, function, f"{file}::{name}", float(case.get("time", 0) or 0)))
    return cases


def names_defined_at(rev: str, repo: Path = ROOT) -> set[str]:
    """The test function names defined in `tests/**.py` at git revision `rev` of `repo`.

    Raises ReportError when git does not know `rev`.
    """
    listed = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", rev, "--", "tests"],
                            capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        raise ReportError(f"git does not know revision {rev!r}: {listed.stderr.strip()}")
    names: set[str] = set()
    for path in listed.stdout.splitlines():
        if path.endswith(".py"):
            text = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True,
                                  text=True, check=True).stdout
            names.update(TEST_DEF.findall(text))
    return names


def group_key(case: Case, by: str) -> str:
    """The group a case is summed in: its file, its folder, or its file and function."""
    if by == "dir":
        return case.file.rsplit("/", 1)[0]
    if by == "test":
        return f"{case.file}::{case.function}"
    return case.file


def sum_groups(cases: Iterable[Case], by: str) -> list[tuple[str, int, float]]:
    """(group, tests, seconds) per group, slowest first (ties by name)."""
    count: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for case in cases:
        key = group_key(case, by)
        count[key] += 1
        seconds[key] += case.seconds
    return sorted(((k, count[k], seconds[k]) for k in count), key=lambda row: (-row[2], row[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="JUnit XML files (pytest --junitxml)")
    parser.add_argument("--by", choices=("file", "dir", "test"), default="file", help="how to group (default: file)")
    parser.add_argument("--existing-at", metavar="REV",
                        help="only tests whose function name existed under tests/ at git revision REV")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the git repository REV is read from "
                        "(default: this checkout)")
    parser.add_argument("--top", type=int, default=0, metavar="N", help="print the N slowest groups (default: all)")
    args = parser.parse_args(argv)
    try:
        cases = [case for report in args.reports for case in read_report(report)]
        left_out: list[Case] = []
        if args.existing_at:
            names = names_defined_at(args.existing_at, args.repo)
            left_out = [c for c in cases if c.function not in names]
            cases = [c for c in cases if c.function in names]
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE
    rows = sum_groups(cases, args.by)
    width = max([len(r[0]) for r in rows] + [5])
    for key, count, seconds in rows[: args.top or None]:
        print(f"{key:<{width}}  {count:>5}  {seconds:>9.1f} s")
    total = sum(c.seconds for c in cases)
    print(f"{'total':<{width}}  {len(cases):>5}  {total:>9.1f} s  ({total / 60:.1f} min)")
    if args.existing_at:
        print(f"not at {args.existing_at}: {len(left_out)} tests, {sum(c.seconds for c in left_out):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
