"""Raw HTTP helpers for exact-bytes assertions (http.client, loopback only), and `wait_for` for polled state."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
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
