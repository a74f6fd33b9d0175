"""Tiny SavedModels for the serving tests, written to temporary directories."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

CHURN_FEATURES = {
    "Age": tf.int64, "Gender": tf.string, "Annual_Income": tf.float32, "Total_Spend": tf.float32,
}


def build_tf2_model(export_dir: Path, offset: float = 2.0) -> Path:
    """half_plus_two-like TF2 model: `serving_default` y = 0.5 * x + offset, plus a churn-like
    multi-input signature `churn` and a `bytes` signature that echoes strings (`echo_bytes`)."""

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(0.5)
            self.b = tf.Variable(offset)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def half_plus(self, x: tf.Tensor) -> dict:
            return {"y": self.w * x + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None], d, name=k) for k, d in CHURN_FEATURES.items()])
        def churn(self, Age, Gender, Annual_Income, Total_Spend) -> dict:  # noqa: N803
            z = tf.cast(Age, tf.float32) * 0.01 + tf.cast(tf.equal(Gender, "Male"), tf.float32)
            p = tf.sigmoid(z + Annual_Income * 1e-5 - Total_Spend * 1e-4)
            return {"churn_probability": p, "churn": tf.cast(p > 0.5, tf.int64)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def echo(self, s: tf.Tensor) -> dict:
            return {"echo_bytes": s, "length": tf.strings.length(s)}

    model = Model()
    tf.saved_model.save(model, str(export_dir), signatures={
        "serving_default": model.half_plus, "churn": model.churn, "bytes": model.echo})
    return export_dir


def build_tf1_model(export_dir: Path) -> Path:
    """TF1 half_plus_two with predict (x [-1,1]), classify, regress and a blocking signature."""
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        parsed = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
        y = tf.add(0.5 * x, 2.0, name="y")
        y_ex = 0.5 * parsed["x"] + 2.0
        queue = tf.queue.FIFOQueue(1, [tf.float32])
        blocked = queue.dequeue() + x
        info = tf.compat.v1.saved_model.utils.build_tensor_info
        build = tf.compat.v1.saved_model.signature_def_utils.build_signature_def
        signatures = {
            "serving_default": build({"x": info(x)}, {"y": info(y)}, "tensorflow/serving/predict"),
            "classify_x_to_y": build({"inputs": info(serialized)}, {"scores": info(y_ex)},
                                     "tensorflow/serving/classify"),
            "regress_x_to_y": build({"inputs": info(serialized)}, {"outputs": info(y_ex)},
                                    "tensorflow/serving/regress"),
            "blocking": build({"x": info(x)}, {"y": info(blocked)}, "tensorflow/serving/predict"),
        }
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
            builder.save()
    return export_dir


WITH_IDS_THRESHOLD = 0.3
"""The decision threshold `build_churn_with_ids_model` stores with the model (not the 0.5 fallback)."""


def build_churn_with_ids_model(export_dir: Path) -> Path:
    """A churn-like model with the real model's id signature: `serving_default` (CHURN_FEATURES ->
    `churn_probability`, `churn`) and `serving_with_ids` (the same plus `Customer_ID`, int64, returned as it
    came), and its decision threshold (`WITH_IDS_THRESHOLD`) in `assets.extra/threshold.json`."""
    from modules import threshold
    from modules.features import CLASS_OUTPUT, ID_KEYS, PROBABILITY_OUTPUT
    from modules.signatures import WITH_IDS_SIGNATURE

    features = {k: tf.TensorSpec([None], d, name=k) for k, d in CHURN_FEATURES.items()}
    ids = {k: tf.TensorSpec([None], tf.int64, name=k) for k in ID_KEYS}

    def predict(inputs: dict) -> dict:
        p = tf.sigmoid((tf.cast(inputs["Age"], tf.float32) - 44.0) / 8.0)
        return {PROBABILITY_OUTPUT: p, CLASS_OUTPUT: tf.cast(p >= WITH_IDS_THRESHOLD, tf.int64)}

    class Model(tf.Module):
        @tf.function(input_signature=[features])
        def serve(self, inputs: dict) -> dict:
            return predict(inputs)

        @tf.function(input_signature=[{**features, **ids}])
        def serve_with_ids(self, inputs: dict) -> dict:
            return {**predict(inputs), **{k: tf.identity(inputs[k]) for k in ID_KEYS}}

    model = Model()
    tf.saved_model.save(model, str(export_dir), signatures={"serving_default": model.serve,
                                                            WITH_IDS_SIGNATURE: model.serve_with_ids})
    threshold.write(str(export_dir), threshold.Threshold(value=WITH_IDS_THRESHOLD, method=threshold.GIVEN))
    return export_dir
