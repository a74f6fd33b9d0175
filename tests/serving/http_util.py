"""Raw HTTP helpers for exact-bytes assertions (http.client, loopback only), and `wait_for` for polled state."""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Reply = tuple[int, dict[str, str], bytes]


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post(port: int, path: str, body: Any) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(port, "POST", path, data)


def get(port: int, path: str) -> Reply:
    return call(port, "GET", path)


def error_of(reply: Reply) -> str:
    """The message of a TF Serving error body, checking the exact body layout too."""
    _, headers, body = reply
    assert headers["content-type"] == "application/json"
    assert body.startswith(b'{\n    "error": "') and body.endswith(b'"\n}')
    return json.loads(body)["error"]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def states(port: int, name: str = "m") -> list[tuple]:
    status, _, body = get(port, f"/v1/models/{name}")
    assert status == 200
    return [(int(v["version"]), v["state"], v["status"]["error_code"])
            for v in json.loads(body)["model_version_status"]]


def predict_one(port: int) -> float:
    status, _, body = post(port, "/v1/models/m:predict", {"instances": [2.0]})
    assert status == 200, body
    return json.loads(body)["predictions"][0]


@contextmanager
def predictions_under_load(port: int, threads: int, limit: int = 20_000) -> Iterator[list[object]]:
    """`predict_one(port)` in a loop on `threads` threads while the block runs (at most `limit` calls in all).

    Yields the list every result is appended to: the prediction, or the AssertionError of a failed request.
    The threads are stopped and joined when the block ends, so the list is complete after it."""
    results: list[object] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set() and len(results) < limit:
            try:
                results.append(predict_one(port))
            except AssertionError as err:
                results.append(err)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield results
    finally:
        stop.set()
        for worker in workers:
            worker.join()
