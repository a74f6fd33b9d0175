"""Transform's `preprocessing_fn`: raw CSV columns -> model-ready tensors.

Behaviour on messy data (documented in docs/data.md):
- identifier columns are dropped; the model never sees them;
- numeric features are z-scored with the training mean and deviation; missing cells become 0, the mean;
- categorical (string) features get a vocabulary computed on the training split; missing cells and
  categories never seen in training map to one shared out-of-vocabulary index;
- other transforms TFT has (`features.FEATURE_TRANSFORMS`: signed log1p, `tft.scale_to_gaussian`, quantile
  buckets, a vocabulary frequency threshold, crosses of column pairs) are options that only
  bench/bench_transforms.py sets: measured on the benchmark tables, none beat the defaults above
  (docs/performance.md, "Feature transforms, batch size and normalisation");
- the label becomes int64 1 when it equals the positive label (e.g. `1`, `Yes`, `True`), else 0.
Every output has shape [batch, 1].
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from modules import features


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """TFX Transform calls this with every raw column and the pipeline's `custom_config`."""
    label_key = custom_config["label_key"]
    options = transform_options(custom_config.get(features.FEATURE_TRANSFORMS_KEY))
    keys = features.model_feature_keys(inputs, label_key, custom_config["id_keys"])
    outputs = {}
    for key in keys:
        if inputs[key].dtype == tf.string:
            text = _densify(inputs[key], default="")
            outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
                text,
                num_oov_buckets=features.VOCAB_OOV_BUCKETS,
                vocab_filename=features.vocabulary_name(key),
                frequency_threshold=int(options["vocabulary_frequency_threshold"]) or None,
            )
        else:
            value = tf.cast(inputs[key], tf.float32)
            # Scaled with statistics of the values present; a missing value becomes 0, i.e. the training
            # mean (of the transformed values). One analyzer pass (imputing first would need a second pass).
            scaled = _scale(value, str(options["numeric"]))
            outputs[features.transformed_name(key)] = _densify(scaled, default=0.0)
            if options["quantile_buckets"]:
                # Quantiles of the scaled value (a monotone map of the raw one); a missing value, scaled to 0,
                # gets the training mean's bucket.
                bucket = tft.bucketize(outputs[features.transformed_name(key)], int(options["quantile_buckets"]))
                outputs[features.transformed_name(features.bucket_name(key))] = bucket
    for first, second in options["crosses"]:
        name = features.cross_name(first, second)
        outputs[features.transformed_name(name)] = tft.compute_and_apply_vocabulary(
            tf.strings.join([_cross_part(inputs, first, options), _cross_part(inputs, second, options)],
                            separator="|"),
            num_oov_buckets=features.VOCAB_OOV_BUCKETS,
            vocab_filename=features.vocabulary_name(name),
        )
    outputs[features.transformed_name(label_key)] = encode_label(
        inputs[label_key], custom_config["positive_label"]
    )
    return outputs


def transform_options(given: dict[str, Any] | None) -> dict[str, Any]:
    """`features.FEATURE_TRANSFORMS` overridden by `given` (the `custom_config` entry, or None).

    Raises:
      ValueError: an unknown option, an unknown numeric transform, or a negative count.
    """
    options = {**features.FEATURE_TRANSFORMS, **(given or {})}
    unknown = sorted(set(options) - set(features.FEATURE_TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown feature transform option(s): {', '.join(unknown)}; "
                         f"known: {', '.join(features.FEATURE_TRANSFORMS)}")
    if options["numeric"] not in features.NUMERIC_TRANSFORMS:
        raise ValueError(f"numeric transform must be one of {', '.join(features.NUMERIC_TRANSFORMS)}, "
                         f"got {options['numeric']!r}")
    for name in ("quantile_buckets", "vocabulary_frequency_threshold", "cross_buckets"):
        if int(options[name]) < 0 or int(options[name]) != options[name]:
            raise ValueError(f"{name} must be a whole number >= 0, got {options[name]!r}")
    crosses = options["crosses"]
    if isinstance(crosses, str) or not all(
            not isinstance(p, str) and len(p) == 2 and all(isinstance(c, str) for c in p) and p[0] != p[1]
            for p in crosses):
        raise ValueError(f"crosses must be a list of [column, other column] name pairs, got {crosses!r}")
    if crosses and options["cross_buckets"] < 2:
        raise ValueError(f"cross_buckets must be >= 2 when crossing, got {options['cross_buckets']!r}")
    options["crosses"] = tuple(tuple(p) for p in crosses)
    return options


def _cross_part(inputs: dict[str, Any], key: str, options: dict[str, Any]) -> tf.Tensor:
    """[batch, 1] text of one side of a cross: a string column's value, or a numeric column's training-quantile
    bucket index ("0".."cross_buckets - 1"); "" where the value is missing.

    Raises:
      ValueError: `key` is not a raw column.
    """
    if key not in inputs:
        raise ValueError(f"feature cross names column {key!r}, which the data does not have; "
                         f"columns: {', '.join(sorted(inputs))}")
    if inputs[key].dtype == tf.string:
        return _densify(inputs[key], default="")
    # Quantiles of the raw values present (one analyzer before the cross's vocabulary: a z-score first would
    # make three chained analyzer phases, which Beam's in-process runner does not finish).
    bucket = tft.bucketize(tf.cast(inputs[key], tf.float32), int(options["cross_buckets"]))
    if isinstance(bucket, tf.sparse.SparseTensor):
        return _densify(tf.sparse.map_values(tf.strings.as_string, bucket), default="")
    return _densify(tf.strings.as_string(bucket), default="")


def _scale(value: Any, numeric: str) -> Any:
    if numeric == features.GAUSSIAN:
        return tft.scale_to_gaussian(value)
    if numeric == features.SIGNED_LOG1P:
        signed = lambda v: tf.sign(v) * tf.math.log1p(tf.abs(v))  # noqa: E731
        value = (tf.sparse.map_values(signed, value) if isinstance(value, tf.sparse.SparseTensor)
                 else signed(value))
    return tft.scale_to_z_score(value)


def encode_label(label: Any, positive_label: str) -> tf.Tensor:
    """1 where the label equals `positive_label`, compared as text or as a number as the column is."""
    if label.dtype == tf.string:
        positive = tf.equal(_densify(label, default=""), positive_label)
    else:
        positive = tf.equal(tf.cast(_densify(label, default=0), tf.float64), float(positive_label))
    return tf.cast(positive, tf.int64)


def _densify(value: Any, default: Any) -> tf.Tensor:
    """[batch, 1] dense tensor; a sparse (sometimes-missing) column gets `default` where it is empty."""
    if isinstance(value, tf.sparse.SparseTensor):
        shaped = tf.sparse.SparseTensor(value.indices, value.values, [value.dense_shape[0], 1])
        return tf.sparse.to_dense(shaped, default_value=tf.cast(default, value.dtype))
    return tf.reshape(value, [-1, 1])
