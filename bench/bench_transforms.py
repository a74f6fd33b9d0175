"""Feature-transform benchmark: the Dense net trained on the same rows transformed other ways TFT 1.16 offers.

For each table (bench/bench_quality.py's four) one cold pipeline run (local_pipeline.py, defaults) into
`--runs/<table>` (kept, and reused when there: the same folders as bench/bench_training.py's). Then, for
each candidate, modules/preprocessing.py's `preprocessing_fn` with that candidate's options
(`features.FEATURE_TRANSFORMS`: `numeric` z_score / signed_log1p / gaussian, `quantile_buckets` N,
`vocabulary_frequency_threshold` K) is analysed with tf.Transform on the run's raw `train` split, as the
Transform component does; the run's raw train, validation and eval rows go through that graph; the designed
model (current modules/hparams.py settings) is trained the Trainer's way (seed 42, early stopping on
`validation`) and scored on `eval`. Printed per candidate: eval AUC, Brier score, ECE (10 equal-mass bins,
before Platt calibration), epochs, best epoch, training seconds and analysis seconds, and, when `{}` (today's
transform) was measured first, each candidate's paired AUC difference from it on the same eval rows with its
DeLong 95 % interval (pipeline/reference_models.py).
Prints figures; asserts nothing. The choice it informed is in docs/performance.md ("Feature transforms").
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apache_beam as beam
import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx_bsl.public.tfxio import TFExampleRecord

from bench.bench_quality import add_run_arguments, table_runs
from bench.bench_training import _newest, train_and_score
from data import generate as gen
from modules import features, hparams
from modules.preprocessing import preprocessing_fn
from modules.trainer import feature_layout
from pipeline.reference_models import paired_auc_difference

CANDIDATES = (
    {},
    {"numeric": features.SIGNED_LOG1P},
    {"numeric": features.GAUSSIAN},
    {"quantile_buckets": 10},
    {"vocabulary_frequency_threshold": 10},
    {"crosses": [list(p) for p in gen.INTERACTION_PAIRS]},
)
"""Candidates of the 2026-11-30 measurements (docs/performance.md); {} is today's transform. The crosses are the
interactions table's generating pairs (a check of what crosses can give at best); `--crosses-from-train K` adds
the K pairs with the strongest interaction measured on each run's train split (`strongest_pairs`)."""
CROSS_BINS = 5
"""Quantile bins of a numeric column when `strongest_pairs` measures interactions (as `cross_buckets`' default)."""


def _train_frame(output: Path, label_key: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The run's raw `train` rows: feature columns (no identifiers; a missing number NaN, a missing text "") and
    the 0/1 label."""
    root = output / "tfx"
    schema = tfdv.load_schema_text(str(_schema_file(root)))
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    files = [str(f) for f in sorted((_newest(root / "CsvExampleGen" / "examples") / "Split-train").iterdir())]
    columns: dict[str, list] = {k: [] for k in spec}
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(65_536):
        for key, value in tf.io.parse_example(batch, spec).items():
            if isinstance(value, tf.sparse.SparseTensor):
                value = tf.sparse.reset_shape(value, [value.dense_shape[0], 1])
                value = (tf.sparse.to_dense(value, default_value="") if value.dtype == tf.string else
                         tf.sparse.to_dense(tf.sparse.map_values(tf.cast, value, tf.float64), default_value=np.nan))
            values = value.numpy().reshape(-1)
            columns[key].extend(v.decode() if isinstance(v, bytes) else v for v in values)
    frame = pd.DataFrame(columns)
    label = frame.pop(label_key)
    positive = label == (features.POSITIVE_LABEL if label.dtype == object else float(features.POSITIVE_LABEL))
    return frame.drop(columns=[k for k in features.ID_KEYS if k in frame]), positive.to_numpy(dtype=int)


def _bins(values: pd.Series) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) \
            or values.nunique() <= CROSS_BINS:
        return values.astype(str)  # text, flags and scores with few levels: each level is a bin
    codes = pd.qcut(values.astype(float), CROSS_BINS, labels=False, duplicates="drop")
    return codes.fillna(-1).astype(int).astype(str)


def strongest_pairs(frame: pd.DataFrame, label: np.ndarray, count: int) -> list[tuple[tuple[str, str], float]]:
    """The `count` column pairs whose interaction explains most of the label, strongest first.

    A numeric column with more than CROSS_BINS values is cut into CROSS_BINS quantile bins, any other column
    keeps its values (a missing value is a level of its own); a pair's
    strength is the AIC gain of the model with one rate per (bin, bin) cell over the additive logistic
    model of the two binned columns, both fitted on these rows: 2·(log-likelihood gain) − 2·(extra
    parameters). Returns [((column, other column), gain in AIC units)].
    """
    binned = {k: _bins(frame[k]) for k in frame}
    n = len(label)
    scores = []
    for a, b in itertools.combinations(sorted(binned), 2):
        additive = pd.get_dummies(pd.DataFrame({a: binned[a], b: binned[b]}), drop_first=True).to_numpy(float)
        fit = LogisticRegression(C=1e4, max_iter=2000).fit(additive, label) if additive.shape[1] else None
        p_add = fit.predict_proba(additive)[:, 1] if fit is not None else np.full(n, label.mean())
        cells = binned[a] + "|" + binned[b]
        rate = pd.Series(label).groupby(cells.to_numpy()).transform("mean").clip(1e-6, 1 - 1e-6).to_numpy()
        gain = n * (log_loss(label, p_add) - log_loss(label, rate))
        extra = cells.nunique() - 1 - additive.shape[1]
        scores.append(((a, b), 2 * gain - 2 * extra))
    scores.sort(key=lambda s: -s[1])
    return scores[:count]


def _schema_file(root: Path) -> Path:
    found = sorted(root.glob("*SchemaGen/schema/*/schema.pbtxt"))
    if not found:
        sys.exit(f"no schema under {root}: not a pipeline run")
    return found[-1]


def transform_splits(output: Path, options: dict[str, Any], work: Path,
                     label_key: str = features.LABEL_KEY) -> tuple[dict[str, Any], float]:
    """Analyse `preprocessing_fn(options)` on the run's raw train split; every split through the resulting graph."""
    root = output / "tfx"
    schema = tfdv.load_schema_text(str(_schema_file(root)))
    examples = _newest(root / "CsvExampleGen" / "examples")
    config = {"label_key": label_key, "positive_label": features.POSITIVE_LABEL,
              "id_keys": list(features.ID_KEYS), features.FEATURE_TRANSFORMS_KEY: options}
    source = TFExampleRecord(str(examples / "Split-train" / "*"), schema=schema)
    started = time.monotonic()
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(work / "tmp"), force_tf_compat_v1=True):
        raw = pipeline | source.BeamSource()
        transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing_fn(inputs, config))
        _ = transform_fn | tft_beam.WriteTransformFn(str(work / "transform"))
    seconds = time.monotonic() - started
    # The raw metadata the Transform component also writes (TFTransformOutput.raw_feature_spec reads it).
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                               str(work / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    output_graph = tft.TFTransformOutput(str(work / "transform"))
    layer = output_graph.transform_features_layer()
    raw_spec = output_graph.raw_feature_spec()
    label_xf = features.transformed_name(label_key)
    spec = output_graph.transformed_feature_spec()

    def split(name: str) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        files = [str(f) for f in sorted((examples / f"Split-{name}").iterdir())]
        batches = [layer(tf.io.parse_example(b, raw_spec))
                   for b in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(65_536)]
        merged = {k: tf.concat([b[k] for b in batches], axis=0) for k in batches[0]}
        return {k: v for k, v in merged.items() if k in spec and k != label_xf}, merged[label_xf]

    data = {"train": split("train"), "validation": split("validation"), "eval": split("eval"),
            "layout": feature_layout(output_graph, label_xf)}
    return data, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--candidates", type=json.loads, default=list(CANDIDATES),
                        help="JSON list of feature-transform options ({} is today's transform)")
    parser.add_argument("--crosses-from-train", type=int, default=0, metavar="K",
                        help="also measure crosses of the K pairs with the strongest interaction on each run's "
                             "train split (strongest_pairs)")
    args = parser.parse_args()
    runs = table_runs(args, parser)
    print(f"{'table':<18}{'candidate':<46}{'AUC':>8}{'Brier':>8}{'ECE':>8}{'epochs':>8}{'best':>6}"
          f"{'train s':>9}{'analyse s':>11}")
    for name, output in runs:
        candidates = list(args.candidates)
        if args.crosses_from_train:
            pairs = strongest_pairs(*_train_frame(output, features.LABEL_KEY), args.crosses_from_train)
            print(f"{name}: strongest interactions on train (AIC gain): "
                  + ", ".join(f"{features.cross_name(*p)} {g:.1f}" for p, g in pairs), flush=True)
            candidates.append({"crosses": [list(p) for p, _ in pairs]})
        today = None
        for candidate in candidates:
            with tempfile.TemporaryDirectory(prefix="bench-transforms-") as work:
                data, analyse = transform_splits(output, candidate, Path(work))
                r = train_and_score(data, {}, dict(hparams.DEFAULTS))
            today = r if candidate == {} else today
            paired = ""
            if today is not None and candidate != {}:
                d = paired_auc_difference(r["truth"], r["probability"], today["probability"])
                paired = f"  AUC - today's {d.difference:+.4f} [{d.ci95[0]:+.4f}, {d.ci95[1]:+.4f}]"
            print(f"{name:<18}{json.dumps(candidate):<46}{r['auc']:>8.4f}{r['brier']:>8.4f}{r['ece']:>8.4f}"
                  f"{r['epochs']:>8}{r['best_epoch']:>6}{r['seconds']:>9.1f}{analyse:>11.1f}{paired}", flush=True)


if __name__ == "__main__":
    main()
