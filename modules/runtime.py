"""Process-wide TensorFlow settings the pipeline needs; safe to apply more than once."""
from __future__ import annotations

from tensorflow.python.autograph.core import config as autograph_config

_TF_KERAS = "tf_keras"


def skip_autograph_for_tf_keras() -> None:
    """Stop AutoGraph from converting tf-keras' own code the first time a model is traced.

    TF 2.16 lists `keras` among the libraries AutoGraph never converts, but not the separate
    `tf_keras` package that Keras 2 now lives in, so the first `fit()` in a process transpiles
    hundreds of tf-keras functions, most of the Trainer's time on the bundled data (measured:
    docs/performance.md, "Pipeline"). tf-keras is written for graph mode, so converting it gains nothing.
    """
    rules = autograph_config.CONVERSION_RULES
    if not any(isinstance(r, autograph_config.DoNotConvert) and r.matches(_TF_KERAS) for r in rules):
        autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert(_TF_KERAS), *rules)
