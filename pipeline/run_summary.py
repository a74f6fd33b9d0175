"""What a run did, read back from ML Metadata and the artifacts: the source of run_summary.json.

`collect_outputs` finds the newest pipeline run in MLMD and the output artifacts of each node in it
(cached executions included). `build_summary` turns them into the JSON-ready dict documented in
docs/pipeline.md; `format_summary` renders that dict as the table printed at the end of a run. Both are pure.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from modules import threshold as decision
from modules.calibration import MIN_CLASS_ROWS
from modules.hparams import HYPERPARAMETERS_FILE
from pipeline import config as cfg
from pipeline.factors import load_factors
from pipeline.gates import describe_anomalies, load_anomalies
from pipeline.inputs import MIN_CLASS_PER_SPLIT
from pipeline.mlmd import read_only_store
from pipeline.pusher import NEWLY_PUSHED_PROPERTY, PUSHED_VERSION_PROPERTY
from pipeline.recall_gate import REASON_PROPERTY as RECALL_REASON
from pipeline.recall_gate import RECALL_GATE_ID
from pipeline.reference import eval_scores_path, load_reference
from pipeline.reference_models import WORSE
from pipeline.serving_check import BLESSED_KEY as SERVING_CHECK_BLESSED
from pipeline.serving_check import ERROR_KEY as SERVING_CHECK_ERROR

Outputs = dict[str, dict[str, list[metadata_store_pb2.Artifact]]]
"""node id -> output key -> artifacts."""
METRIC_NAMES = ("auc", "precision", "recall", "binary_accuracy", "example_count", "mean_label")
CLASS_COUNTS_KEY = "confusion_matrix_at_thresholds"
"""TFMA's output of eval_config.CLASS_COUNTS: the churn rate (`mean_label`), and precision, recall and
accuracy at each model's own decision threshold (modules/threshold.py), are computed from it."""
THRESHOLDED_METRICS = ("precision", "recall", "binary_accuracy")
Z_95 = 1.959964


def collect_outputs(metadata_path: Path) -> Outputs:
    """Output artifacts per node of the newest pipeline run recorded in `metadata_path`."""
    store = read_only_store(metadata_path)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return {}
    run = max(runs, key=lambda c: c.id)
    outputs: Outputs = defaultdict(lambda: defaultdict(list))
    executions = store.get_executions_by_context(run.id)
    node_of = {}
    for execution in executions:
        for context in store.get_contexts_by_execution(execution.id):
            if context.name.startswith(cfg.PIPELINE_NAME + ".") and context.type_id == _node_type_id(store):
                node_of[execution.id] = context.name.split(".", 1)[1]
    events = [e for e in store.get_events_by_execution_ids(list(node_of)) if e.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    for event in events:
        outputs[node_of[event.execution_id]][event.path.steps[0].key].append(artifacts[event.artifact_id])
    return {node: dict(keys) for node, keys in outputs.items()}


def build_summary(outputs: Outputs, cached: Collection[str] = ()) -> dict[str, Any]:
    """Counts, anomalies, metrics, blessing and push, as far as the run got (`cached`: nodes reused from cache)."""
    summary: dict[str, Any] = {
        "example_counts": {}, "anomalies": [], "metrics": None, "blessed": None, "blessing_reason": None,
        "pushed_model_dir": None, "model_version": None, "newly_pushed": False, "training": None,
        "chance_level": None, "factors": None, "serving_check": None, "reference_models": None, "calibration": None,
        "threshold": None, "eval_scores": None,
        "tuning": None,
    }
    statistics = single_artifact(outputs, "StatisticsGen", "statistics")
    if statistics:
        summary["example_counts"] = _example_counts(statistics)
    anomalies = single_artifact(outputs, "ExampleValidator", "anomalies")
    if anomalies:
        summary["anomalies"] = describe_anomalies(
            load_anomalies(anomalies.uri, anomalies.properties["split_names"].string_value))
    model_run = single_artifact(outputs, "Trainer", "model_run")
    if model_run:
        summary["training"] = training_history(Path(model_run.uri) / "history.csv")
        if summary["training"] is not None:
            summary["training"].update(training_hyperparameters(Path(model_run.uri) / HYPERPARAMETERS_FILE))
    tuner_results = single_artifact(outputs, "Tuner", "tuner_results")
    if tuner_results:
        summary["tuning"] = load_tuner_trials(Path(tuner_results.uri))
    factors = single_artifact(outputs, "ChurnFactors", "factors")
    if factors:
        summary["factors"] = load_factors(factors.uri)
    reference = single_artifact(outputs, "ReferenceModels", "reference")
    if reference:
        summary.update(load_reference(reference.uri))  # "reference_models" and "calibration"
        summary["eval_scores"] = eval_scores_path(reference.uri)  # monitoring.drift's served-score reference
    evaluation = single_artifact(outputs, "Evaluator", "evaluation")
    if evaluation:
        thresholds = model_thresholds(evaluation.uri)
        summary["threshold"] = thresholds.get(_CANDIDATE)
        summary["metrics"] = eval_metrics(evaluation.uri, {name: t["value"] for name, t in thresholds.items()})
        interval = summary["metrics"]["overall"]["auc_ci95"]
        # No evidence of beating chance: the interval does not lie wholly above 0.5.
        summary["chance_level"] = bool(interval and interval[0] <= 0.5)
        validation = tfma.load_validation_result(evaluation.uri)
        summary["blessed"] = bool(validation.validation_ok)
        # A cached Evaluator means the same model on the same eval rows: the verdict of last time.
        summary["blessing_reason"] = blessing_reason(validation, summary["metrics"], "Evaluator" in cached)
        gate = single_artifact(outputs, "ReferenceGate", "blessing")
        if gate and summary["reference_models"]:
            summary["blessed"] = gate.custom_properties["blessed"].int_value == 1
            summary["blessing_reason"] += "; " + reference_reason(summary["reference_models"])
        recall = single_artifact(outputs, RECALL_GATE_ID, "blessing")
        reason = recall.custom_properties[RECALL_REASON].string_value \
            if recall and RECALL_REASON in recall.custom_properties else ""
        if reason:  # pipeline/recall_gate.py refused the model
            summary["blessed"] = False
            summary["blessing_reason"] += "; " + reason
    check = single_artifact(outputs, "ServingCheck", "blessing")
    if check:  # pipeline/serving_check.py: did our model server serve the candidate, and if not why
        summary["serving_check"] = {
            "passed": check.custom_properties[SERVING_CHECK_BLESSED].int_value == 1,
            "error": check.custom_properties[SERVING_CHECK_ERROR].string_value
            if SERVING_CHECK_ERROR in check.custom_properties else None,
        }
    pushed = single_artifact(outputs, "Pusher", "pushed_model")
    if pushed and pushed.custom_properties["pushed"].int_value == 1:
        summary["pushed_model_dir"] = pushed.custom_properties["pushed_destination"].string_value
        summary["model_version"] = pushed.custom_properties[PUSHED_VERSION_PROPERTY].string_value
        summary["newly_pushed"] = pushed.custom_properties[NEWLY_PUSHED_PROPERTY].int_value == 1
    return summary


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write atomically so a reader never sees half a file; valid JSON for any parser (`to_json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(to_json(summary) + b"\n")
    os.replace(tmp, path)


def to_json(value: Any) -> bytes:
    """Indented JSON with sorted keys that any JSON parser reads: an undefined metric (NaN, ±Infinity) is
    `null`, never the bare `NaN` Python's json module writes (orjson's rule; numpy values are numbers)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
                        | orjson.OPT_NON_STR_KEYS)


def format_summary(summary: dict[str, Any]) -> str:
    """The table printed at the end of a run."""
    lines = ["", "Summary", "======="]
    counts = summary.get("example_counts") or {}
    if counts:
        lines.append("rows: " + ", ".join(f"{split} {n:,}" for split, n in counts.items()))
    anomalies = summary.get("anomalies") or []
    lines.append(f"anomalies: {len(anomalies) or 'none'}")
    lines += [f"  - {a}" for a in anomalies]
    training = summary.get("training")
    if training:
        lines.append(f"training: {training['epochs_run']} epochs, best epoch {training['best_epoch']} "
                     f"(validation loss {training['best_val_loss']:.4f}, AUC {training['best_val_auc']:.4f})")
        if training.get("hyperparameters"):
            lines.append(hyperparameters_sentence(training, summary.get("tuning")))
    metrics = summary.get("metrics")
    if metrics:
        header = (f"{'slice':<34}{'AUC':>8}{'95% CI':>17}{'precision':>11}{'recall':>8}{'accuracy':>10}"
                  f"{'churn rate':>12}{'examples':>10}")
        lines += ["", "eval metrics:", header, "-" * len(header)]
        rows = {"overall": metrics["overall"], **metrics["slices"]}
        for name, m in rows.items():
            ci = m.get("auc_ci95")
            interval = f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "-"
            lines.append(f"{name:<34}{_fmt(m.get('auc')):>8}{interval:>17}{_fmt(m.get('precision')):>11}"
                         f"{_fmt(m.get('recall')):>8}{_fmt(m.get('binary_accuracy')):>10}{_fmt(m.get('mean_label')):>12}"
                         f"{int(m.get('example_count') or 0):>10,}")
        for name, m in rows.items():
            if m.get("auc_undefined"):
                lines.append(f"AUC of {name} undefined: {m['auc_undefined']}")
        if metrics.get("baseline"):
            lines.append(f"{'baseline (last blessed)':<34}{_fmt(metrics['baseline'].get('auc')):>8}")
        if summary.get("threshold"):
            lines.append(threshold_sentence(summary["threshold"], metrics["overall"].get("confusion_matrix")))
        lines.append("")
    lines += format_reference(summary)
    if summary.get("chance_level"):
        lines.append("note: the overall AUC's 95% interval does not lie above 0.5: on this data the model is not "
                     "distinguishable from chance; the label may carry no signal in these features")
    if summary.get("factors"):
        lines.append(f"churn factors: {summary['factors']['summary']}")
    if summary.get("blessed") is not None:
        lines.append(f"blessed: {'yes' if summary['blessed'] else 'no'} ({summary['blessing_reason']})")
    check = summary.get("serving_check")
    if check and not check["passed"]:
        lines.append(f"serving check: failed ({check['error']})")
    if summary.get("pushed_model_dir"):
        verb = "pushed" if summary.get("newly_pushed") else "unchanged, already serving"
        lines.append(f"model: {verb}: {summary['pushed_model_dir']}")
    else:
        lines.append("model: nothing pushed")
    lines.append(f"status: {summary['status']} (exit {summary['exit_code']}) in {summary['total_seconds']:.1f} s")
    if summary.get("error"):
        lines.append(f"error: {summary['error']}")
    return "\n".join(lines)


def format_reference(summary: dict[str, Any]) -> list[str]:
    """Summary lines: the reference models' AUC next to the net's, the paired difference, and calibration."""
    lines = []
    reference = summary.get("reference_models")
    if reference and not reference["references"]:
        lines += [reference["summary"], ""]
    elif reference:
        header = f"{'model':<34}{'AUC':>8}{'net - model':>13}{'95% CI':>19}{'Brier':>8}  verdict"
        lines += [f"reference models (same {reference['rows']:,} {reference['split']} rows):", header,
                  "-" * len(header), f"{'Dense net':<34}{_fmt(reference['model_auc']):>8}"]
        for row in reference["references"]:
            lo, hi = row["ci95"]
            lines.append(f"{row['name']:<34}{_fmt(row['auc']):>8}{row['auc_difference']:>+13.4f}"
                         f"{f'{lo:+.4f} to {hi:+.4f}':>19}{row['brier']:>8.4f}  net {row['verdict']} it")
        lines += [reference["summary"], ""]
    calibration = summary.get("calibration")
    if calibration:
        overall = calibration["overall"]
        ece = f"{overall['ece']:.4f}" if overall["ece"] is not None else f"n/a ({overall['ece_reason']})"
        lines.append(f"calibration ({calibration['split']}, {overall['rows']:,} rows): Brier {overall['brier']:.4f}, "
                     f"ECE ({calibration['bins']} {calibration['binning']} bins) {ece}")
        if calibration.get("platt"):
            lines.append(f"  {platt_sentence(calibration['platt'])}")
    return lines


def platt_sentence(platt: dict[str, Any]) -> str:
    """What the Trainer's calibration step did (modules/calibration.py), in words."""
    rows = f"{platt['validation_rows']:,} validation rows"
    if platt["applied"]:
        return (f"Platt scaling applied in the exported graph (scale {platt['scale']:.3f}, "
                f"offset {platt['offset']:+.3f}): validation Brier {platt['validation_brier_before']:.4f} -> "
                f"{platt['validation_brier_after']:.4f} "
                f"on {rows}")
    if platt["validation_brier_after"] is None:
        return f"no calibration: fewer than {MIN_CLASS_ROWS} rows of a class among the {rows}"
    return (f"no calibration: Platt scaling would not lower the validation Brier score "
            f"({platt['validation_brier_before']:.4f} -> {platt['validation_brier_after']:.4f} on {rows})")


def threshold_sentence(threshold: dict[str, Any], matrix: dict[str, Any] | None) -> str:
    """The decision threshold (modules/threshold.py) in words, with the eval split's confusion matrix at it."""
    how = {decision.F1_OPTIMAL: threshold["reason"], decision.GIVEN: "given with --threshold"}.get(
        threshold["method"], f"fallback: {threshold['reason']}")
    text = f"decision threshold {threshold['value']:g} on the calibrated churn probability ({how})"
    if threshold.get("validation_f1") is not None:
        text += f", validation F1 {threshold['validation_f1']:.3f}"
    if matrix:
        text += (f"; precision, recall and accuracy above are at it: eval tp {matrix['tp']:,}, fp {matrix['fp']:,}, "
                 f"fn {matrix['fn']:,}, tn {matrix['tn']:,}")
    return text


def reference_reason(reference: dict[str, Any]) -> str:
    """`--require-beat-reference`'s part of the blessing reason."""
    worse = [row["name"] for row in reference["references"] if row["verdict"] == WORSE]
    if worse:
        return f"--require-beat-reference: {', '.join(worse)} has a better AUC beyond the paired 95% interval"
    return "--require-beat-reference: no reference model has a better AUC beyond the paired 95% interval"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def single_artifact(outputs: Outputs, node: str, key: str) -> metadata_store_pb2.Artifact | None:
    """The artifact `node` wrote under `key` in this run, or None if the run did not get that far."""
    found = outputs.get(node, {}).get(key, [])
    return found[-1] if found else None


def _node_type_id(store: metadata_store.MetadataStore) -> int:
    type_id: int = store.get_context_type("node").id
    return type_id


def split_statistics(statistics: metadata_store_pb2.Artifact) -> dict[str, statistics_pb2.DatasetFeatureStatistics]:
    """StatisticsGen's statistics per split, in the order of cfg.SPLIT_BUCKETS."""
    splits = json.loads(statistics.properties["split_names"].string_value)
    return {
        split: tfdv.load_stats_binary(os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")).datasets[0]
        for split in cfg.SPLIT_BUCKETS if split in splits
    }


def _example_counts(statistics: metadata_store_pb2.Artifact) -> dict[str, int]:
    return {split: int(stats.num_examples) for split, stats in split_statistics(statistics).items()}


def training_hyperparameters(path: Path) -> dict[str, Any]:
    """{"hyperparameters": name -> value, "tuned": bool} the Trainer wrote (modules/hparams.HYPERPARAMETERS_FILE);
    {} when the file is absent (a model trained before it existed)."""
    if not path.exists():
        return {}
    written = json.loads(path.read_text())
    return {"hyperparameters": written["values"], "tuned": bool(written["tuned"])}


def load_tuner_trials(folder: Path) -> dict[str, Any]:
    """The TFX Tuner's completed trials, best first: {"trials": [{"trial_id", "score" (validation cross-entropy
    without the L2 penalty), hyperparameter name -> value}, ...]} from its `tuner_results` artifact
    (tuner_results.json)."""
    files = sorted(folder.glob("*.json"))
    trials = json.loads(files[0].read_text()) if files else []
    return {"trials": trials}


def hyperparameters_sentence(training: dict[str, Any], tuning: dict[str, Any] | None) -> str:
    """One line: the training hyperparameters used and where they came from (defaults or the Tuner)."""
    values = ", ".join(f"{k} {v:g}" for k, v in sorted(training["hyperparameters"].items()))
    if not training.get("tuned"):
        return f"hyperparameters: {values} (defaults; --tune searches them)"
    trials = len((tuning or {}).get("trials") or [])
    return f"hyperparameters: {values} (chosen by the Tuner, best of {trials} trials on validation cross-entropy)"


def training_history(history_csv: Path) -> dict[str, Any] | None:
    """Epochs run and the early-stopping epoch's validation/training AUC from the Trainer's history.csv;
    None when the file does not exist."""
    if not history_csv.exists():
        return None
    with history_csv.open() as f:
        rows = list(csv.DictReader(f))
    best = min(rows, key=lambda r: float(r["val_loss"]))
    return {
        "epochs_run": len(rows),
        "best_epoch": int(best["epoch"]) + 1,
        "best_val_loss": float(best["val_loss"]),
        "best_val_auc": float(best["val_auc"]),
        "train_auc_at_best": float(best["auc"]),
    }


_CANDIDATE, _BASELINE = "candidate", "baseline"


def model_thresholds(evaluation_uri: str) -> dict[str, dict[str, Any]]:
    """{"candidate": threshold record, "baseline": ...} of the models an Evaluator scored (modules/threshold.py:
    each model's assets.extra/threshold.json, or the FALLBACK record for a model exported before it)."""
    from tensorflow_model_analysis.writers.eval_config_writer import load_eval_run

    eval_config, _, _, locations = load_eval_run(evaluation_uri)
    if eval_config is None:
        return {}
    return {_BASELINE if spec.is_baseline else _CANDIDATE: decision.read_record(locations[spec.name])
            for spec in eval_config.model_specs}


def at_threshold(matrices: Any, value: float) -> dict[str, Any]:
    """Precision, recall, accuracy, churn rate and the confusion matrix at `value`, from TFMA's confusion
    matrices over a threshold grid (a `ConfusionMatrixAtThresholds` value's `matrices`; the grid holds
    `value`, else its nearest grid point is used and named in `confusion_matrix.threshold`)."""
    matrices = list(matrices)
    matrix = matrices[decision.nearest([m.threshold for m in matrices], value)]
    counts = {"tp": matrix.true_positives, "fp": matrix.false_positives, "tn": matrix.true_negatives,
              "fn": matrix.false_negatives}
    total = sum(counts.values())
    found: dict[str, Any] = {k: v for k, v in decision.rates(counts).items() if k in THRESHOLDED_METRICS}
    found["mean_label"] = (counts["tp"] + counts["fn"]) / total if total else None
    found["confusion_matrix"] = {"threshold": round(float(matrix.threshold), 6),
                                 **{k: round(v) for k, v in counts.items()}}
    return found


def eval_metrics(evaluation_uri: str, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """{'overall': {...}, 'slices': {'Gender=Male': {...}}, 'baseline': {...} | None,
    'baseline_slices': {'Gender=Male': {...}} | None} from TFMA's output; `thresholds`: each model's
    decision threshold ("candidate", "baseline"; modules.threshold.FALLBACK for one not given)."""
    thresholds = thresholds or {}
    candidate: dict[str, dict[str, float | None]] = {}
    baseline: dict[str, dict[str, float | None]] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        keys = per_slice.slice_key.single_slice_keys
        name = ", ".join(f"{k.column}={_slice_value(k)}" for k in keys) or "overall"
        for entry in per_slice.metric_keys_and_values:
            if entry.key.is_diff:
                continue
            model = baseline if entry.key.model_name == _BASELINE else candidate
            if entry.key.name == CLASS_COUNTS_KEY:
                value = thresholds.get(_BASELINE if model is baseline else _CANDIDATE, decision.FALLBACK)
                model.setdefault(name, {}).update(at_threshold(entry.value.confusion_matrix_at_thresholds.matrices,
                                                               value))
            elif entry.key.name in METRIC_NAMES:
                model.setdefault(name, {})[entry.key.name] = entry.value.double_value.value
    overall = candidate.pop("overall", {})
    baseline_overall = baseline.pop("overall", None)
    return {
        "overall": complete_metrics(overall),
        "slices": {k: complete_metrics(v) for k, v in sorted(candidate.items())},
        "baseline": complete_metrics(baseline_overall) if baseline_overall else None,
        "baseline_slices": {k: complete_metrics(v) for k, v in sorted(baseline.items())} if baseline_overall else None,
    }


def complete_metrics(values: dict[str, float | None]) -> dict[str, Any]:
    """One slice's TFMA metrics with NaN as None, the AUC's 95 % interval, and why an AUC is undefined."""
    # An undefined metric (TFMA's NaN: precision with no predicted churner) is None: `null` in JSON, `-` in text.
    out: dict[str, Any] = {}
    for k in METRIC_NAMES:
        value = values.get(k)
        out[k] = None if value is None or math.isnan(value) else value
    out["confusion_matrix"] = values.get("confusion_matrix")
    out["auc_undefined"] = auc_undefined_reason(out["example_count"], out["mean_label"])
    if out["auc_undefined"]:
        out["auc"] = None
    out["auc_ci95"] = auc_confidence_interval(out["auc"], out["example_count"], out["mean_label"])
    return out


def auc_undefined_reason(count: float | None, positive_rate: float | None) -> str | None:
    """Why an AUC (and its interval) is `null`: a slice with one class, or fewer than MIN_CLASS_PER_SPLIT
    churners or non-churners (TFMA then reports 0.0 or a value resting on a handful of customers); else None."""
    if not count or positive_rate is None:
        return None
    positives = round(count * positive_rate)
    negatives = round(count) - positives
    if positives == 0 or negatives == 0:
        return f"only one class ({positives} churners, {negatives} non-churners)"
    if min(positives, negatives) < MIN_CLASS_PER_SPLIT:
        return (f"too few of a class ({positives} churners, {negatives} non-churners; at least "
                f"{MIN_CLASS_PER_SPLIT} of each are needed)")
    return None


def auc_confidence_interval(auc: float | None, count: float | None, positive_rate: float | None) -> list[float] | None:
    """95 % interval of an AUC from its class counts (Hanley & McNeil, 1982), clipped to [0, 1].

    It tells whether an AUC is distinguishable from chance: on the public Kaggle data's 170 eval
    rows an AUC of 0.45 is no evidence of any signal.
    """
    if auc is None or not count or positive_rate is None:
        return None
    positives, negatives = count * positive_rate, count * (1 - positive_rate)
    if positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives)
    half = Z_95 * math.sqrt(max(variance, 0.0))
    return [round(max(0.0, auc - half), 4), round(min(1.0, auc + half), 4)]


def _slice_value(key: Any) -> str:
    kind = key.WhichOneof("kind")
    value = getattr(key, kind)
    return value.decode() if isinstance(value, bytes) else str(value)


def blessing_reason(validation: Any, metrics: dict[str, Any], same_model: bool = False) -> str:
    auc = metrics["overall"].get("auc")
    if validation.validation_ok:
        reason = f"overall AUC {_fmt(auc)} passed the lower bound"
        if same_model:
            reason += "; the model is unchanged since it was last blessed"
        elif metrics.get("baseline"):
            reason += f" and is not worse than the last blessed model's {_fmt(metrics['baseline'].get('auc'))}"
        return reason
    problems = []
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            threshold = failure.metric_threshold
            if threshold.HasField("value_threshold"):
                bound = threshold.value_threshold.lower_bound.value
                problems.append(f"overall AUC {_fmt(auc)} is below the lower bound {bound:g}")
            elif threshold.HasField("change_threshold"):
                problems.append(f"overall AUC {_fmt(auc)} is worse than the last blessed model's "
                                f"{_fmt((metrics.get('baseline') or {}).get('auc'))}")
            else:
                problems.append(failure.message)
    return "; ".join(problems) or "validation failed"
