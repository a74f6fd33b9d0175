#!/usr/bin/env python3
"""Run the churn pipeline with TFX's LocalDagRunner: `python local_pipeline.py --help`."""
import os
import sys

# TFX 1.16 on TF 2.16 needs Keras 2 (tf-keras), chosen by this variable before Python starts.
if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.execv(sys.executable, [sys.executable, *sys.argv])

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
