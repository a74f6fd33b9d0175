"""Test-wide set-up that must happen before TensorFlow is imported by any test module, and per-test time limits."""
import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

E2E_TIMEOUT_S = 1500
"""Limit of an end-to-end test, its fixtures included: the first test that uses a session fixture pays for the
pipeline run behind it (`run_pipeline` allows a run 900 s), plus servers started on its outputs. Unit tests get
pyproject.toml's `timeout` (pytest-timeout, `signal` method): a hung server fails that one test with a traceback
of where it hung instead of stalling the whole suite."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests get E2E_TIMEOUT_S unless they set their own `@pytest.mark.timeout`."""
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_S))
