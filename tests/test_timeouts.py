"""The suite's time limits: a hung test fails alone, with a message, instead of stalling `make test`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.config import PROJECT_ROOT

HANGING = '''
import time
import pytest

def test_unit_hangs():
    time.sleep(60)

@pytest.mark.e2e
def test_e2e_waits_longer():
    time.sleep(3)
'''


def test_a_hung_test_fails_with_a_timeout_and_e2e_tests_get_the_longer_limit(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_hanging.py").write_text(HANGING)
    # The project's own pytest settings and root conftest, with the unit-test limit shortened to 1 s.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(PROJECT_ROOT / "pyproject.toml"), "--rootdir", str(PROJECT_ROOT),
         "-p", "conftest", "-o", "timeout=1", "-p", "no:cacheprovider", str(tests), "-q"],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_unit_hangs - Failed: Timeout (>1.0s)" in proc.stdout, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout  # the e2e test outlived 1 s under E2E_TIMEOUT_S
