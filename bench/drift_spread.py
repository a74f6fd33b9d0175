"""How far apart are months with no drift? The spread behind pipeline/drift_gate.py's thresholds.

    python -m bench.drift_spread [--months 6] [--rows 10000] [--seeds 3]

Generates `--months` stationary monthly spans (data/spans.py, shift after the last month) for each of
`--seeds` seeds, computes the drift gate's distance for every consecutive pair of months and prints, per
measure, the largest distance with its feature, and the shared thresholds. Also measures month K
against month K-1 with the documented shift (data/README.md), to show the gate sees it.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from itertools import pairwise

from data import spans
from pipeline import drift_gate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drift_spread", description=__doc__.split("\n")[0])
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = drift_gate.gate_schema()
    largest: dict[str, tuple[float, str]] = {}
    pairs = 0
    shifted: list[drift_gate.Verdict] = []
    for seed in range(1, args.seeds + 1):
        months = spans.simulate(args.months + 1, shift_at=args.months, rows=args.rows, seed=seed)
        statistics = [drift_gate.statistics_of(m.frame) for m in months]
        for previous, current in pairwise(statistics[:args.months]):
            pairs += 1
            for d in drift_gate.compare(current, previous, schema).distances:
                if d.value > largest.get(d.measure, (-1.0, ""))[0]:
                    largest[d.measure] = (d.value, d.feature)
        shifted.append(drift_gate.compare(statistics[-1], statistics[-2], schema))
    print(f"{pairs} consecutive pairs of stationary months, {args.rows} customers each:")
    for measure, (value, feature) in sorted(largest.items()):
        threshold = (drift_gate.CATEGORICAL_THRESHOLD if measure == drift_gate.L_INFINITY
                     else drift_gate.NUMERIC_THRESHOLD)
        print(f"  largest {measure}: {value:.4f} ({feature}); threshold {threshold}")
    for seed, verdict in enumerate(shifted, start=1):
        found = "; ".join(f"{d.feature} {d.measure} {d.value:.4f}" for d in verdict.drifted)
        print(f"seed {seed}, month K against K-1: {found or 'nothing flagged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
