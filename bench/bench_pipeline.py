"""Pipeline benchmark: cold and cached wall time on the bundled data, eval AUC next to the Bayes AUC.

Prints figures; asserts nothing. Targets (2-core machine): cold <= 90 s, cached <= 20 s,
eval AUC >= Bayes AUC - 0.02, where the Bayes AUC is the AUC of the generator's true churn
probability on the very rows of the eval split.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.generate import roc_auc, true_churn_probability
from pipeline.config import BUNDLED_DATA, EVAL_SPLIT, PROJECT_ROOT

TARGETS = {"cold_seconds": 90.0, "cached_seconds": 20.0, "auc_gap": 0.02}


def run(output: Path, data: Path) -> tuple[float, dict]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "local_pipeline.py"), "--data", str(data), "--output", str(output),
         "--serving-dir", str(output / "serving")],
        capture_output=True, text=True,
    )
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 4):
        sys.exit(f"pipeline failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, json.loads((output / "run_summary.json").read_text())


def eval_split_frame(output: Path) -> pd.DataFrame:
    """The eval split's rows, read back from CsvExampleGen's tf.Examples."""
    (split_dir,) = (output / "tfx" / "CsvExampleGen" / "examples").glob(f"*/Split-{EVAL_SPLIT}")
    rows = []
    for record in tf.data.TFRecordDataset([str(p) for p in split_dir.glob("*.gz")], compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = getattr(feature, kind).value if kind else []
            row[key] = (values[0].decode() if isinstance(values[0], bytes) else values[0]) if values else None
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_DATA)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        output = Path(tmp)
        cold, summary = run(output, args.data)
        cached, cached_summary = run(output, args.data)
        frame = eval_split_frame(output)
    auc = summary["metrics"]["overall"]["auc"]
    bayes = roc_auc(frame["Target_Churn"].to_numpy(), true_churn_probability(frame))
    print(f"data: {args.data} ({summary['input']['rows']:,} rows; eval split {len(frame):,} rows)")
    print(f"{'figure':<28}{'measured':>12}{'target':>14}")
    print(f"{'cold run (s)':<28}{cold:>12.1f}{'<= 90':>14}")
    print(f"{'cached re-run (s)':<28}{cached:>12.1f}{'<= 20':>14}")
    auc_target = f">= {bayes - TARGETS['auc_gap']:.4f}"
    print(f"{'eval AUC':<28}{auc:>12.4f}{auc_target:>14}")
    print(f"{'Bayes AUC (same eval rows)':<28}{bayes:>12.4f}")
    print(f"{'gap to Bayes':<28}{bayes - auc:>12.4f}{'<= 0.02':>14}")
    print(f"training: {summary['training']['epochs_run']} epochs, best {summary['training']['best_epoch']}")
    print("seconds per component (cold | cached):")
    for name, seconds in summary["component_seconds"].items():
        print(f"  {name:<32}{seconds:>8.1f} | {cached_summary['component_seconds'].get(name, 0.0):>6.1f}")
    print(f"cached re-run: {', '.join(cached_summary['cached_components'])} from cache; "
          f"newly pushed: {cached_summary['newly_pushed']}")


if __name__ == "__main__":
    main()
