"""Simulated-months benchmark (`make bench-simulate`): wall time per month at 10k and 100k customers a month,
cold (a fresh output folder) and cached (the same months again on the same pipeline root, so TFX serves
unchanged steps from its cache). Prints figures; asserts nothing.

Each case runs `python -m simulation` (the same command as `make simulate`) and reads what it wrote:
simulation.json (per month, `seconds`: scoring the month through the model server plus the pipeline run
judged on it and the hot swap) and `logs/run_summary-month-<m>.json` (that run's own `total_seconds`). Per
case it prints one line per judged month, then a JSON line: the median and largest month, the sum of the
runs' `total_seconds`, the case's wall time, the peak RSS (the largest single process of the case: the
simulation, a pipeline run or the model server; Linux's wait4 `ru_maxrss`, a maximum, not a sum of the
processes running at once) and the 1-minute load average at the start and end of the case.

`--customers 10000,100000` (default) picks the sizes; `--months`, `--shift-at`, `--window`, `--max-epochs`
are passed through. `--output DIR` keeps each case's folder (`DIR/sim-<customers>`, with the simulation's
stdout/stderr in `bench-<case>.log`) instead of a temporary one. Results and the table go to
docs/performance.md ("Simulated year").
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.facts import PROJECT_ROOT
from simulation import simulate

CASES = ("cold", "cached")
"""cold: a fresh output folder; cached: the same folder again with --reuse-pipeline-root."""
CASE_LOG = "bench-{case}.log"
"""`<case output>/bench-<case>.log`: the simulation's stdout and stderr (written outside its own files, which
the cached case's `prepare_output` would empty)."""


_LAUNCHER = """
import os, signal, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as handle:
    handle.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""
"""Runs the command and writes its wait4 `ru_maxrss` to a file. Linux counts a process's resident set at
fork in the child's `ru_maxrss` (it survives exec), so the command is started from this small launcher
(`python -S`, a few MiB), not from the caller, whose own RSS (a test session with TensorFlow loaded: ~1 GiB)
would otherwise be the floor of every figure."""


def run_measured(command: Sequence[str], log: Path, cwd: Path | None = None) -> tuple[int, float, float]:
    """Run `command` with stdout and stderr to `log`; returns (exit code, wall seconds, peak RSS in MiB). The
    peak RSS is the largest resident set of the process or of any descendant it waited for (Linux `wait4`
    `ru_maxrss`, KiB there, measured from a small launcher: _LAUNCHER), not a sum over processes running at the
    same time. An exit by signal N gives -N, as subprocess does."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp, open(log, "wb") as handle:
        peak = Path(tmp) / "maxrss"
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(peak), *command], cwd=cwd,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait()
        except BaseException:  # interrupted: stop the launcher and the command it started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        kib = int(peak.read_text()) if peak.is_file() else 0
    return code, time.monotonic() - started, kib / 1024


def month_figures(output: Path) -> list[dict[str, Any]]:
    """The judged months of the simulation in `output`: [{"month", "seconds", "run_seconds"}], `seconds` the
    month's wall time (simulation.json), `run_seconds` its pipeline run's `total_seconds` (None when the
    run's summary is missing). Months no pipeline run judged (`status` None) are left out. Raises
    FileNotFoundError / KeyError / ValueError for a folder without a well-formed simulation.json."""
    months = json.loads((output / simulate.RESULT_FILE).read_text(encoding="utf-8"))["months"]
    figures = []
    for month in months:
        if month["status"] is None:
            continue
        summary_path = output / simulate.LOG_DIR / simulate.RUN_SUMMARY.format(month=month["month"])
        run_seconds = (json.loads(summary_path.read_text(encoding="utf-8")).get("total_seconds")
                       if summary_path.is_file() else None)
        figures.append({"month": int(month["month"]), "seconds": round(float(month["seconds"]), 1),
                        "run_seconds": None if run_seconds is None else round(float(run_seconds), 1)})
    return figures


def summarise(figures: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and largest month's wall time (s), which month was largest, and the sum of the runs'
    `total_seconds` (s; None if any is missing); None values when no month was judged."""
    seconds = [f["seconds"] for f in figures]
    runs = [f["run_seconds"] for f in figures]
    largest = max(figures, key=lambda f: f["seconds"]) if figures else None
    return {"runs": len(figures),
            "median_month_s": round(statistics.median(seconds), 1) if seconds else None,
            "max_month_s": None if largest is None else largest["seconds"],
            "max_month": None if largest is None else largest["month"],
            "run_total_s": round(sum(runs), 1) if runs and None not in runs else None}


def run_case(output: Path, customers: int, args: argparse.Namespace, case: str) -> dict[str, Any]:
    """One case (CASES) of `customers` a month into `output`; exits with the log's tail if the simulation
    fails."""
    command = [sys.executable, "-m", "simulation", "--output", str(output), "--customers", str(customers),
               "--months", str(args.months), "--shift-at", str(args.shift_at), "--window", str(args.window)]
    if args.max_epochs:
        command += ["--max-epochs", str(args.max_epochs)]
    if case == "cached":
        command.append("--reuse-pipeline-root")
    log = output.parent / f"{output.name}-{CASE_LOG.format(case=case)}"
    load_start = os.getloadavg()[0]
    started_at = time.strftime("%H:%M:%S", time.gmtime())
    code, total, peak_mib = run_measured(command, log, cwd=PROJECT_ROOT)
    load_end = os.getloadavg()[0]
    figures = month_figures(output) if (output / simulate.RESULT_FILE).is_file() else []
    for f in figures:  # also the months finished before a failure or an interrupt
        print(f"  {customers:,} {case} month {f['month']}: {f['seconds']} s (pipeline run {f['run_seconds']} s)",
              flush=True)
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip()[-2000:]
        sys.exit(f"simulation failed (exit {code}; log {log}; {len(figures)} months judged before): {tail}")
    return {"customers": customers, "case": case, "started_utc": started_at,
            "ended_utc": time.strftime("%H:%M:%S", time.gmtime()), "months": args.months,
            **summarise(figures), "total_s": round(total, 1), "peak_rss_mib": round(peak_mib),
            "load_start": round(load_start, 2), "load_end": round(load_end, 2),
            "per_month": figures}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", default="10000,100000", help="comma-separated customers per month")
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--shift-at", type=int, default=6)
    p.add_argument("--window", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--output", type=Path, default=None,
                   help="keep each case's folder here (DIR/sim-<customers>) instead of a temporary folder")
    args = p.parse_args()
    try:
        sizes = [int(c) for c in args.customers.split(",")]
    except ValueError:
        sys.exit(f"error: --customers must be comma-separated integers, got {args.customers!r}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        base = args.output.resolve() if args.output else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for customers in sizes:
            output = base / f"sim-{customers}"
            for case in CASES:
                result = run_case(output, customers, args, case)
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| customers / month | case | months (pipeline runs) | median s / month | largest month (s) "
          "| pipeline runs' total_seconds | total s | peak RSS MiB | load avg start / end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['customers']:,} | {r['case']} | {r['months']} ({r['runs']}) | {r['median_month_s']} | "
              f"{r['max_month_s']} (month {r['max_month']}) | {r['run_total_s']} | {r['total_s']} | "
              f"{r['peak_rss_mib']} | {r['load_start']} / {r['load_end']} |")


if __name__ == "__main__":
    main()
