"""A real Pushgateway (Debian `prometheus-pushgateway`) on a free port, in memory, for tests."""
from __future__ import annotations

import subprocess
import time
import urllib.request
from typing import Dict, Iterator

from tests.monitoring.conftest import free_port, require


def pushgateway() -> Iterator[str]:
    """Starts a Pushgateway, yields its `127.0.0.1:port`, stops it."""
    port = free_port()
    # --persistence.file= keeps metrics in memory (the Debian default persists to /var/lib/prometheus).
    process = subprocess.Popen([require("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}",
                                "--persistence.file="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def samples(address: str, prefix: str) -> Dict[str, float]:
    """`series{labels}` -> value of the gateway's metrics whose name starts with `prefix`."""
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(prefix)}
