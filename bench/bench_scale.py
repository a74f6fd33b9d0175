"""Scale benchmark: the whole pipeline at 10k, 100k and 1M generated rows, per Beam DirectRunner mode.

For every size and mode: a cold run of local_pipeline.py (fresh output folder) with its wall time,
the peak memory of its whole process tree (Beam's worker processes included), each component's
seconds and rows per second, and how time grows with rows (exponent k in time ~ rows^k between
consecutive sizes; k <= 1 is no worse than linear).
Prints figures; asserts nothing. Targets (2-core machine): 1M rows in <= 15 min with peak memory
<= 8 GiB, and k <= 1 from 100k to 1M.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.generate import write_csv
from pipeline.beam import DIRECT_MODES
from pipeline.config import PROJECT_ROOT

SIZES = (10_000, 100_000, 1_000_000)
TARGETS = {"seconds_1m": 15 * 60, "peak_gib_1m": 8.0, "growth_exponent": 1.0}
_SAMPLE_SECONDS = 0.5
_GIB = 1024 ** 3


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants (pages shared between them count twice)."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return total


def run(data: Path, output: Path, mode: str) -> dict:
    """One cold pipeline run; its summary plus wall time and peak tree memory."""
    command = [sys.executable, str(PROJECT_ROOT / "local_pipeline.py"), "--data", str(data), "--output", str(output),
               "--serving-dir", str(output / "serving"), "--beam-mode", mode]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(_SAMPLE_SECONDS)
    seconds = time.monotonic() - started
    log = proc.stdout.read() if proc.stdout else ""
    if proc.returncode not in (0, 4):
        sys.exit(f"pipeline failed (exit {proc.returncode}) on {data} with {mode}:\n{log}")
    summary = json.loads((output / "run_summary.json").read_text())
    return {"seconds": seconds, "peak_bytes": peak, "summary": summary}


def auc(summary: dict) -> float:
    return ((summary.get("metrics") or {}).get("overall") or {}).get("auc", float("nan"))


def growth(results: dict[tuple[int, str], dict], mode: str, sizes: list[int]) -> list[str]:
    """time ~ rows^k between consecutive sizes."""
    lines = []
    for small, large in zip(sizes, sizes[1:], strict=False):
        a, b = results.get((small, mode)), results.get((large, mode))
        if a and b:
            k = math.log(b["seconds"] / a["seconds"]) / math.log(large / small)
            lines.append(f"  {mode}: {small:,} -> {large:,} rows: time x{b['seconds'] / a['seconds']:.2f} "
                         f"for rows x{large // small}, k = {k:.2f}")
    return lines


def report(results: dict[tuple[int, str], dict], sizes: list[int], modes: list[str]) -> str:
    lines = [f"{'rows':>10} {'mode':<17} {'wall s':>8} {'peak GiB':>9} {'rows/s':>8}  status"]
    for (rows, mode), r in sorted(results.items()):
        lines.append(f"{rows:>10,} {mode:<17} {r['seconds']:>8.1f} {r['peak_bytes'] / _GIB:>9.2f} "
                     f"{rows / r['seconds']:>8,.0f}  {r['summary']['status']} "
                     f"(eval AUC {auc(r['summary']):.4f})")
    lines.append("\nseconds per component (rows/s):")
    components = list(next(iter(results.values()))["summary"]["component_seconds"])
    header = f"{'component':<31}" + "".join(f"{f'{rows // 1000}k {mode[:6]}':>20}" for rows, mode in sorted(results))
    lines.append(header)
    for component in components:
        cells = []
        for rows, mode in sorted(results):
            s = results[(rows, mode)]["summary"]["component_seconds"].get(component)
            cells.append(f"{'-' if s is None else f'{s:.1f} ({rows / max(s, 1e-9):,.0f})':>20}")
        lines.append(f"{component:<31}" + "".join(cells))
    lines.append("\ngrowth of wall time with rows:")
    for mode in modes:
        lines += growth(results, mode, sizes)
    lines.append(f"\ntargets: 1M rows <= {TARGETS['seconds_1m'] / 60:.0f} min, "
                 f"peak <= {TARGETS['peak_gib_1m']:.0f} GiB, "
                 f"k <= {TARGETS['growth_exponent']:.0f} from 100k to 1M")
    for mode in modes:
        big = results.get((1_000_000, mode))
        if big:
            lines.append(f"  {mode}: {big['seconds'] / 60:.1f} min, {big['peak_bytes'] / _GIB:.2f} GiB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--modes", nargs="+", choices=DIRECT_MODES, default=list(DIRECT_MODES))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the generated CSVs are kept between runs (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    sizes = sorted(args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        results: dict[tuple[int, str], dict] = {}
        for rows in sizes:
            data = data_dir / f"customers_{rows}.csv"
            if not data.exists():
                write_csv(data, rows)
            for mode in args.modes:
                result = run(data, Path(tmp) / f"run-{rows}-{mode}", mode)
                results[(rows, mode)] = result
                print(f"{rows:,} rows, {mode}: {result['seconds']:.1f} s, peak {result['peak_bytes'] / _GIB:.2f} GiB",
                      flush=True)
        print()
        print(report(results, sizes, args.modes))
        if args.json:
            args.json.write_text(json.dumps(
                [{"rows": rows, "mode": mode, "seconds": r["seconds"], "peak_bytes": r["peak_bytes"],
                  "component_seconds": r["summary"]["component_seconds"], "status": r["summary"]["status"],
                  "auc": auc(r["summary"])} for (rows, mode), r in sorted(results.items())], indent=2))


if __name__ == "__main__":
    main()
