"""`modules/runtime.py`: tf-keras is never converted by AutoGraph, however often the setting is applied."""
from __future__ import annotations


def test_tf_keras_is_never_converted_by_autograph() -> None:
    from tensorflow.python.autograph.core import config as autograph_config

    from modules.runtime import skip_autograph_for_tf_keras

    skip_autograph_for_tf_keras()
    skip_autograph_for_tf_keras()
    rules = [r for r in autograph_config.CONVERSION_RULES if r.matches("tf_keras.src.engine.training")]
    assert len(rules) == 1 and isinstance(rules[0], autograph_config.DoNotConvert)
