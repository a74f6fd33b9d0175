"""TFX user code: feature definitions, Transform's preprocessing_fn, the Keras model and its signatures."""
