"""Headless Chromium for tests: the rendered DOM of a page, and a screenshot of it.

Each call starts a fresh browser with a new empty profile, so no state leaks between tests. The
flags make it work as root in a container with no GPU and no network access beyond the page.
Tests need `/usr/bin/chromium` (Debian package `chromium`): without it they fail, they do not skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipeline.config import PROJECT_ROOT

CHROMIUM = "chromium"
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
)


def artifacts_dir() -> Path:
    """Where tests save files for people to look at: `$TEST_ARTIFACTS_DIR`, else `test-artifacts/`."""
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR") or PROJECT_ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def dump_dom(url: str, timeout: float = 120) -> str:
    """The page's DOM after load (scripts run), as HTML text."""
    return _chromium(["--dump-dom", url], timeout).stdout


def screenshot(url: str, path: Path, width: int = 1280, height: int = 2000, timeout: float = 120) -> Path:
    """Save a PNG of the page's top `width` x `height` pixels to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    proc = _chromium([f"--screenshot={path}", f"--window-size={width},{height}", url], timeout)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {path}: {proc.stderr[-2000:]}")
    return path


def _chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(CHROMIUM)
    if binary is None:
        raise RuntimeError(f"{CHROMIUM} not found on PATH: install the Debian package 'chromium'")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run([binary, *_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return proc
