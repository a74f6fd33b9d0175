"""Minimal HTTP/1.1 server on asyncio (stdlib only), built for keep-alive throughput.

One `asyncio.Protocol` per connection parses requests straight from the socket buffer
(Content-Length or chunked bodies, `Expect: 100-continue`, gzip request bodies, pipelining) and
hands them to `RestApi.handle`. Model runs happen on worker threads; the event loop only parses,
encodes and writes. Limits: header block size, body size (413), idle connections are closed.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from email.utils import formatdate
from http import HTTPStatus
from typing import Dict, List, Optional, Set, Tuple

from serving.api.rest import HTML, Request, Response, RestApi

LOG = logging.getLogger(__name__)
MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 2.0
"""After refusing a request whose body is still arriving, how long unread input is drained."""
_BAD_REQUEST_HTML = (b"<HTML><HEAD>\n<TITLE>400 Bad Request</TITLE>\n</HEAD><BODY>\n"
                     b"<H1>Bad Request</H1>\n</BODY></HTML>\n")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[499] = "Client Closed Request"


class _BadRequest(Exception):
    pass


class _TooLarge(Exception):
    pass


_date_cache: List[object] = [0, b""]


def _http_date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date_cache[1]  # type: ignore[return-value]


def _dechunk(buf: bytearray, start: int, limit: int) -> Optional[Tuple[bytes, int]]:
    """Decodes a complete chunked body at `buf[start:]`, or None if more bytes are needed."""
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest() from None
        if size < 0:
            raise _BadRequest()
        if len(body) + size > limit:
            raise _TooLarge()
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)
            return (bytes(body), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2: eol + 2 + size]
        if buf[eol + 2 + size: eol + 4 + size] != b"\r\n":
            raise _BadRequest()
        pos = eol + 4 + size


class _Connection(asyncio.Protocol):
    def __init__(self, server: "HttpServer") -> None:
        self._server = server
        self._app = server.app
        self._limit = server.max_body_bytes
        self._buf = bytearray()
        self._busy = False
        self._closing = False
        self._sent_continue = False
        self._draining = False
        self._transport: Optional[asyncio.Transport] = None
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._closing = True
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        self.last_active = time.monotonic()
        self._buf += data
        if not self._busy:
            self._process()

    @property
    def idle(self) -> bool:
        return not self._busy

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _process(self) -> None:
        while not self._busy and not self._closing and self._buf:
            try:
                parsed = self._parse()
            except _BadRequest:
                self._refuse(Response(400, _BAD_REQUEST_HTML, HTML))
                return
            except _TooLarge as err:
                target = err.args[0] if err.args else ""
                self._refuse(self._app.oversized(target, self._limit))
                return
            if parsed is None:
                return
            request, keep_alive = parsed
            try:
                reply = self._app.handle(request)
            except Exception:  # a bug must cost one request, never the connection loop
                LOG.exception("Unhandled error for %s %s", request.method, request.target)
                reply = Response(500, b'{\n    "error": "Internal server error"\n}')
            if isinstance(reply, Response):
                self._send(reply, keep_alive, request.method == "HEAD")
            else:
                self._busy = True
                reply.then(lambda response, k=keep_alive: self._finish(response, k))

    def _refuse(self, response: Response) -> None:
        """Answers and half-closes, then drains what the client still sends before closing:
        closing with unread input makes the kernel reset the connection, and a client still
        writing its body would lose the answer."""
        self._write(response, keep_alive=False)
        transport = self._transport
        if transport is None or self._closing:
            return
        self._draining = True
        self._buf.clear()
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.close)

    def _finish(self, response: Response, keep_alive: bool) -> None:
        self._busy = False
        if self._closing:
            return
        self._send(response, keep_alive)
        self._process()

    def _parse(self) -> Optional[Tuple[Request, bool]]:
        buf = self._buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                raise _BadRequest()
            return None
        lines = bytes(buf[:head_end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1]:
            raise _BadRequest()
        method, target, version = parts
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest()
            key = name.lower()
            if key == "content-length" and key in headers and headers[key] != value.strip():
                raise _BadRequest()
            headers[key] = value.strip()
        body_start = head_end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._maybe_continue(headers, version)
            try:
                decoded = _dechunk(buf, body_start, self._limit)
            except _TooLarge:
                raise _TooLarge(target) from None
            if decoded is None:
                return None
            body, end = decoded
        else:
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit():
                raise _BadRequest()
            length = int(length_text)
            if length > self._limit:
                raise _TooLarge(target)
            if len(buf) < body_start + length:
                self._maybe_continue(headers, version)
                return None
            body, end = bytes(buf[body_start: body_start + length]), body_start + length
        del buf[:end]
        self._sent_continue = False
        if headers.get("content-encoding", "").lower() == "gzip":
            body = self._gunzip(body, target)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return Request(method, target, headers, body), keep_alive

    def _gunzip(self, body: bytes, target: str) -> bytes:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, self._limit + 1)
        except zlib.error:
            raise _BadRequest() from None
        if len(data) > self._limit:
            raise _TooLarge(target)
        return data

    def _maybe_continue(self, headers: Dict[str, str], version: str) -> None:
        if (not self._sent_continue and version == "HTTP/1.1"
                and headers.get("expect", "").lower() == "100-continue" and self._transport):
            self._sent_continue = True
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send(self, response: Response, keep_alive: bool, head_only: bool = False) -> None:
        self._write(response, keep_alive, head_only)
        if not keep_alive:
            self.close()

    def _write(self, response: Response, keep_alive: bool, head_only: bool = False) -> None:
        if self._transport is None or self._closing:
            return
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, _REASONS.get(response.status, "Unknown").encode())]
        if response.content_type:
            lines.append(b"Content-Type: " + response.content_type.encode() + b"\r\n")
        for name, value in response.headers:
            lines.append(f"{name}: {value}\r\n".encode())
        lines.append(b"Date: " + _http_date() + b"\r\nContent-Length: %d\r\n" % len(response.body))
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        if not head_only:
            lines.append(response.body)
        self._transport.write(b"".join(lines))


class HttpServer:
    """Owns the listening socket and the live connections."""

    def __init__(self, app: RestApi, host: str, port: int, max_body_bytes: int,
                 idle_timeout_seconds: float = 75.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout_seconds
        self.connections: Set[_Connection] = set()
        self._server: Optional[asyncio.AbstractServer] = None
        self._sweeper: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=1024, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_timeout, 5.0))
            cutoff = time.monotonic() - self.idle_timeout
            for conn in [c for c in self.connections if c.idle and c.last_active < cutoff]:
                conn.close()

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        if self._server:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            await self._server.wait_closed()
