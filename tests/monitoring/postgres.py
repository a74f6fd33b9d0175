"""A throw-away PostgreSQL server from the Debian package, for tests: its own cluster in a temp dir,
on a free port, run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring.prometheus import install_command
from tests.helpers import free_port

APT_PACKAGE = "postgresql"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"PostgreSQL's {name} is not installed; install it with: {install_command(APT_PACKAGE)}")
    return found[-1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], timeout: float) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr or done.stdout}")


def postgres_server() -> Iterator[str]:
    """Starts a cluster in a fresh temp dir, yields its SQLAlchemy URL, stops it and removes the dir.

    The dir is made directly under the system temp dir (pytest's are private to root, which the
    `postgres` user cannot enter)."""
    root = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    try:
        yield from _serve(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(root: Path) -> Iterator[str]:
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for d in (data, sockets):
            shutil.chown(d, "postgres")
    _run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], timeout=120)
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "-t", "60", "start"],
         timeout=90)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
