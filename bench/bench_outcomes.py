"""Outcome-join benchmark (prints figures; not a test): `python -m monitoring.outcomes` on 1M predictions
and 1M labels must take at most 30 s (issue 17; docs/performance.md, "Outcomes").

    .venv/bin/python bench/bench_outcomes.py [--rows 1000000] [--store URL]

Builds a throw-away SQLite prediction store (unless `--store` names one) with `--rows` predictions: one
per customer by model version 1, scored over six business months with four segments, and a labels CSV
with one label per customer (as-of date 120 days after the score). Ingestion through the store's API is
timed and printed apart; the figure that counts is the `monitoring.outcomes` run (labels read and checked,
predictions read from the store, joined, reported per version, period and segment, HTML written), timed
in this process.
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

from modules.features import ID_KEYS, LABEL_KEY  # noqa: E402
from monitoring import outcomes  # noqa: E402
from monitoring.prediction_store import PredictionStore  # noqa: E402

BUDGET_SECONDS = 30.0


def synthetic(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    churn = rng.integers(0, 2, rows)
    probability = np.clip(0.3 + 0.35 * churn + rng.normal(0, 0.2, rows), 0, 1)
    scored_at = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 181 * 24 * 3600, rows), unit="s")
    ids = np.char.add("C", np.arange(rows).astype(str))
    predictions = pd.DataFrame({"customer_id": ids, "model_version": 1, "signature": "serving_default",
                                "scored_at": scored_at, "probability": probability, "source": "batch",
                                "segment": np.array(["lapsed", "loyal", "new", "support-heavy"])[rng.integers(0, 4, rows)]})
    labels = pd.DataFrame({ID_KEYS[0]: ids, LABEL_KEY: churn,
                           outcomes.AS_OF_COLUMN: (scored_at + pd.Timedelta(days=120)).strftime("%Y-%m-%d")})
    return predictions, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--store", default=None, help="SQLAlchemy URL of an empty store (default: temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{Path(tmp) / 'predictions.sqlite'}"
        predictions, labels = synthetic(args.rows)
        labels_path = Path(tmp) / "labels.csv"
        labels.to_csv(labels_path, index=False)
        start = time.perf_counter()
        with PredictionStore(url) as store:
            store.append_frame(predictions)
        ingest = time.perf_counter() - start
        print(f"ingestion: {args.rows:,} predictions through PredictionStore.append_frame in {ingest:.1f} s "
              f"({args.rows / ingest:,.0f} rows/s)")
        out = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            code = outcomes.main(["--labels", str(labels_path), "--store", url, "--html", str(Path(tmp) / "o.html")])
        took = time.perf_counter() - start
        if code != outcomes.EXIT_OK:
            print(f"error: monitoring.outcomes exited {code}", file=sys.stderr)
            return 1
        print(out.getvalue().splitlines()[-1].replace("; report written to", "; report in"))
        verdict = "within" if took <= BUDGET_SECONDS else "OVER"
        print(f"outcomes: {args.rows:,} predictions x {len(labels):,} labels joined and reported in {took:.1f} s "
              f"({verdict} the {BUDGET_SECONDS:.0f} s budget)")
    return 0 if took <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
