"""Quality benchmark: the Dense net next to the reference models on several churn tables, same rows.

For each table one cold pipeline run (local_pipeline.py, defaults) in a fresh folder; the figures
come from its run_summary.json: the net's eval AUC, Brier score and ECE (pipeline/reference.py),
each reference model's AUC, Brier and ECE on the very same eval rows with the paired AUC difference
(net minus reference) and its DeLong 95 % interval, the run's wall time and the ReferenceModels
component's time. The Bayes AUC is that of the generator's true probability on the same eval rows.
Tables: the bundled data and the generator's variants (data/README.md, "Variants").
Prints figures; asserts nothing. Goals (issue 15): no reference model better beyond the interval
("worse" never appears), ECE <= 0.03 where reported.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_pipeline import eval_split_frame
from data import generate as gen
from pipeline.config import BUNDLED_DATA, INFER_SCHEMA, PROJECT_ROOT
from pipeline.reference_models import WORSE

BUNDLED = "bundled"
TABLES = (BUNDLED, gen.INTERACTIONS, gen.RARE_CHURN, gen.MANY_CATEGORICALS)
ECE_GOAL = 0.03


def table_csv(name: str, rows: int, folder: Path) -> tuple[Path, str]:
    """(CSV path, generator variant) of a benchmark table; the bundled one is data/customers.csv itself."""
    if name == BUNDLED:
        return BUNDLED_DATA, gen.STANDARD
    path = folder / f"{name}.csv"
    gen.write_csv(path, rows, variant=name)
    return path, name


def run(data: Path, output: Path, variant: str) -> tuple[float, dict]:
    import json

    extra = ["--schema", INFER_SCHEMA] if variant == gen.MANY_CATEGORICALS else []
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(PROJECT_ROOT / "local_pipeline.py"), "--data", str(data),
                           "--output", str(output), "--serving-dir", str(output / "serving"), *extra],
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 4):
        sys.exit(f"pipeline failed on {data} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, json.loads((output / "run_summary.json").read_text())


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """`--runs`, `--tables`, `--rows`: the flags of the benches that train on one pipeline run per table."""
    parser.add_argument("--runs", type=Path, required=True,
                        help="folder of one pipeline run per table (made if absent)")
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, from {', '.join(TABLES)}")
    parser.add_argument("--rows", type=int, default=gen.DEFAULT_ROWS, help="rows of each generated table")


def table_runs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[str, Path]]:
    """(table, its pipeline output) for each of `--tables`, running the pipeline where `--runs` has no run yet.
    An unknown table is a usage error (exit 2)."""
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown table {unknown[0]!r}; choose from {', '.join(TABLES)}")
    runs = []
    for name in tables:
        output = args.runs / name
        if not (output / "run_summary.json").exists():
            args.runs.mkdir(parents=True, exist_ok=True)
            data_csv, variant_name = table_csv(name, args.rows, args.runs)
            run(data_csv, output, variant_name)
        runs.append((name, output))
    return runs


def _f(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, from {', '.join(TABLES)}")
    parser.add_argument("--rows", type=int, default=gen.DEFAULT_ROWS, help="rows of each generated table")
    args = parser.parse_args()
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown table {unknown[0]!r}; choose from {', '.join(TABLES)}")
    lines = []
    header = (f"{'table':<18}{'model':<22}{'AUC':>8}{'net - model [95% CI]':>30}{'Brier':>8}{'ECE':>8}"
              f"{'seconds':>9}{'Bayes AUC':>11}")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for name in tables:
            data, variant = table_csv(name, args.rows, Path(tmp))
            output = Path(tmp) / name
            seconds, summary = run(data, output, variant)
            frame = eval_split_frame(output)
            bayes = gen.roc_auc(frame["Target_Churn"].astype(int).to_numpy(),
                                gen.true_churn_probability(frame, variant))
            reference, overall = summary["reference_models"], summary["calibration"]["overall"]
            churn = summary["metrics"]["overall"]["mean_label"]
            label = f"{name} ({summary['input']['rows']:,} rows, churn {churn:.1%}, eval {reference['rows']:,})"
            lines.append(label)
            lines.append(f"{'':<18}{'Dense net':<22}{_f(reference['model_auc']):>8}{'':>30}{_f(overall['brier']):>8}"
                         f"{_f(overall['ece']):>8}{seconds:>9.1f}{bayes:>11.4f}")
            reference_seconds = summary["component_seconds"].get("ReferenceModels")
            for row in reference["references"]:
                lo, hi = row["ci95"]
                verdict = " WORSE" if row["verdict"] == WORSE else ""
                interval = f"{row['auc_difference']:+.4f} [{lo:+.4f}, {hi:+.4f}]{verdict}"
                lines.append(f"{'':<18}{row['name']:<22}{_f(row['auc']):>8}{interval:>30}{_f(row['brier']):>8}"
                             f"{_f(row.get('ece')):>8}{'':>9}")
            met = overall["ece"] is None or overall["ece"] <= ECE_GOAL
            lines.append(f"{'':<18}(ReferenceModels component: {_f(reference_seconds, '.1f')} s; "
                         f"ECE goal <= {ECE_GOAL}: {'met' if met else 'MISSED'}"
                         f"{'' if overall['ece'] is not None else ' (not reported: ' + overall['ece_reason'] + ')'})")
            print(f"done: {name} in {seconds:.0f} s", file=sys.stderr, flush=True)
    print(header)
    print("-" * len(header))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
