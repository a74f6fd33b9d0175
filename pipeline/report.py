"""`<output>/report.html`: one self-contained page per run, for people who would rather look than read logs.

The page is drawn from what the run itself produced; nothing the run decided is recomputed:
- the run summary (`run_summary.build_summary`, also run_summary.json): rows, anomalies, TFMA metrics
  next to the baseline's, the blessing and its reason, the push, time per component;
- the run's artifacts, found through ML Metadata (`run_summary.collect_outputs`): StatisticsGen's
  statistics per split, and the models the Evaluator scored.

ROC, calibration and the confusion matrix need per-example predictions, which TFMA's metrics do not
keep. They come from loading each SavedModel the Evaluator scored (its `eval_config.json` names the
models, the signature, the label and the prediction key) and running it over the same eval-split
tf.Examples, so the curves describe exactly what TFMA scored; their AUC is shown next to TFMA's.

Charts are PNGs embedded as base64, so the file opens in a browser without a server. A section whose
inputs do not exist (the run stopped earlier) says so; a section that fails to render shows the
error and is listed in `Report.problems`, so one unreadable artifact never costs the rest of the page.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from tensorflow_metadata.proto.v0 import statistics_pb2

from modules import features, segments
from pipeline import config as cfg
from pipeline import run_summary
from pipeline.inputs import same_label

SECTIONS = {
    "data": "Data per split",
    "anomalies": "Anomalies",
    "metrics": "Evaluation metrics",
    "curves": "ROC, calibration and confusion matrix",
    "reference": "Reference models and calibration",
    "factors": "Churn factors",
    "segments": "Customer segments",
    "blessing": "Blessing",
    "push": "Push",
    "timing": "Time per component",
}
"""Section id -> heading, in page order (tests look for these)."""
CANDIDATE, BASELINE = "candidate", "baseline"
_COLORS = {CANDIDATE: "#1f6feb", BASELINE: "#d4731c"}
_BATCH = 4096
_CALIBRATION_BINS = 10


@dataclasses.dataclass(frozen=True)
class Report:
    """Where the page was written, and what is missing from it."""

    path: Path
    problems: list[str]
    """One line per section that could not be rendered; empty when the page is complete."""


@dataclasses.dataclass(frozen=True)
class Predictions:
    """One model's outputs on the eval split, in example order."""

    labels: npt.NDArray[Any]
    """0/1: the transformed label TFMA scored against."""
    probabilities: npt.NDArray[Any]
    decisions: npt.NDArray[Any]
    """The model's own `churn` output (1 when the probability >= features.DECISION_THRESHOLD)."""


def write_report(summary: Mapping[str, Any], config: cfg.PipelineConfig) -> Report:
    """Render the run in `config.output` to `config.report_path` (atomically) and say what could not be shown."""
    problems: list[str] = []
    outputs: run_summary.Outputs = {}
    if config.metadata_path.exists():
        try:
            outputs = run_summary.collect_outputs(config.metadata_path)
        except Exception as e:  # noqa: BLE001 (the summary alone still makes a useful page)
            problems.append(f"artifacts: cannot read ML Metadata: {type(e).__name__}: {e}")
    page = render(summary, outputs, problems)
    config.report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.report_path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, config.report_path)
    return Report(config.report_path, problems)


def render(summary: Mapping[str, Any], outputs: run_summary.Outputs, problems: list[str]) -> str:
    """The whole HTML page; failures of single sections are appended to `problems`."""
    renderers: dict[str, Callable[[], str]] = {
        "data": lambda: _data_section(summary, outputs),
        "anomalies": lambda: _anomalies_section(summary, outputs),
        "metrics": lambda: _metrics_section(summary),
        "curves": lambda: _curves_section(summary, outputs),
        "reference": lambda: _reference_section(summary),
        "factors": lambda: _factors_section(summary),
        "segments": lambda: _segments_section(outputs),
        "blessing": lambda: _blessing_section(summary),
        "push": lambda: _push_section(summary),
        "timing": lambda: _timing_section(summary),
    }
    body = []
    for anchor, title in SECTIONS.items():
        try:
            content = renderers[anchor]()
        except Exception as e:  # noqa: BLE001 (one broken artifact must not cost the whole page)
            problems.append(f"{title}: {type(e).__name__}: {e}")
            content = f'<p class="bad">Could not render this section: {escape(f"{type(e).__name__}: {e}")}</p>'
        body.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>\n{content}\n</section>')
    nav = " · ".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in SECTIONS.items())
    status = summary.get("status", "unknown")
    return _PAGE.format(
        title=escape(f"Churn pipeline run: {status}"),
        css=_CSS,
        overview=_overview(summary),
        nav=nav,
        body="\n".join(body),
    )


def eval_predictions(evaluation_uri: str, examples_uri: str) -> dict[str, Predictions]:
    """Per-example predictions of each model the Evaluator scored ('candidate', maybe 'baseline') on its split."""
    import tensorflow as tf
    from tensorflow_model_analysis.writers.eval_config_writer import load_eval_run

    eval_config, _, _, locations = load_eval_run(evaluation_uri)
    if eval_config is None:
        raise FileNotFoundError(f"no eval_config.json in {evaluation_uri}")
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{cfg.EVAL_SPLIT}", "*")))
    if not files:
        raise FileNotFoundError(f"no {cfg.EVAL_SPLIT} examples under {examples_uri}")
    predictions = {}
    for spec in eval_config.model_specs:
        model = tf.saved_model.load(locations[spec.name])
        predict = model.signatures[spec.signature_name]
        transform = model.signatures[spec.preprocessing_function_names[0]]
        labels, probabilities, decisions = [], [], []
        for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH):
            outputs = predict(**{_input_name(predict): batch})
            labels.append(transform(**{_input_name(transform): batch})[spec.label_key].numpy().reshape(-1))
            probabilities.append(outputs[spec.prediction_key].numpy().reshape(-1))
            decisions.append(outputs[features.CLASS_OUTPUT].numpy().reshape(-1))
        name = BASELINE if spec.is_baseline else CANDIDATE
        predictions[name] = Predictions(np.concatenate(labels).astype(int), np.concatenate(probabilities),
                                        np.concatenate(decisions).astype(int))
    return predictions


def confusion_counts(predictions: Predictions) -> dict[str, int]:
    """True/false positives/negatives of the model's `churn` decision."""
    y, d = predictions.labels == 1, predictions.decisions == 1
    return {"tp": int((y & d).sum()), "fp": int((~y & d).sum()), "fn": int((y & ~d).sum()),
            "tn": int((~y & ~d).sum())}


def calibration_bins(predictions: Predictions, bins: int = _CALIBRATION_BINS) -> list[tuple[float, float, int]]:
    """(mean predicted probability, observed churn rate, rows) per equal-width probability bin with rows."""
    index = np.clip((predictions.probabilities * bins).astype(int), 0, bins - 1)
    return [
        (float(predictions.probabilities[index == b].mean()), float(predictions.labels[index == b].mean()),
         int((index == b).sum()))
        for b in range(bins) if (index == b).any()
    ]


def churn_rate(stats: statistics_pb2.DatasetFeatureStatistics, label_key: str, positive_label: str,
               label_values: Sequence[str]) -> float | None:
    """Share of rows whose raw label is the positive label, from StatisticsGen's statistics of the label column.

    A text label's counts are in its rank histogram. A numeric label has exactly two values (checked
    when the input was staged), so its mean places the rate between them.
    """
    label = next((f for f in stats.features if _feature_name(f) == label_key), None)
    if label is None:
        return None
    if label.HasField("string_stats"):
        counts = {b.label: b.sample_count for b in label.string_stats.rank_histogram.buckets}
        total = sum(counts.values())
        return sum(n for v, n in counts.items() if same_label(v, positive_label)) / total if total else None
    others = [float(v) for v in label_values if not same_label(v, positive_label)]
    if not label.HasField("num_stats") or len(others) != 1:
        return None
    positive, other = float(positive_label), others[0]
    rate: float = (label.num_stats.mean - other) / (positive - other)
    return rate


# Sections ------------------------------------------------------------------------------------------------


def _overview(summary: Mapping[str, Any]) -> str:
    rows = [
        ("status", f'{summary.get("status")} (exit code {summary.get("exit_code")})'),
        ("data", summary.get("data")),
        ("output", summary.get("output")),
        ("total time", _seconds(summary.get("total_seconds"))),
        ("report written", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    if summary.get("error"):
        rows.append(("error", summary["error"]))
    return _table(None, [[k, "-" if v is None else str(v)] for k, v in rows], css_class="facts")


def reading_notes(run_input: Mapping[str, Any]) -> list[str]:
    """HTML paragraphs: how the file was read (dialect), the id columns and the column-name mapping."""
    notes = []
    dialect = run_input.get("dialect")
    if dialect:
        notes.append(f"<p>Read as encoding <code>{escape(dialect['encoding'])}</code>, delimiter "
                     f"<code>{escape(dialect['delimiter'])}</code>, decimal mark <code>{escape(dialect['decimal'])}"
                     f"</code> (detected: {escape(', '.join(dialect['detected'])) or 'none, all given'}).</p>")
    if run_input.get("id_columns") is not None:
        notes.append(f"<p>Id columns: {escape(', '.join(run_input['id_columns']) or 'none')} "
                     f"({escape(run_input.get('id_columns_chosen') or '')}).</p>")
    mapping = run_input.get("column_names") or {}
    if mapping:
        notes.append("<p>Column names mapped to TensorFlow names (the served signature's input names):</p>"
                     + _table(["name in the file", "name in the model"], [[w, n] for w, n in mapping.items()]))
    return notes


def _data_section(summary: Mapping[str, Any], outputs: run_summary.Outputs) -> str:
    statistics = run_summary.single_artifact(outputs, "StatisticsGen", "statistics")
    if statistics is None:
        return _not_reached("StatisticsGen")
    by_split = run_summary.split_statistics(statistics)
    run_input = summary.get("input") or {}
    label_key, positive = run_input.get("label"), run_input.get("positive_label", "")  # both set by the CLI
    label_values = list(run_input.get("label_values") or {})
    rates = {split: churn_rate(stats, label_key, positive, label_values) if label_key else None
             for split, stats in by_split.items()}
    parts = [_table(["split", "rows", "churn rate"],
                    [[split, f"{stats.num_examples:,}", _percent(rates[split])] for split, stats in by_split.items()])]
    parts.extend(reading_notes(run_input))
    if label_key:
        parts.append(f"<p>Label <code>{escape(label_key)}</code>, churn = <code>{escape(str(positive))}</code>. "
                     "Feature statistics from StatisticsGen:</p>")
    for number, (split, stats) in enumerate(by_split.items()):
        numeric, categorical = _feature_rows(stats, label_key)
        parts.append(
            f'<details{" open" if number == 0 else ""}><summary>{escape(split)}: '
            f"{len(numeric)} numeric, {len(categorical)} categorical columns</summary>"
            + _table(["numeric column", "missing", "mean", "std", "min", "median", "max"], numeric)
            + _table(["categorical column", "missing", "distinct", "most frequent"], categorical)
            + "</details>"
        )
    return "\n".join(parts)


def _anomalies_section(summary: Mapping[str, Any], outputs: run_summary.Outputs) -> str:
    if run_summary.single_artifact(outputs, "ExampleValidator", "anomalies") is None:
        return _not_reached("ExampleValidator")
    anomalies = summary.get("anomalies") or []
    schema = (summary.get("input") or {}).get("schema", "the schema")
    if not anomalies:
        return f'<p class="good">None: every split matches {escape(str(schema))}.</p>'
    items = "".join(f"<li>{escape(a)}</li>" for a in anomalies)
    return (f'<p class="bad">{len(anomalies)} found against {escape(str(schema))}; '
            f"the run stopped before Transform.</p><ul>{items}</ul>")


def _metrics_section(summary: Mapping[str, Any]) -> str:
    metrics = summary.get("metrics")
    if not metrics:
        return _not_reached("Evaluator")
    baseline_slices = metrics.get("baseline_slices") or {}
    baselines = {"overall": metrics.get("baseline"), **baseline_slices}
    rows = []
    for name, m in {"overall": metrics["overall"], **metrics["slices"]}.items():
        ci = m.get("auc_ci95")
        base = baselines.get(name) or {}
        delta = None if m.get("auc") is None or base.get("auc") is None else m["auc"] - base["auc"]
        rows.append([name, _number(m.get("auc")), f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "-", _number(base.get("auc")),
                     "-" if delta is None else f"{delta:+.4f}", _number(m.get("precision")), _number(m.get("recall")),
                     _number(m.get("binary_accuracy")), _percent(m.get("mean_label")),
                     f"{int(m.get('example_count') or 0):,}"])
    note = ("<p>Baseline: the last blessed model, scored on the same rows.</p>" if metrics.get("baseline") else
            "<p>No baseline: no model was blessed before, or it is this very model (a cached re-run).</p>")
    note += "".join(f"<p>AUC of {escape(name)} undefined: {escape(m['auc_undefined'])}.</p>"
                    for name, m in {"overall": metrics["overall"], **metrics["slices"]}.items()
                    if m.get("auc_undefined"))
    training = summary.get("training")
    if training:
        note += (f"<p>Training: {training['epochs_run']} epochs, early stopping kept epoch {training['best_epoch']} "
                 f"(validation AUC {training['best_val_auc']:.4f}, "
                 f"training AUC {training['train_auc_at_best']:.4f}).</p>")
    header = ["slice", "AUC", "AUC 95% CI", "baseline AUC", "Δ AUC", "precision", "recall", "accuracy",
              "churn rate", "examples"]
    return (f"<p>On the <code>{cfg.EVAL_SPLIT}</code> split (TFMA); precision, recall and accuracy at the "
            f"decision threshold {features.DECISION_THRESHOLD:g}.</p>" + _table(header, rows) + note)


def _curves_section(summary: Mapping[str, Any], outputs: run_summary.Outputs) -> str:
    evaluation = run_summary.single_artifact(outputs, "Evaluator", "evaluation")
    examples = run_summary.single_artifact(outputs, "CsvExampleGen", "examples")
    if evaluation is None or examples is None:
        return _not_reached("Evaluator")
    predictions = eval_predictions(evaluation.uri, examples.uri)
    from sklearn.metrics import roc_auc_score

    candidate = predictions[CANDIDATE]
    tfma_auc = ((summary.get("metrics") or {}).get("overall") or {}).get("auc")
    auc = roc_auc_score(candidate.labels, candidate.probabilities)
    counts = confusion_counts(candidate)
    return (
        f"<p>Per-example predictions of the evaluated model{'s' if len(predictions) > 1 else ''} on the "
        f"{len(candidate.labels):,} <code>{cfg.EVAL_SPLIT}</code> rows TFMA scored. AUC from these predictions "
        f"{auc:.4f} (TFMA: {_number(tfma_auc)}).</p>"
        '<div class="charts">'
        + _image(roc_figure(predictions), "ROC curve")
        + _image(calibration_figure(predictions), "Calibration curve")
        + _image(confusion_figure(counts), f"Confusion matrix at threshold {features.DECISION_THRESHOLD:g}")
        + "</div>"
    )


def _reference_section(summary: Mapping[str, Any]) -> str:
    """The reference models next to the net (paired AUC difference) and calibration per slice (pipeline/reference.py).
    """
    reference, calibration = summary.get("reference_models"), summary.get("calibration")
    if not reference or not calibration:
        return _not_reached("ReferenceModels")
    if not reference["references"]:
        return f'<p class="muted">{escape(reference["summary"])}.</p>'
    rows = [["Dense net (this run's model)", _number(reference["model_auc"]), "", "", "", ""]]
    for row in reference["references"]:
        lo, hi = row["ci95"]
        rows.append([row["description"], _number(row["auc"]), f"{row['auc_difference']:+.4f}",
                     f"{lo:+.4f} to {hi:+.4f}", _number(row["brier"]), f"net {row['verdict']} it"])
    verdict = "good" if reference["holds_its_own"] else "bad"
    text = (f'<p class="{verdict}"><b>{escape(reference["summary"])}</b></p>'
            + _table(["model", "AUC", "net − model", "95% interval", "Brier", "verdict"], rows)
            + f"<p>All fitted on the same {reference['train_rows']:,} transformed training rows, scored on the same "
              f"{reference['rows']:,} <code>{escape(reference['split'])}</code> rows. "
              f"{escape(reference['method'])}.</p>")
    slices = {"overall": calibration["overall"], **calibration["slices"]}
    calibration_rows = [[name, f"{c['rows']:,}", _number(c["brier"]),
                         _number(c["ece"]) if c["ece"] is not None else f"n/a: {c['ece_reason']}"]
                        for name, c in slices.items()]
    platt = f" {escape(run_summary.platt_sentence(calibration['platt']))}." if calibration.get("platt") else ""
    return (text + f"<p>Calibration of the served churn probability: Brier score and expected calibration error "
                   f"over {calibration['bins']} {escape(calibration['binning'])} bins.{platt}</p>"
            + _table(["slice", "rows", "Brier", "ECE"], calibration_rows)
            + _image(reliability_figure(calibration["overall"]["reliability"]),
                     f"Reliability curve ({calibration['bins']} {calibration['binning']} bins, overall)"))


def _factors_section(summary: Mapping[str, Any]) -> str:
    """Permutation importance with simultaneous intervals, and each feature's direction (pipeline/factors.py)."""
    factors = summary.get("factors")
    if not factors:
        return _not_reached("ChurnFactors")
    rows = factors["features"]
    low: float = min([0.0, *(r["ci"][0] for r in rows)])
    span = (max([0.0, *(r["ci"][1] for r in rows)]) - low) or 1.0

    def position(value: float) -> float:
        return 100 * (value - low) / span

    table = []
    for r in rows:
        chart = (f'<div class="ci"><div class="zero" style="left:{position(0):.1f}%"></div>'
                 f'<div class="range{" on" if r["distinguishable"] else ""}" style="left:{position(r["ci"][0]):.1f}%;'
                 f'width:{position(r["ci"][1]) - position(r["ci"][0]):.1f}%"></div>'
                 f'<div class="point" style="left:{position(r["importance"]):.1f}%"></div></div>')
        table.append([r["feature"], f'{r["importance"]:+.4f}', f'{r["ci"][0]:+.4f} … {r["ci"][1]:+.4f}',
                      "yes" if r["distinguishable"] else "no", chart, _direction(r)])
    sentence = escape(factors["summary"])
    return (f'<p class="{"good" if factors["drivers"] else "bad"}"><b>{sentence}</b></p>'
            + _table(["feature", "importance (AUC drop)", f"simultaneous {factors['confidence']:.0%} interval",
                      "distinguishable from 0", "interval (bar) and estimate (tick)", "direction"],
                     table, raw_columns=frozenset({4}))
            + f"<p>Measured on {factors['rows_used']:,} <code>{escape(factors['split'])}</code> rows "
              f"(model AUC {factors['auc']:.4f}). Method: {escape(factors['method'])}. Every interval is "
              f"estimate ± {factors['z']:.2f} standard errors, so that all {len(rows)} hold together with "
              f"{factors['confidence']:.0%} probability ({escape(factors['multiple_comparisons'].capitalize())} "
              "correction for multiple comparisons). Directions describe the model, whether or not the feature "
              "is distinguishable; per-customer attributions come from the model's <code>explain</code> "
              "signature.</p>")


def _direction(row: Mapping[str, Any]) -> str:
    """Which way the model's churn probability moves with the feature, in words."""
    if row["kind"] == "numeric":
        low, high = row["low"], row["high"]
        words = "higher → more churn" if row["direction"] == "up" else "higher → less churn"
        at = {end: "a blank cell" if row[end]["value"] is None else _short(row[end]["value"])
              for end in ("low", "high")}
        return f"{words}: P(churn) {low['probability']:.2f} at {at['low']}, {high['probability']:.2f} at {at['high']}"
    return " > ".join(f"{name} {p:.2f}" for name, p in row["categories"].items())


def _segments_section(outputs: run_summary.Outputs) -> str:
    """The segments the Trainer fitted (modules/segments.py), from the profiles it exported with the model."""
    model = run_summary.single_artifact(outputs, "Trainer", "model")
    if model is None:
        return _not_reached("Trainer")
    from tfx.utils import path_utils

    profile_file = Path(path_utils.serving_model_path(model.uri), segments.ASSETS_EXTRA, segments.SEGMENTS_FILE)
    fitted = json.loads(profile_file.read_text(encoding="utf-8"))
    columns = fitted["columns"]
    rows = [[str(p["id"]), p["name"], f'{p["size"]:,}', _percent(p["share"]), _percent(p["churn_rate"]),
             *(_short(p["typical"][c]) for c in columns)] for p in fitted["segments"]]
    silhouettes = ", ".join(f"<b>{k}: {v:.3f}</b>" if int(k) == fitted["k"] else f"{k}: {v:.3f}"
                            for k, v in fitted["silhouette"].items())
    return (f"<p>{fitted['k']} segments of the {fitted['rows']:,} <code>{cfg.TRAIN_SPLIT}</code> rows, by k-means on "
            f"their z-scored behavioural features. Number of segments: {escape(fitted['criterion'])}; silhouette "
            f"per k: {silhouettes}. Churn rate is the segment's share of churners; the last columns are the "
            "segment's median values. <code>python -m insights score</code> assigns new customers to these "
            "segments with the model's <code>segment</code> signature.</p>"
            + _table(["segment", "name", "customers", "share", "churn rate", *columns], rows))


def _blessing_section(summary: Mapping[str, Any]) -> str:
    if summary.get("blessed") is None:
        return _not_reached("Evaluator")
    verdict = ('<p class="good"><b>Blessed</b>' if summary["blessed"] else '<p class="bad"><b>Not blessed</b>')
    text = f"{verdict}: {escape(str(summary.get('blessing_reason')))}.</p>"
    if summary.get("chance_level"):
        text += ('<p class="bad">The overall AUC\'s 95% interval does not lie above 0.5: on this data the model is '
                 "not distinguishable from chance.</p>")
    return text


def _push_section(summary: Mapping[str, Any]) -> str:
    pushed = summary.get("pushed_model_dir")
    if not pushed:
        return f"<p>Nothing pushed (status: {escape(str(summary.get('status')))}).</p>"
    if summary.get("newly_pushed"):
        return f"<p>Pushed version {escape(str(summary.get('model_version')))} to <code>{escape(pushed)}</code>.</p>"
    return (f"<p>Nothing copied: the same model is already the newest version, "
            f"<code>{escape(pushed)}</code>.</p>")


def _timing_section(summary: Mapping[str, Any]) -> str:
    seconds: dict[str, float] = summary.get("component_seconds") or {}
    if not seconds:
        return "<p>No component ran.</p>"
    cached = set(summary.get("cached_components") or [])
    longest = max(seconds.values()) or 1.0
    rows = [[name, f"{s:.1f} s", "cached" if name in cached else "",
             f'<div class="track"><div class="bar" style="width:{100 * s / longest:.1f}%"></div></div>']
            for name, s in sorted(seconds.items(), key=lambda item: -item[1])]
    return (_table(["component", "time", "", ""], rows, raw_columns=frozenset({3}))
            + f"<p>Total wall time {_seconds(summary.get('total_seconds'))}, start-up and reading results "
              "back included.</p>")


# Charts --------------------------------------------------------------------------------------------------


def roc_figure(predictions: Mapping[str, Predictions]) -> Figure:
    """ROC of each model, with the candidate's operating point at the decision threshold."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1, label="chance")
    for name, p in predictions.items():
        fpr, tpr, _ = roc_curve(p.labels, p.probabilities)
        ax.plot(fpr, tpr, color=_COLORS[name], label=f"{name} (AUC {roc_auc_score(p.labels, p.probabilities):.3f})")
    counts = confusion_counts(predictions[CANDIDATE])
    point = (counts["fp"] / max(counts["fp"] + counts["tn"], 1), counts["tp"] / max(counts["tp"] + counts["fn"], 1))
    ax.plot(*point, "o", color=_COLORS[CANDIDATE], label=f"threshold {features.DECISION_THRESHOLD:g}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(predictions: Mapping[str, Predictions]) -> Figure:
    """Predicted vs observed churn rate per probability bin, over the candidate's score histogram by class."""
    fig = Figure(figsize=(4.0, 4.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1, label="perfectly calibrated")
    for name, p in predictions.items():
        bins = calibration_bins(p)
        top.plot([b[0] for b in bins], [b[1] for b in bins], "o-", color=_COLORS[name], markersize=4, label=name)
    top.set(ylabel="observed churn rate", ylim=(0, 1), title="Calibration (10 bins)")
    top.legend(loc="upper left", fontsize=8)
    candidate = predictions[CANDIDATE]
    edges = np.linspace(0, 1, 21)
    for label, color, text in ((0, "#8fb8f0", "stayed"), (1, "#e06c5a", "churned")):
        bottom.hist(candidate.probabilities[candidate.labels == label], bins=edges, alpha=0.7, color=color, label=text)
    bottom.axvline(features.DECISION_THRESHOLD, color="#333", linewidth=1, linestyle="--")
    bottom.set(xlabel="predicted churn probability (candidate)", ylabel="rows", xlim=(0, 1))
    bottom.legend(loc="upper right", fontsize=7)
    return fig


def reliability_figure(curve: Sequence[Mapping[str, float]]) -> Figure:
    """Observed churn rate against mean predicted probability per equal-mass bin (reference_models.json)."""
    fig = Figure(figsize=(3.6, 3.6))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1, label="perfectly calibrated")
    ax.plot([b["predicted"] for b in curve], [b["observed"] for b in curve], "o-", color=_COLORS[CANDIDATE],
            markersize=4, label=CANDIDATE)
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", xlim=(0, 1), ylim=(0, 1),
           title="Reliability (equal-mass bins)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def confusion_figure(counts: Mapping[str, int]) -> Figure:
    """The 2 x 2 counts (and shares of all rows) of the `churn` decision against the label."""
    fig = Figure(figsize=(3.6, 3.6))
    ax = fig.subplots()
    grid = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    ax.imshow(grid, cmap="Blues", vmin=0)
    total = max(int(grid.sum()), 1)
    for (row, col), n in np.ndenumerate(grid):
        ax.text(col, row, f"{n:,}\n{n / total:.1%}", ha="center", va="center",
                color="white" if n > grid.max() / 2 else "black", fontsize=11)
    ax.set_xticks([0, 1], ["stays (0)", "churns (1)"])
    ax.set_yticks([0, 1], ["stayed (0)", "churned (1)"])
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix, threshold {features.DECISION_THRESHOLD:g}")
    return fig


def _image(fig: Figure, alt: str) -> str:
    """The figure as an inline PNG, so the page needs no other file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(alt)}</figcaption></figure>")


# Formatting ----------------------------------------------------------------------------------------------


def _feature_rows(stats: statistics_pb2.DatasetFeatureStatistics,
                  label_key: str | None) -> tuple[list[list[str]], list[list[str]]]:
    """Table rows per column: numeric ones (missing, mean, std, min, median, max), categorical ones (top values)."""
    numeric, categorical = [], []
    total = max(int(stats.num_examples), 1)
    for feature in sorted(stats.features, key=_feature_name):
        name = _feature_name(feature) + (" (label)" if _feature_name(feature) == label_key else "")
        if feature.HasField("num_stats"):
            n = feature.num_stats
            numeric.append([name, _percent(n.common_stats.num_missing / total),
                            *(_short(v) for v in (n.mean, n.std_dev, n.min, n.median, n.max))])
        elif feature.HasField("string_stats"):
            s = feature.string_stats
            present = max(int(s.common_stats.num_non_missing), 1)
            top = ", ".join(f"{v.value} ({v.frequency / present:.0%})" for v in s.top_values[:3])
            categorical.append([name, _percent(s.common_stats.num_missing / total), str(s.unique), top])
    return numeric, categorical


def _feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(feature.path.step) or feature.name


def _table(columns: Sequence[str] | None, rows: Sequence[Sequence[str]], raw_columns: frozenset[int] = frozenset(),
           css_class: str = "") -> str:
    """An HTML table (no header row if `columns` is None); cells are escaped except in `raw_columns`
    (markup made here, never data)."""
    head = "" if columns is None else "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if i in raw_columns else escape(cell)}</td>" for i, cell in enumerate(row))
        + "</tr>" for row in rows
    )
    return f'<table class="{css_class}">{head}{body}</table>'


def _not_reached(component: str) -> str:
    return f'<p class="muted">Not reached: the run stopped before {escape(component)} produced this.</p>'


def _input_name(signature: Any) -> str:
    name: str
    (name,) = signature.structured_input_signature[1]
    return name


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _short(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 0 auto;
       max-width: 1240px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; border-bottom: 1px solid #d8dde6;
       padding-bottom: 4px; margin-top: 28px; }
nav { font-size: 13px; margin: 8px 0 4px; } nav a { color: #1f6feb; text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border: 1px solid #d8dde6; padding: 3px 8px; text-align: right; }
th { background: #f2f4f8; } td:first-child, th:first-child, .facts td { text-align: left; }
code { background: #f2f4f8; padding: 0 3px; border-radius: 3px; font-size: 12px; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; } figure { margin: 0; } figcaption { font-size: 12px;
       color: #555; text-align: center; }
.good { color: #116329; } .bad { color: #a40e26; } .muted { color: #6a737d; }
.track { width: 320px; } .bar { background: #1f6feb; height: 10px; min-width: 1px; }
.ci { position: relative; width: 220px; height: 12px; } .ci div { position: absolute; top: 0; height: 12px; }
.ci .zero { border-left: 1px dashed #999; } .ci .range { background: #c9d1db; top: 3px; height: 6px; min-width: 1px; }
.ci .range.on { background: #1f6feb; } .ci .point { border-left: 2px solid #1d2330; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{title}</h1>
{overview}
<nav>{nav}</nav>
{body}
</body>
</html>
"""
