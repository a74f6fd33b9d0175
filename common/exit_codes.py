"""Exit codes of the project's command-line tools, defined once; docs/pipeline.md, docs/monitoring.md and
docs/insights.md list which tool returns which.

Shared meanings share a name: 0 success, 1 the run failed, 2 bad usage or unreadable input (argparse's own code),
130 interrupted (128 + SIGINT, the shell convention). Codes 3 and 4 mean different things per tool and get
tool-specific names.
"""
from typing import Final

OK: Final = 0
"""Success (pipeline: a model was pushed; drift: no drift; outcomes: joined)."""
FAILED: Final = 1
"""The run failed (an error a retry or a fix of the environment may cure)."""
USAGE: Final = 2
"""Bad flags or input the tool cannot read (argparse exits with 2 too)."""
INTERRUPTED: Final = 130
"""Stopped by Ctrl-C / SIGINT (128 + 2)."""

# pipeline (python local_pipeline.py)
DATA_VALIDATION: Final = 3
"""Pipeline: the data failed validation against the curated schema; nothing was trained."""
NOT_BLESSED: Final = 4
"""Pipeline: the run finished but the Evaluator did not bless the model, so nothing was pushed."""

# monitoring (python -m monitoring.drift / monitoring.outcomes)
DRIFT: Final = 3
"""monitoring.drift: serving data drifted or skewed from the training data."""
NO_MATCH: Final = 3
"""monitoring.outcomes: no prediction matched a label."""
