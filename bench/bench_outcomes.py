"""Outcome-join benchmark (prints figures; not a test): `python -m monitoring.outcomes` on 1M predictions
and 1M labels must take at most 30 s (issue 17; docs/performance.md, "Outcomes").

    .venv/bin/python bench/bench_outcomes.py [--rows 1000000] [--workdir DIR]

Builds a SQLite prediction store (temporary, or kept in `--workdir` for the next run) with `--rows` predictions: one
per customer by model version 1, scored over six business months with four segments, and a labels CSV
with one label per customer (as-of date 120 days after the score). Ingestion through the store's API is
timed and printed apart; the figure that counts is the `monitoring.outcomes` run (labels read and checked,
predictions read from the store, joined, reported per version, period and segment, HTML written), timed
in this process (wall and CPU time: on a shared machine they differ), then once more step by step.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from common import exit_codes  # noqa: E402
from modules.features import ID_KEYS, LABEL_KEY  # noqa: E402
from monitoring import outcomes  # noqa: E402
from monitoring.prediction_store import PredictionStore  # noqa: E402

BUDGET_SECONDS = 30.0
SEGMENTS = np.array(["lapsed", "loyal", "new", "support-heavy"])


def synthetic(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    churn = rng.integers(0, 2, rows)
    probability = np.clip(0.3 + 0.35 * churn + rng.normal(0, 0.2, rows), 0, 1)
    scored_at = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 181 * 24 * 3600, rows), unit="s")
    ids = np.char.add("C", np.arange(rows).astype(str))
    predictions = pd.DataFrame({"customer_id": ids, "model_version": 1, "signature": "serving_default",
                                "scored_at": scored_at, "probability": probability, "source": "batch",
                                "segment": SEGMENTS[rng.integers(0, len(SEGMENTS), rows)]})
    labels = pd.DataFrame({ID_KEYS[0]: ids, LABEL_KEY: churn,
                           outcomes.AS_OF_COLUMN: (scored_at + pd.Timedelta(days=120)).strftime("%Y-%m-%d")})
    return predictions, labels


def stages(labels_path: Path, url: str, html: Path) -> dict:
    """The steps of `monitoring.outcomes.main`, timed one by one: wall seconds per step."""
    times = {}
    start = time.perf_counter()
    with PredictionStore(url, create=False) as store:
        labels = outcomes.read_labels(str(labels_path), store)
        times["read and check labels"] = time.perf_counter() - start
        start = time.perf_counter()
        predictions = store.read(before=labels[outcomes.AS_OF_COLUMN].max()
                                 - pd.Timedelta(days=outcomes.DEFAULT_WINDOW_DAYS), columns=outcomes.JOIN_COLUMNS)
        times["read predictions from the store"] = time.perf_counter() - start
    start = time.perf_counter()
    joined = outcomes.join(labels, predictions)
    times["join (merge_asof per version)"] = time.perf_counter() - start
    start = time.perf_counter()
    rows = outcomes.report(joined)
    times["quality per version, period, segment"] = time.perf_counter() - start
    start = time.perf_counter()
    html.write_text(outcomes.render_html(rows, str(labels_path), outcomes.DEFAULT_WINDOW_DAYS))
    times["HTML"] = time.perf_counter() - start
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the store and labels here and reuse them on the next run (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{work / f'predictions_{args.rows}.sqlite'}"
        labels_path = work / f"labels_{args.rows}.csv"
        if not labels_path.exists():
            predictions, labels = synthetic(args.rows)
            start = time.perf_counter()
            with PredictionStore(url) as store:
                store.append_frame(predictions)
            ingest = time.perf_counter() - start
            labels.to_csv(labels_path, index=False)
            print(f"ingestion: {args.rows:,} predictions through PredictionStore.append_frame in {ingest:.1f} s "
                  f"({args.rows / ingest:,.0f} rows/s)")
        out = io.StringIO()
        start, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(out):
            code = outcomes.main(["--labels", str(labels_path), "--store", url, "--html", str(work / "o.html")])
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        if code != exit_codes.OK:
            print(f"error: monitoring.outcomes exited {code}", file=sys.stderr)
            return 1
        print(out.getvalue().splitlines()[-1].split(";")[0])
        verdict = "within" if took <= BUDGET_SECONDS else "OVER"
        print(f"outcomes: {args.rows:,} predictions x {args.rows:,} labels joined and reported in {took:.1f} s wall, "
              f"{cpu:.1f} s CPU ({verdict} the {BUDGET_SECONDS:.0f} s budget)")
        print("where the time goes (a second run, step by step):")
        for step, seconds in stages(labels_path, url, work / "o.html").items():
            print(f"  {step:40s} {seconds:6.1f} s")
    return 0 if took <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
