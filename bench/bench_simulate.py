"""Simulated-months benchmark (`make bench-simulate`): wall time per month at 10k and 100k customers a month,
cold (a fresh output folder) and cached (the same months again on the same pipeline root, so TFX serves
unchanged steps from its cache). Prints figures; asserts nothing.

Each case runs `python -m simulation` (the same command as `make simulate`) and reads its
simulation.json: per month, the seconds spent scoring the month through the model server plus the pipeline
run judged on it and the hot swap. `--customers 10000,100000` (default) picks the sizes; `--months`,
`--shift-at`, `--window`, `--max-epochs` are passed through. Results and the table go to docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulation import simulate


def run_case(output: Path, customers: int, args: argparse.Namespace, cached: bool) -> dict:
    command = [sys.executable, "-m", "simulation", "--output", str(output), "--customers", str(customers),
               "--months", str(args.months), "--shift-at", str(args.shift_at), "--window", str(args.window)]
    if args.max_epochs:
        command += ["--max-epochs", str(args.max_epochs)]
    if cached:
        command.append("--reuse-pipeline-root")
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=simulate.PROJECT_ROOT)
    total = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"simulation failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    months = json.loads((output / simulate.RESULT_FILE).read_text())["months"]
    judged = [m["seconds"] for m in months if m["status"] is not None]
    return {"customers": customers, "case": "cached" if cached else "cold", "total_s": round(total, 1),
            "months": len(months), "runs": len(judged),
            "median_month_s": round(statistics.median(judged), 1) if judged else None,
            "max_month_s": round(max(judged), 1) if judged else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", default="10000,100000", help="comma-separated customers per month")
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--shift-at", type=int, default=6)
    p.add_argument("--window", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=None)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        for customers in (int(c) for c in args.customers.split(",")):
            output = Path(tmp) / f"sim-{customers}"
            for cached in (False, True):
                result = run_case(output, customers, args, cached)
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| customers / month | case | months (pipeline runs) | median s / month | max s / month | total s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['customers']:,} | {r['case']} | {r['months']} ({r['runs']}) | {r['median_month_s']} | "
              f"{r['max_month_s']} | {r['total_s']} |")


if __name__ == "__main__":
    main()
