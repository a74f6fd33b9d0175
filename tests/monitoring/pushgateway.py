"""A real Pushgateway (Debian `prometheus-pushgateway`) on a free port, in memory, for tests."""
from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from monitoring.alerting import (
    ALERTMANAGER_BINARY,
    ALERTMANAGER_PACKAGE,
    PUSHGATEWAY_BINARY,
    PUSHGATEWAY_PACKAGE,
    pushgateway_command,
)
from monitoring.prometheus import install_command
from tests.helpers import free_port

PACKAGES = {PUSHGATEWAY_BINARY: PUSHGATEWAY_PACKAGE, ALERTMANAGER_BINARY: ALERTMANAGER_PACKAGE,
            "amtool": ALERTMANAGER_PACKAGE}
"""Debian package of each binary the alerting tests run."""


def require_package_binary(binary: str) -> str:
    """Path of `binary`; the test fails with the command that installs its package when it is missing."""
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed; install it with: {install_command(PACKAGES[binary])}")
    return path


def pushgateway() -> Iterator[str]:
    """Starts a Pushgateway, yields its `127.0.0.1:port`, stops it."""
    port = free_port()
    process = subprocess.Popen(pushgateway_command(require_package_binary(PUSHGATEWAY_BINARY), port=port),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def samples(address: str, prefix: str) -> dict[str, float]:
    """`series{labels}` -> value of the gateway's metrics whose name starts with `prefix`."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(prefix)}
