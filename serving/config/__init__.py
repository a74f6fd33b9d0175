"""Flags and config files (tensorflow_model_server's names) and the config protos the wheel lacks; the shipped `.config` files live beside them."""
