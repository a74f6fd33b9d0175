"""Raw HTTP helpers for exact-bytes assertions (http.client, loopback only)."""
from __future__ import annotations

import http.client
import json
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
