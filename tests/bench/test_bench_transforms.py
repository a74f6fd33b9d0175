"""bench/bench_transforms.py's choice of feature-cross pairs from a table's rows."""
from __future__ import annotations

from bench.bench_transforms import strongest_pairs
from data import generate as gen
from modules import features


def _table(variant: str):
    frame = gen.generate(6_000, variant=variant)
    label = (frame.pop(features.LABEL_KEY).astype(str) == features.POSITIVE_LABEL).to_numpy(dtype=int)
    return frame.drop(columns=list(features.ID_KEYS)), label


def test_the_interactions_tables_generating_pairs_are_the_strongest() -> None:
    pairs = strongest_pairs(*_table(gen.INTERACTIONS), 4)
    assert {frozenset(p) for p, _ in pairs[:3]} == {frozenset(p) for p in gen.INTERACTION_PAIRS}
    assert pairs[2][1] > pairs[3][1]


def test_gains_are_sorted_and_a_table_without_interactions_has_weak_ones() -> None:
    interactions = strongest_pairs(*_table(gen.INTERACTIONS), 1)
    standard = strongest_pairs(*_table(gen.STANDARD), 5)
    assert [g for _, g in standard] == sorted((g for _, g in standard), reverse=True)
    assert standard[0][1] < interactions[0][1] / 5
