"""Serving signatures exported with the model; all of them share one Transform graph and one model.

- `serving_default`: one named input per raw feature, a scalar per row, so REST clients send
  `{"instances": [{"Age": 30, "Gender": "Male", ...}]}`; outputs `churn_probability` and `churn`.
  Every signature's `churn_probability` is the calibrated one (modules/calibration.py: Platt scaling
  fitted on the validation split, the identity when it did not lower the validation Brier score),
  and `churn` is decided on it: 1 when it is >= the model's decision threshold (modules/threshold.py,
  chosen on the validation split and held in the graph as a constant).
- `serving_tf_example`: serialized tf.Examples (Evaluator, batch scoring); same outputs.
- `transform_features`: serialized tf.Examples -> transformed features including the label (TFMA).
- `segment`: the same raw inputs as `serving_default` -> `segment` (int64), the customer segment
  (modules/segments.py) whose centroid is nearest to the customer's z-scored behavioural features.
- `explain`: the same raw inputs as `serving_default` -> `churn_probability` (the same calibrated value)
  and, per model feature, `<feature>_attribution`: its integrated-gradients attribution on the model's
  own logit scale, before calibration (modules/attribution.py; positive = towards churn).
- `serving_with_ids`: the inputs of `serving_default` plus the id column(s) (`id_keys`, the pipeline's
  `--id-columns`, `modules.features.ID_KEYS` by default; each one scalar per row of its raw dtype) ->
  the same `churn_probability` and `churn` as `serving_default` plus each id column returned as it came
  (`[N]`), so a caller, and our server's prediction store, keep each prediction with whom it was for.
  A plain SignatureDef (identity on the ids, no custom op): TF Serving serves it as is. Only exported
  when the data has id columns.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from modules import attribution, calibration, features
from modules import threshold as decision
from modules.model import encoder, logit, model_layout
from modules.segments import Segmentation

SEGMENT_SIGNATURE = SEGMENT_OUTPUT = "segment"
EXPLAIN_SIGNATURE = "explain"
WITH_IDS_SIGNATURE = features.WITH_IDS_SIGNATURE


def make_serving_signatures(
    model: tf.keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    label_key: str,
    id_keys: Iterable[str],
    segmentation: Segmentation | None = None,
    platt: calibration.Platt | None = None,
    threshold: float = decision.FALLBACK,
) -> dict[str, Any]:
    """Concrete functions for `tf.saved_model.save(..., signatures=...)`; `segment` only with a segmentation.

    `platt` calibrates every signature's churn_probability (None: the model's own probability);
    `churn` is 1 where that probability is >= `threshold` (in (0, 1); ValueError otherwise).
    `id_keys` present in the raw schema become `serving_with_ids`' extra inputs and outputs."""
    id_keys = list(id_keys)
    platt = platt or calibration.Platt()
    threshold = decision.check_value(threshold)
    # Attached as an attribute so the vocabulary assets and tables are saved with the model.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    excluded = {label_key, *id_keys}
    serving_spec = {k: v for k, v in raw_spec.items() if k not in excluded}
    label_xf = features.transformed_name(label_key)

    def predict(raw_features: dict[str, Any]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer(raw_features)
        transformed.pop(label_xf, None)
        probability = calibration.apply(tf.reshape(model(transformed), [-1]), platt)
        churn = tf.cast(probability >= tf.constant(threshold, probability.dtype), tf.int64)
        return {features.PROBABILITY_OUTPUT: probability, features.CLASS_OUTPUT: churn}

    @tf.function
    def serve_raw(raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return predict({k: as_parsed(raw[k], serving_spec[k]) for k in serving_spec})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_example(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return predict(tf.io.parse_example(examples, serving_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    raw_inputs = {k: tf.TensorSpec([None], spec.dtype, name=k) for k, spec in serving_spec.items()}
    layout = model_layout(model, sorted(serving_spec))
    encode = encoder(model)

    @tf.function
    def explain(raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer({k: as_parsed(raw[k], serving_spec[k]) for k in serving_spec})
        transformed.pop(label_xf, None)
        outputs = {features.PROBABILITY_OUTPUT: calibration.apply(tf.reshape(model(transformed), [-1]), platt)}
        found = attribution.feature_attributions(lambda e: logit(model, e), encode(transformed), layout)
        outputs.update({features.attribution_name(k): v for k, v in found.items()})
        return outputs

    id_inputs = {k: tf.TensorSpec([None], raw_spec[k].dtype, name=k) for k in id_keys if k in raw_spec}

    @tf.function
    def serve_with_ids(raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = predict({k: as_parsed(raw[k], serving_spec[k]) for k in serving_spec})
        # [N], as TF Serving would return any rank-1 output; the identity keeps the ids as they came.
        outputs.update({k: tf.identity(tf.reshape(raw[k], [-1])) for k in id_inputs})
        return outputs

    signatures = {
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serve_raw.get_concrete_function(raw_inputs),
        "serving_tf_example": serve_tf_example.get_concrete_function(),
        features.TRANSFORM_FEATURES_SIGNATURE: transform_features.get_concrete_function(),
        EXPLAIN_SIGNATURE: explain.get_concrete_function(raw_inputs),
    }
    if id_inputs:
        signatures[WITH_IDS_SIGNATURE] = serve_with_ids.get_concrete_function({**raw_inputs, **id_inputs})
    if segmentation is not None:
        centroids = tf.constant(segmentation.centroids, tf.float32)
        columns = [features.transformed_name(c) for c in segmentation.columns]

        @tf.function
        def segment(raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            transformed = model.tft_layer({k: as_parsed(raw[k], serving_spec[k]) for k in serving_spec})
            points = tf.concat([tf.cast(transformed[c], tf.float32) for c in columns], axis=1)
            distances = tf.reduce_sum(tf.square(points[:, None, :] - centroids[None, :, :]), axis=2)
            return {SEGMENT_OUTPUT: tf.argmin(distances, axis=1, output_type=tf.int64)}

        signatures[SEGMENT_SIGNATURE] = segment.get_concrete_function(raw_inputs)
    return signatures


def as_parsed(column: tf.Tensor, spec: Any) -> Any:
    """One scalar per row -> the tensor `tf.io.parse_example` would give for this column's spec.

    The column is flattened first, so the `[N, 1]` tensors of REST values wrapped in one-element
    lists and the rank-0 tensors of scalar columnar requests, which TF Serving feeds to the graph
    as they come (it checks no shapes), mean the same rows as a plain `[N]` column.
    """
    if isinstance(spec, tf.io.VarLenFeature):
        values = tf.reshape(column, [-1])
        rows = tf.shape(values, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
        return tf.sparse.SparseTensor(indices, values, [rows, 1])
    return tf.reshape(column, [-1, *spec.shape])
