"""Customer segments: k-means on z-scored behavioural features, each with a plain-language profile.

Pure (numpy and scikit-learn; no TensorFlow, no I/O). The Trainer fits it on the transformed train
split and exports it twice: the centroids inside the SavedModel's `segment` signature (nearest
centroid over the same Transform graph, modules/signatures.py), the profiles as
`assets.extra/segments.json` (`to_json`), which TF Serving ignores and the Pusher copies.

Why these choices:
- the z-scored columns Transform already makes, so assigning a new customer reuses the model's own
  graph and nobody re-implements the scaling; behavioural columns only (what customers do, not who
  they are), `features.BEHAVIOURAL_FEATURES` when present, else every numeric feature;
- k from K_RANGE with the best silhouette on a fixed, seeded sample (CRITERION): deterministic and
  cheap. Two segments are not tried: on the bundled data they only split heavy from light buyers,
  with the same churn rate, which gives a retention team nothing to act on;
- segment ids ordered by churn rate, highest first; names from the features whose segment mean is
  furthest from the overall mean (`features.BEHAVIOURAL_FEATURES` gives the words).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from modules import features

ASSETS_EXTRA = "assets.extra"
SEGMENTS_FILE = "segments.json"
"""Profiles inside the exported model: `<model version>/assets.extra/segments.json`."""
K_RANGE = range(3, 9)
SILHOUETTE_SAMPLE = 2_000
CRITERION = (f"k in {K_RANGE.start}..{K_RANGE.stop - 1} with the highest silhouette score on "
             f"{SILHOUETTE_SAMPLE:,} seeded random training rows (all rows if fewer)")
_N_INIT = 4
_NAME_MIN_Z = 0.25
"""A segment is described by a feature only if its mean is at least this many deviations from the overall mean."""
_NAME_WORDS = 2


@dataclasses.dataclass(frozen=True)
class Profile:
    """One segment as a retention team reads it."""

    id: int
    name: str
    size: int
    share: float
    churn_rate: float
    """Share of churners among the segment's training rows."""
    typical: dict[str, float]
    """Median raw value of each segmentation column."""
    centroid: dict[str, float]
    """Mean of each column in z-score units (0 = the training mean)."""


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """The fitted segments: what the model exports and what `to_json` writes."""

    columns: list[str]
    """Raw names of the segmentation features, in the centroids' column order."""
    centroids: np.ndarray
    """[k, len(columns)] float32, z-score units; segment i is row i."""
    labels: np.ndarray
    """Segment of each training row."""
    silhouettes: dict[int, float]
    profiles: list[Profile]


def segment_columns(numeric_keys: Iterable[str]) -> list[str]:
    """The behavioural features the data has (in their listed order), else every numeric feature (sorted)."""
    numeric = set(numeric_keys)
    behavioural = [k for k in features.BEHAVIOURAL_FEATURES if k in numeric]
    return behavioural or sorted(numeric)


def fit_segments(
    z_scores: np.ndarray,
    churned: np.ndarray,
    columns: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    seed: int,
) -> Segmentation:
    """Fit k-means on the training rows' z-scores ([rows, len(columns)]) and profile each segment.

    Args:
      z_scores: the z-scored segmentation columns of the training rows, as Transform made them.
      churned: 0/1 label of each row.
      columns: raw names of the columns of `z_scores`.
      mean, std: the Transform's z-score parameters per column, to report typical values in raw units.
      seed: makes the sample and k-means deterministic.
    """
    if not columns:
        raise ValueError("no numeric features to fit customer segments on")
    points = np.asarray(z_scores, dtype=np.float32)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(points), size=min(SILHOUETTE_SAMPLE, len(points)), replace=False)
    distinct = len(np.unique(points[sample], axis=0))
    candidates = [k for k in K_RANGE if k < distinct] or [min(K_RANGE.start, distinct)]
    silhouettes: dict[int, float] = {}
    fitted: dict[int, KMeans] = {}
    # One thread: sklearn's OpenMP pool fights TensorFlow's for 2 cores and made each fit 10-50x slower.
    with threadpool_limits(1):
        for k in candidates:
            fitted[k] = KMeans(n_clusters=k, n_init=_N_INIT, random_state=seed).fit(points)
            labels = fitted[k].labels_[sample]
            if len(np.unique(labels)) > 1:
                silhouettes[k] = float(silhouette_score(points[sample], labels))
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k)) if silhouettes else candidates[0]
    centroids, labels = _ordered(fitted[best], np.asarray(churned))
    return Segmentation(list(columns), centroids, labels, silhouettes,
                        _profiles(points, labels, centroids, np.asarray(churned), columns, mean, std))


def to_json(segmentation: Segmentation) -> dict[str, Any]:
    """The JSON written to assets.extra/segments.json (and read by the report and `python -m insights`)."""
    return {
        "criterion": CRITERION,
        "columns": segmentation.columns,
        "k": len(segmentation.profiles),
        "silhouette": {str(k): round(v, 4) for k, v in sorted(segmentation.silhouettes.items())},
        "rows": int(len(segmentation.labels)),
        "segments": [dataclasses.asdict(p) for p in segmentation.profiles],
    }


def segment_names(centroids: np.ndarray, columns: Sequence[str]) -> list[str]:
    """A unique plain-language name per segment, e.g. "Lapsed, dissatisfied customers".

    Each name lists the words of the features whose centroid is furthest from 0 (at least
    _NAME_MIN_Z), _NAME_WORDS of them, more where two segments would otherwise share a name.
    """
    ranked = [_descriptors(row, columns) for row in centroids]
    words = [_NAME_WORDS] * len(ranked)
    while True:
        names = [_name(r[:n]) for r, n in zip(ranked, words, strict=True)]
        clashes = {n for n in names if names.count(n) > 1}
        grow = [i for i, n in enumerate(names) if n in clashes and words[i] < len(ranked[i])]
        if not grow:
            break
        for i in grow:
            words[i] += 1
    return [f"{n} (segment {i})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _ordered(model: KMeans, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids and labels renumbered by churn rate (then size), highest first."""
    k = len(model.cluster_centers_)
    sizes = np.bincount(model.labels_, minlength=k)
    rates = np.bincount(model.labels_, weights=churned, minlength=k) / np.maximum(sizes, 1)
    order = sorted(range(k), key=lambda c: (-rates[c], -sizes[c], c))
    new_id = np.empty(k, dtype=np.int64)
    new_id[order] = np.arange(k)
    return model.cluster_centers_[order].astype(np.float32), new_id[model.labels_]


def _profiles(points: np.ndarray, labels: np.ndarray, centroids: np.ndarray, churned: np.ndarray,
              columns: Sequence[str], mean: np.ndarray, std: np.ndarray) -> list[Profile]:
    names = segment_names(centroids, columns)
    profiles = []
    for segment, name in enumerate(names):
        rows = labels == segment
        medians = np.median(points[rows], axis=0) * std + mean
        profiles.append(Profile(
            id=segment,
            name=name,
            size=int(rows.sum()),
            share=round(float(rows.mean()), 4),
            churn_rate=round(float(churned[rows].mean()), 4),
            typical={c: _round(v) for c, v in zip(columns, medians, strict=True)},
            centroid={c: round(float(v), 3) for c, v in zip(columns, centroids[segment], strict=True)},
        ))
    return profiles


def _descriptors(centroid: np.ndarray, columns: Sequence[str]) -> list[str]:
    """Words for the columns where this centroid is far from the mean, furthest first."""
    far = sorted((i for i in range(len(columns)) if abs(centroid[i]) >= _NAME_MIN_Z),
                 key=lambda i: (-abs(centroid[i]), columns[i]))
    return [_word(columns[i], high=centroid[i] > 0) for i in far]


def _word(column: str, high: bool) -> str:
    words: Mapping[str, tuple[str, str]] = features.BEHAVIOURAL_FEATURES
    if column in words:
        return words[column][int(high)]
    return f"{'high' if high else 'low'} {column}"


def _name(words: Sequence[str]) -> str:
    if not words:
        return "Typical customers"
    text = ", ".join(words) + " customers"
    return text[0].upper() + text[1:]


def _round(value: float) -> float:
    """At most 2 decimals and 4 significant digits: medians come back from float32 z-scores as e.g. 2.9999998."""
    return float(f"{round(float(value), 2):.4g}") + 0.0  # + 0.0 turns -0.0 into 0.0
