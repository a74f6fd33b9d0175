"""TF Serving's Prometheus text exposition (`util/prometheus_exporter.cc`) over a registry.

Differences from prometheus_client's own format, all deliberate: no `# HELP`, counters keep
their name (no `_total`/`_created`), values print as int64, bucket bounds and sums print with
`%g`, cells are sorted by label values, metrics by their original TF name, and a metric with no
cells still gets its `# TYPE` line.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain"


def _escape(value: str) -> str:
    """A label value as exposition text that is valid UTF-8 whatever bytes the client sent.

    TF Serving escapes only backslash and double quote; we also escape line feeds (as the
    Prometheus text format requires: an unescaped one makes Prometheus drop the whole scrape) and
    write bytes that are not UTF-8 (request paths arrive as surrogate escapes) as `\\xNN` text,
    where TF Serving would emit the raw bytes and the scrape would fail. A documented deviation."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that does not stand for a byte
        raw = value.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _bound(le: str) -> str:
    return "+Inf" if le == "+Inf" else f"{float(le):g}"


def _scalar_lines(family: Metric) -> list[str]:
    cells = sorted(
        (tuple(s.labels.items()), s.value) for s in family.samples
        if not s.name.endswith("_created")
    )
    return [f"{family.name}{_labels(labels)} {int(value)}" for labels, value in cells]


def _histogram_lines(family: Metric) -> list[str]:
    cells: dict[tuple[tuple[str, str], ...], dict[str, list[tuple[str, float]]]] = {}
    for sample in family.samples:
        suffix = sample.name[len(family.name):]
        labels = tuple((k, v) for k, v in sample.labels.items() if k != "le")
        if suffix == "_bucket":
            cells.setdefault(labels, {}).setdefault("bucket", []).append((sample.labels["le"], sample.value))
        elif suffix in ("_sum", "_count"):
            cells.setdefault(labels, {})[suffix] = [("", sample.value)]
    lines = []
    for labels in sorted(cells, key=lambda ls: tuple(v for _, v in ls)):
        cell = cells[labels]
        for le, count in cell.get("bucket", []):
            lines.append(f"{family.name}_bucket{_labels(labels + (('le', _bound(le)),))} {int(count)}")
        lines.append(f"{family.name}_sum{_labels(labels)} {cell['_sum'][0][1]:g}")
        lines.append(f"{family.name}_count{_labels(labels)} {int(cell['_count'][0][1])}")
    return lines


def render(registry: CollectorRegistry, tf_names: Mapping[str, str]) -> bytes:
    """The whole exposition body: lines joined by newlines plus a trailing newline."""
    families = sorted(registry.collect(), key=lambda f: tf_names.get(f.name, f.name))
    lines: list[str] = []
    for family in families:
        kind = family.type if family.type in ("counter", "gauge", "histogram") else "untyped"
        lines.append(f"# TYPE {family.name} {kind}")
        if family.type == "histogram":
            lines.extend(_histogram_lines(family))
        else:
            lines.extend(_scalar_lines(family))
    return ("\n".join(lines) + "\n").encode("utf-8")
