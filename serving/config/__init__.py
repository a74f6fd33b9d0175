"""Flags and config files (tensorflow_model_server's names) and the config protos the wheel lacks.

The shipped `.config` files live beside them.
"""
