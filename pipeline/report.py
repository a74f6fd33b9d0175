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

The markup lives in Jinja2 templates (`pipeline/templates/report.html.j2` and one `report/<section>.html.j2`
per section) rendered with autoescaping, so text from the data (column names, anomalies, errors) is escaped.
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
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import numpy.typing as npt
from markupsafe import Markup
from matplotlib.figure import Figure
from tensorflow_metadata.proto.v0 import statistics_pb2

from modules import features, segments
from modules import threshold as decision
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
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PAGE_TEMPLATE = "report.html.j2"
SECTION_TEMPLATES = "report/{}.html.j2"
"""One template per section id, under TEMPLATE_DIR."""
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
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
    """The model's own `churn` output (1 when the probability >= its decision threshold, modules/threshold.py)."""


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
    threshold = _threshold(summary)
    renderers: dict[str, Callable[[], Markup]] = {
        "data": lambda: _data_section(summary, outputs),
        "anomalies": lambda: _anomalies_section(summary, outputs),
        "metrics": lambda: _metrics_section(summary, threshold),
        "curves": lambda: _curves_section(summary, outputs, threshold),
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
            content = _macros().failed(f"{type(e).__name__}: {e}")
        body.append({"anchor": anchor, "title": title, "content": content})
    status = summary.get("status", "unknown")
    return _ENV.get_template(PAGE_TEMPLATE).render(
        title=f"Churn pipeline run: {status}", overview=_overview(summary), sections=SECTIONS.items(), body=body)


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


def _section(anchor: str, **context: Any) -> Markup:
    """One section's markup from its template (SECTION_TEMPLATES)."""
    return Markup(_ENV.get_template(SECTION_TEMPLATES.format(anchor)).render(**context))


class _Macros:
    """The building blocks in report/macros.html.j2 (table, image, not_reached, ...), callable from Python; each
    returns the markup of its macro."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Callable[..., Markup]:
        macro = getattr(self._module, name)
        return lambda *args, **kwargs: Markup(macro(*args, **kwargs))


def _macros() -> _Macros:
    """The building blocks in report/macros.html.j2 (table, image, not_reached, ...), callable from Python."""
    return _Macros(_ENV.get_template("report/macros.html.j2").module)


def _overview(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = [
        ("status", f'{summary.get("status")} (exit code {summary.get("exit_code")})'),
        ("data", summary.get("data")),
        ("output", summary.get("output")),
        ("total time", _seconds(summary.get("total_seconds"))),
        ("report written", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    if summary.get("spans"):
        rows.extend(span_rows(summary["spans"]))
    if summary.get("error"):
        rows.append(("error", summary["error"]))
    return [[k, "-" if v is None else str(v)] for k, v in rows]


def span_rows(spans: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Overview rows of a windowed run (run_summary.json's `spans`): the month, the window, the drift gate and
    the spans read from a corrected version."""
    month = f" ({spans['month']})" if spans.get("month") else ""
    drift = spans.get("drift") or {}
    if not drift.get("compared"):
        gate = "not checked (no previous span)"
    else:
        found = "; ".join(f"{d['feature']}: {d['measure']} {d['distance']:.4f} > {d['threshold']}"
                          for d in drift.get("drifted") or []) or "none"
        gate = (f"span {drift.get('current_span')} against span {drift.get('previous_span')}: {found}"
                f" (--on-drift {drift.get('on_drift')}{', run stopped' if drift.get('stopped') else ''})")
    evaluated = (f"span {spans.get('eval_span')}{month}: evaluated out of time (baseline: the served model, "
                 "on the same rows)")
    rows = [("month", evaluated),
            ("trained on spans", ", ".join(map(str, spans.get("train_spans") or []))),
            ("drift", gate)]
    corrected = {n: v for n, v in (spans.get("versions") or {}).items() if v}
    if corrected:  # span-<n>/version-<v>/ folders (docs/data.md, "Correcting a span")
        rows.append(("corrected spans", ", ".join(f"span {n}: version {v}" for n, v in corrected.items())))
    return rows


def reading_notes(run_input: Mapping[str, Any]) -> list[Markup]:
    """HTML paragraphs: how the file was read (dialect), the id columns and the column-name mapping."""
    macros, notes = _macros(), []
    if run_input.get("dialect"):
        notes.append(macros.dialect_note(run_input["dialect"]))
    if run_input.get("id_columns") is not None:
        notes.append(macros.id_columns_note(run_input["id_columns"], run_input.get("id_columns_chosen") or ""))
    mapping = run_input.get("column_names") or {}
    if mapping:
        notes.append(macros.column_names_note(list(mapping.items())))
    return notes


def _data_section(summary: Mapping[str, Any], outputs: run_summary.Outputs) -> Markup:
    statistics = run_summary.single_artifact(outputs, "StatisticsGen", "statistics")
    if statistics is None:
        return _macros().not_reached("StatisticsGen")
    by_split = run_summary.split_statistics(statistics)
    run_input = summary.get("input") or {}
    label_key, positive = run_input.get("label"), run_input.get("positive_label", "")  # both set by the CLI
    label_values = list(run_input.get("label_values") or {})
    rates = {split: churn_rate(stats, label_key, positive, label_values) if label_key else None
             for split, stats in by_split.items()}
    details = []
    for split, stats in by_split.items():
        numeric, categorical = _feature_rows(stats, label_key)
        details.append({"name": split, "numeric": numeric, "categorical": categorical})
    return _section(
        "data",
        splits=[[split, f"{stats.num_examples:,}", _percent(rates[split])] for split, stats in by_split.items()],
        notes=reading_notes(run_input), label_key=label_key, positive_label=str(positive), details=details)


def _anomalies_section(summary: Mapping[str, Any], outputs: run_summary.Outputs) -> Markup:
    if run_summary.single_artifact(outputs, "ExampleValidator", "anomalies") is None:
        return _macros().not_reached("ExampleValidator")
    return _section("anomalies", anomalies=summary.get("anomalies") or [],
                    schema=str((summary.get("input") or {}).get("schema", "the schema")))


def _metrics_section(summary: Mapping[str, Any], threshold: float) -> Markup:
    metrics = summary.get("metrics")
    if not metrics:
        return _macros().not_reached("Evaluator")
    baseline_slices = metrics.get("baseline_slices") or {}
    baselines = {"overall": metrics.get("baseline"), **baseline_slices}
    slices = {"overall": metrics["overall"], **metrics["slices"]}
    rows = []
    for name, m in slices.items():
        ci = m.get("auc_ci95")
        base = baselines.get(name) or {}
        delta = None if m.get("auc") is None or base.get("auc") is None else m["auc"] - base["auc"]
        rows.append([name, _number(m.get("auc")), f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "-", _number(base.get("auc")),
                     "-" if delta is None else f"{delta:+.4f}", _number(m.get("precision")), _number(m.get("recall")),
                     _number(m.get("binary_accuracy")), _percent(m.get("mean_label")),
                     f"{int(m.get('example_count') or 0):,}"])
    return _section("metrics", split=cfg.EVAL_SPLIT, threshold=threshold, rows=rows,
                    has_baseline=bool(metrics.get("baseline")),
                    auc_undefined=[(name, m["auc_undefined"]) for name, m in slices.items() if m.get("auc_undefined")],
                    training=summary.get("training"),
                    hyperparameters=(run_summary.hyperparameters_sentence(summary["training"], summary.get("tuning"))
                                     if (summary.get("training") or {}).get("hyperparameters") else None))


def _curves_section(summary: Mapping[str, Any], outputs: run_summary.Outputs, threshold: float) -> Markup:
    evaluation = run_summary.single_artifact(outputs, "Evaluator", "evaluation")
    examples = run_summary.single_artifact(outputs, "CsvExampleGen", "examples")
    if evaluation is None or examples is None:
        return _macros().not_reached("Evaluator")
    predictions = eval_predictions(evaluation.uri, examples.uri)
    from sklearn.metrics import roc_auc_score

    candidate = predictions[CANDIDATE]
    tfma_auc = ((summary.get("metrics") or {}).get("overall") or {}).get("auc")
    charts = [(png_base64(roc_figure(predictions, threshold)), "ROC curve"),
              (png_base64(calibration_figure(predictions, threshold)), "Calibration curve"),
              (png_base64(confusion_figure(confusion_counts(candidate), threshold)),
               f"Confusion matrix at threshold {threshold:g}")]
    return _section("curves", models=len(predictions), rows=f"{len(candidate.labels):,}", split=cfg.EVAL_SPLIT,
                    auc=roc_auc_score(candidate.labels, candidate.probabilities), tfma_auc=_number(tfma_auc),
                    charts=charts)


def _reference_section(summary: Mapping[str, Any]) -> Markup:
    """The reference models next to the net (paired AUC difference) and calibration per slice (pipeline/reference.py).
    """
    reference, calibration = summary.get("reference_models"), summary.get("calibration")
    if not reference or not calibration:
        return _macros().not_reached("ReferenceModels")
    if not reference["references"]:
        return _section("reference", skipped=True, summary=reference["summary"])
    rows = [["Dense net (this run's model)", _number(reference["model_auc"]), "", "", "", ""]]
    for row in reference["references"]:
        lo, hi = row["ci95"]
        rows.append([row["description"], _number(row["auc"]), f"{row['auc_difference']:+.4f}",
                     f"{lo:+.4f} to {hi:+.4f}", _number(row["brier"]), f"net {row['verdict']} it"])
    slices = {"overall": calibration["overall"], **calibration["slices"]}
    calibration_rows = [[name, f"{c['rows']:,}", _number(c["brier"]),
                         _number(c["ece"]) if c["ece"] is not None else f"n/a: {c['ece_reason']}"]
                        for name, c in slices.items()]
    return _section(
        "reference", skipped=False, summary=reference["summary"], holds_its_own=reference["holds_its_own"], rows=rows,
        train_rows=f"{reference['train_rows']:,}", eval_rows=f"{reference['rows']:,}", split=reference["split"],
        method=reference["method"], bins=calibration["bins"], binning=calibration["binning"],
        platt=run_summary.platt_sentence(calibration["platt"]) if calibration.get("platt") else None,
        calibration_rows=calibration_rows,
        reliability=png_base64(reliability_figure(calibration["overall"]["reliability"])))


def _factors_section(summary: Mapping[str, Any]) -> Markup:
    """Permutation importance with simultaneous intervals, and each feature's direction (pipeline/factors.py)."""
    factors = summary.get("factors")
    if not factors:
        return _macros().not_reached("ChurnFactors")
    rows = factors["features"]
    low: float = min([0.0, *(r["ci"][0] for r in rows)])
    span = (max([0.0, *(r["ci"][1] for r in rows)]) - low) or 1.0

    def position(value: float) -> float:
        return 100 * (value - low) / span

    macros, table = _macros(), []
    for r in rows:
        bar = macros.ci_bar(position(0), position(r["ci"][0]), position(r["ci"][1]) - position(r["ci"][0]),
                            position(r["importance"]), r["distinguishable"])
        table.append([r["feature"], f'{r["importance"]:+.4f}', f'{r["ci"][0]:+.4f} … {r["ci"][1]:+.4f}',
                      "yes" if r["distinguishable"] else "no", bar, _direction(r)])
    return _section("factors", sentence=factors["summary"], drivers=bool(factors["drivers"]), rows=table,
                    confidence=f"{factors['confidence']:.0%}", rows_used=f"{factors['rows_used']:,}",
                    split=factors["split"], auc=factors["auc"], method=factors["method"], z=factors["z"],
                    correction=factors["multiple_comparisons"].capitalize())


def _direction(row: Mapping[str, Any]) -> str:
    """Which way the model's churn probability moves with the feature, in words."""
    if row["kind"] == "numeric":
        low, high = row["low"], row["high"]
        words = "higher → more churn" if row["direction"] == "up" else "higher → less churn"
        at = {end: "a blank cell" if row[end]["value"] is None else _short(row[end]["value"])
              for end in ("low", "high")}
        return f"{words}: P(churn) {low['probability']:.2f} at {at['low']}, {high['probability']:.2f} at {at['high']}"
    return " > ".join(f"{name} {p:.2f}" for name, p in row["categories"].items())


def _segments_section(outputs: run_summary.Outputs) -> Markup:
    """The segments the Trainer fitted (modules/segments.py), from the profiles it exported with the model."""
    model = run_summary.single_artifact(outputs, "Trainer", "model")
    if model is None:
        return _macros().not_reached("Trainer")
    from tfx.utils import path_utils

    profile_file = Path(path_utils.serving_model_path(model.uri), segments.ASSETS_EXTRA, segments.SEGMENTS_FILE)
    fitted = json.loads(profile_file.read_text(encoding="utf-8"))
    columns = fitted["columns"]
    rows = [[str(p["id"]), p["name"], f'{p["size"]:,}', _percent(p["share"]), _percent(p["churn_rate"]),
             *(_short(p["typical"][c]) for c in columns)] for p in fitted["segments"]]
    silhouettes = [(k, f"{v:.3f}", int(k) == fitted["k"]) for k, v in fitted["silhouette"].items()]
    return _section("segments", k=fitted["k"], rows=f"{fitted['rows']:,}", split=cfg.TRAIN_SPLIT,
                    criterion=fitted["criterion"], silhouettes=silhouettes, columns=list(columns), table_rows=rows)


def _blessing_section(summary: Mapping[str, Any]) -> Markup:
    if summary.get("blessed") is None:
        return _macros().not_reached("Evaluator")
    return _section("blessing", blessed=summary["blessed"], reason=str(summary.get("blessing_reason")),
                    chance_level=bool(summary.get("chance_level")))


def _push_section(summary: Mapping[str, Any]) -> Markup:
    return _section("push", pushed=summary.get("pushed_model_dir"), newly_pushed=bool(summary.get("newly_pushed")),
                    version=str(summary.get("model_version")), status=str(summary.get("status")))


def _timing_section(summary: Mapping[str, Any]) -> Markup:
    seconds: dict[str, float] = summary.get("component_seconds") or {}
    cached = set(summary.get("cached_components") or [])
    longest = max(seconds.values(), default=0.0) or 1.0
    track = _macros().track
    rows = [[name, f"{s:.1f} s", "cached" if name in cached else "", track(100 * s / longest)]
            for name, s in sorted(seconds.items(), key=lambda item: -item[1])]
    return _section("timing", rows=rows, total=_seconds(summary.get("total_seconds")))


# Charts --------------------------------------------------------------------------------------------------


def _threshold(summary: Mapping[str, Any]) -> float:
    """The candidate's decision threshold as the run summary read it back (modules/threshold.py)."""
    return float((summary.get("threshold") or {}).get("value", decision.FALLBACK))


def roc_figure(predictions: Mapping[str, Predictions], threshold: float = decision.FALLBACK) -> Figure:
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
    ax.plot(*point, "o", color=_COLORS[CANDIDATE], label=f"threshold {threshold:g}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(predictions: Mapping[str, Predictions], threshold: float = decision.FALLBACK) -> Figure:
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
    bottom.axvline(threshold, color="#333", linewidth=1, linestyle="--")
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


def confusion_figure(counts: Mapping[str, int], threshold: float = decision.FALLBACK) -> Figure:
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
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix, threshold {threshold:g}")
    return fig


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG, for an inline `data:image/png` image (the page needs no other file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


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
