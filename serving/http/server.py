"""HTTP/1.1 server: llhttp (via httptools) framing under our own `asyncio.Protocol`.

Framing is not ours: `httptools.HttpRequestParser` (Node.js' llhttp) splits the byte stream into
requests and enforces RFC 9112 (section 6.3): `Content-Length` together with `Transfer-Encoding`,
a coding other than a final `chunked`, an invalid or duplicate length, an invalid chunk size, a
bare LF or an invalid request line all fail the parse, and a failed parse answers 400 and closes
the connection, so no second request can be smuggled behind the first. We only accept versions
1.0 and 1.1 (llhttp also parses 0.9 and 2.0 request lines).

Flow control and bounded work (TF Serving runs its REST handlers on worker threads so one client
cannot hold the others up; here one event loop serves every connection, so each connection takes
small turns):
- a connection answers its requests in order, one request per loop turn; pipelined requests wait
  in a queue holding at most what one socket read carried, because reading pauses as soon as data
  arrives while a request is in flight, and resumes when the queue is empty;
- while the transport's write buffer is past its high-water mark (`pause_writing`), no further
  request of that connection is processed and reading is paused: a client that never reads its
  answers costs at most one read of requests plus the transport's buffer;
- request bodies are joined once (no rescanning of a growing buffer), their size is checked from
  `Content-Length` before any of the body is read, and large bodies are decoded off the loop
  (`RestApi`).

Limits (`HttpLimits`, flags in `serving.config.server_config`): header block size (431), body size
(413, `--max_request_bytes`), decompressed size (413), open connections (past the cap a new
connection gets 503 and is closed; open ones keep working), time to send a request head (408) and
idle keep-alive time (JSON depth and number digits are in `HttpLimits` too, but `RestApi` applies
them). A failing `accept()` (e.g. out of file descriptors) is logged once until
accepting works again, not once per retry.

A client that half-closes (shuts down its sending side) still receives the answers to the requests
it sent; the connection closes after the last one. `HttpServer.drain()` stops accepting and waits
for in-flight requests (SIGTERM, `serving.main`).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
import zlib
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import httptools

from serving.api.rest import HTML, Request, Response, RestApi
from serving.http.limits import HttpLimits

LOG = logging.getLogger(__name__)
LINGER_SECONDS = 2.0
"""After refusing a request whose body is still arriving, how long unread input is drained."""
SUPPORTED_VERSIONS = ("1.0", "1.1")
ACCEPT_ERROR_MESSAGE = "socket.accept() out of system resource"
"""asyncio's message when `accept()` fails (EMFILE, ENFILE, ENOBUFS, ENOMEM); it retries every second."""
DRAIN_POLL_SECONDS = 0.02
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[499] = "Client Closed Request"


def _html_error(status: int) -> Response:
    phrase = _REASONS[status]
    return Response(status, (f"<HTML><HEAD>\n<TITLE>{status} {phrase}</TITLE>\n</HEAD><BODY>\n"
                             f"<H1>{phrase}</H1>\n</BODY></HTML>\n").encode(), HTML)


BAD_REQUEST = _html_error(400)
HEADERS_TOO_LARGE = _html_error(431)
REQUEST_TIMEOUT = _html_error(408)
TOO_MANY_CONNECTIONS = _html_error(503)


class _Refusal(Exception):
    """Raised inside parser callbacks: answer `response`, then close."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


_date_cache: list[object] = [0, b""]


def _http_date() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date_cache[1]  # type: ignore[return-value]


def _origin_form(target: str) -> str:
    """The request target with an absolute-form URL (RFC 9112 section 3.2.2) reduced to its path and query."""
    if target.startswith(("http://", "https://")):
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    return target


_HEADS: dict[tuple[int, str | None, tuple[tuple[str, str], ...]], bytes] = {}
_MAX_HEADS = 256


def _response_head(response: Response) -> bytes:
    """Status line, `Content-Type` and the response's own header fields, built once per distinct
    (status, content type, fields): the server's responses use a handful."""
    key = (response.status, response.content_type, response.headers)
    head = _HEADS.get(key)
    if head is None:
        lines = [b"HTTP/1.1 %d %s\r\n" % (response.status, _REASONS.get(response.status, "Unknown").encode())]
        if response.content_type:
            lines.append(b"Content-Type: " + response.content_type.encode() + b"\r\n")
        for name, value in response.headers:
            lines.append(f"{name}: {value}\r\n".encode())
        head = b"".join(lines)
        if len(_HEADS) < _MAX_HEADS:
            _HEADS[key] = head
    return head


_Item = tuple[Request, bool] | Response
"""A queued request with its keep-alive flag, or a refusal to send once the requests before it are answered."""


class _Connection(asyncio.Protocol):
    """One client connection; see the module docstring for the flow-control rules."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._app = server.app
        self._limits = server.limits
        self._max_body = server.max_body_bytes
        self._max_header_bytes = server.limits.max_header_bytes
        self._loop = asyncio.get_event_loop()
        self._transport: asyncio.Transport | None = None
        self._queue: collections.deque[_Item] = collections.deque()
        self._busy = False  # a reply is being computed on a worker thread
        self._scheduled = False  # a _process call is pending on the loop
        self._closing = False
        self._draining = False  # refused: reading and discarding until LINGER_SECONDS
        self._stopped = False  # the parser failed or the request upgraded: feed nothing more
        self._eof = False  # the client half-closed
        self._read_paused = False
        self._write_paused = False
        # The message being parsed. llhttp hands over the URL and each header field through
        # C-level methods (`list.append`, `dict.__setitem__`): no Python frame runs per header;
        # the fields become `_headers` (lower-case names) once the head is complete.
        self._url = b""
        self._url_parts: list[bytes] = []
        self._raw_headers: dict[bytes, bytes] = {}
        self.on_url = self._url_parts.append
        self.on_header = self._raw_headers.__setitem__
        self._headers: dict[str, str] = {}
        self._parts: list[bytes] = []
        self._body_bytes = 0
        self._head_bytes = 0
        self._in_head = True
        self.head_started: float | None = time.monotonic()
        self.last_active = time.monotonic()
        # the request whose reply is being computed (one at a time per connection)
        self._reply_keep_alive = True
        self._reply_head_only = False
        self._on_reply = self._finish  # bound once, not per request
        self._parser = httptools.HttpRequestParser(self)  # reads the callbacks above once

    # ---- flow-control state, read-only (diagnostics and tests) --------------------------------------------

    @property
    def reading_paused(self) -> bool:
        """Reading from the client is paused: answers are queued or the client is not reading them."""
        return self._read_paused

    @property
    def writing_paused(self) -> bool:
        """The transport's write buffer is over its high-water mark: the client is not reading."""
        return self._write_paused

    @property
    def queued(self) -> int:
        """Requests and refusals parsed and waiting for their answer, in order."""
        return len(self._queue)

    @property
    def write_buffer_size(self) -> int:
        """Bytes written to the transport and not yet sent (0 before the connection is made)."""
        return 0 if self._transport is None else self._transport.get_write_buffer_size()

        # ---- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        server = self._server
        server.accepted()
        if len(server.connections) >= self._limits.max_connections or server.closing:
            self._refuse(TOO_MANY_CONNECTIONS)
            return
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)

    def eof_received(self) -> bool:
        """The client shut down its sending side: answer what it sent, then close."""
        self._eof = True
        if self._in_head and self._head_bytes and not self._draining and not self._stopped:
            self._queue.append(BAD_REQUEST)  # a request cut off mid-head
        self._kick()
        return True  # keep the transport open for our answers

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._kick()

    def data_received(self, data: bytes) -> None:
        if self._draining or self._stopped:
            return
        self.last_active = time.monotonic()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade/CONNECT: we speak HTTP/1.1 only (RFC 9110 section 7.8 lets us ignore the
            # header): answer the request, read nothing after it, then close.
            self._stopped = True
        except httptools.HttpParserCallbackError as err:
            self._stopped = True
            cause = err.__context__
            self._queue.append(cause.response if isinstance(cause, _Refusal) else BAD_REQUEST)
        except _Refusal as err:
            self._stopped = True
            self._queue.append(err.response)
        except httptools.HttpParserError:
            self._stopped = True
            self._queue.append(BAD_REQUEST)
        if self._in_head and self._head_bytes > self._max_header_bytes and not self._stopped:
            self._stopped = True
            self._queue.append(HEADERS_TOO_LARGE)
        if self._queue:
            if self._busy or len(self._queue) > 1 or self._write_paused:
                self._pause_reading()
            if self._scheduled or self._busy:
                self._kick()
            else:
                self._process()  # the common case, one request per read: answer it now

    # ---- httptools callbacks (on_url and on_header: see __init__) ------------------------
    def on_message_begin(self) -> None:  # the message fields were reset by on_message_complete
        if self.head_started is None:
            self.head_started = self.last_active  # the read being parsed

    def on_headers_complete(self) -> None:
        self._in_head = False
        head_bytes, self._head_bytes = self._head_bytes, 0
        self.head_started = None
        parts = self._url_parts
        self._url = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        raw = self._raw_headers
        # llhttp drops a value's leading whitespace, not its trailing whitespace
        headers = self._headers = {name.decode("latin-1").lower(): value.decode("latin-1").rstrip()
                                   for name, value in raw.items()}
        raw.clear()  # a chunked body's trailer fields arrive here too: never merged into the head
        version = self._parser.get_http_version()
        if version not in SUPPORTED_VERSIONS:
            raise _Refusal(BAD_REQUEST)
        limit = self._max_header_bytes
        if head_bytes > limit and self._head_size() > limit:  # the head arrived in one read
            raise _Refusal(HEADERS_TOO_LARGE)
        length = headers.get("content-length")
        if length is not None and int(length) > self._max_body:  # llhttp validated the digits
            raise _Refusal(self._app.oversized(self._target(), self._max_body))
        if ("expect" in headers and headers["expect"].lower() == "100-continue"
                and self._transport is not None and version == "1.1"
                and (length not in (None, "0") or "transfer-encoding" in headers)):
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._max_body:  # chunked bodies: no length up front
            raise _Refusal(self._app.oversized(self._target(), self._max_body))
        self._parts.append(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._body_bytes = 0
        self._raw_headers.clear()  # trailer fields
        headers = self._headers
        if "content-encoding" in headers and headers["content-encoding"].lower() == "gzip":
            body = self._gunzip(body)
        target = self._url.decode("latin-1")
        if not target.startswith("/"):
            target = _origin_form(target)
        request = Request(self._parser.get_method().decode("ascii"), target, headers, body)
        self._queue.append((request, self._parser.should_keep_alive()))

    # ---- processing ----------------------------------------------------------------------
    def _head_size(self) -> int:
        """Bytes of the request target and header fields just parsed (computed only when the reads
        that carried them were larger than the limit)."""
        return len(self._url) + sum(len(k) + len(v) + 4 for k, v in self._headers.items())

    def _target(self) -> str:
        return _origin_form(self._url.decode("latin-1"))

    def _gunzip(self, body: bytes) -> bytes:
        limit = self._limits.max_decompressed_bytes
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise _Refusal(BAD_REQUEST) from None
        if len(data) > limit:
            raise _Refusal(self._app.oversized(self._target(), limit))
        return data

    def _kick(self) -> None:
        """Processes the next queued request on a later loop turn (one per turn, per connection)."""
        if not self._scheduled and not self._closing:
            self._scheduled = True
            self._loop.call_soon(self._process)

    def _process(self) -> None:
        self._scheduled = False
        if self._busy or self._closing or self._write_paused:
            return
        if not self._queue:
            if self._eof or self._stopped:
                self.close()
            elif self._read_paused and self._transport is not None:
                self._read_paused = False
                self._transport.resume_reading()
            return
        item = self._queue.popleft()
        if isinstance(item, Response):
            self._refuse(item)
            return
        request, keep_alive = item
        try:
            reply: Any = self._app.handle(request)
        except Exception:  # a bug must cost one request, never the connection loop
            LOG.exception("Unhandled error for %s %s", request.method, request.target)
            reply = Response(500, b'{\n    "error": "Internal server error"\n}')
        if isinstance(reply, Response):
            self._send(reply, keep_alive, request.method == "HEAD")
            self._kick()
        else:
            self._busy = True
            self._reply_keep_alive, self._reply_head_only = keep_alive, request.method == "HEAD"
            reply.then(self._on_reply)

    def _finish(self, response: Response) -> None:
        """The reply to the request in flight (`_reply_keep_alive`, `_reply_head_only`)."""
        self._busy = False
        if self._closing:
            return
        self._send(response, self._reply_keep_alive, self._reply_head_only)
        if self._queue or self._read_paused or self._eof or self._stopped:
            self._kick()  # else nothing to do: the next read answers the next request at once

    def _pause_reading(self) -> None:
        if not self._read_paused and self._transport is not None and not self._closing:
            self._read_paused = True
            self._transport.pause_reading()

    @property
    def idle(self) -> bool:
        return not self._busy and not self._queue

    def close(self) -> None:
        self._closing = True
        self._queue.clear()
        if self._transport is not None:
            self._transport.close()

    def time_out(self) -> None:
        """The request head did not arrive within `header_timeout_seconds`."""
        self.head_started = None
        self._stopped = True
        self._queue.append(REQUEST_TIMEOUT)
        self._kick()

    def _refuse(self, response: Response) -> None:
        """Answers and half-closes, then drains what the client still sends before closing:
        closing with unread input makes the kernel reset the connection, and a client still
        writing its body would lose the answer."""
        self._write(response, keep_alive=False)
        transport = self._transport
        if transport is None or self._closing:
            return
        self._draining = True
        self._queue.clear()
        if self._eof or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        self._loop.call_later(LINGER_SECONDS, self.close)

    def _send(self, response: Response, keep_alive: bool, head_only: bool = False) -> None:
        if self._stopped and not self._queue:  # the last answer before closing
            keep_alive = False
        self._write(response, keep_alive, head_only)
        if not keep_alive:
            self.close()

    def _write(self, response: Response, keep_alive: bool, head_only: bool = False) -> None:
        if self._transport is None or self._closing:
            return
        body = response.body
        self._transport.write(b"".join((
            _response_head(response), b"Date: ", _http_date(), b"\r\nContent-Length: %d\r\n" % len(body),
            b"\r\n" if keep_alive else b"Connection: close\r\n\r\n", b"" if head_only else body)))


class HttpServer:
    """Owns the listening socket and the live connections."""

    def __init__(self, app: RestApi, host: str, port: int, max_body_bytes: int,
                 limits: HttpLimits = HttpLimits()) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.connections: set[_Connection] = set()
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._accept_failures = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._default_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=1024, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep())

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio retries a failing `accept()` every second and reports each failure; we log the
        first one and stay quiet until a connection is accepted again."""
        if context.get("message") == ACCEPT_ERROR_MESSAGE:
            self._accept_failures += 1
            if self._accept_failures == 1:
                LOG.error("REST server cannot accept connections (%s); retrying every second, "
                          "logged once until it recovers", context.get("exception"))
            return
        if self._default_handler is not None:
            self._default_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def accepted(self) -> None:
        if self._accept_failures:
            LOG.warning("REST server accepts connections again after %d failed attempts",
                        self._accept_failures)
            self._accept_failures = 0

    async def _sweep(self) -> None:
        limits = self.limits
        period = max(0.05, min(limits.idle_timeout_seconds, limits.header_timeout_seconds, 4.0) / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            idle_cutoff = now - limits.idle_timeout_seconds
            head_cutoff = now - limits.header_timeout_seconds
            for conn in list(self.connections):
                if conn.idle and conn.head_started is not None and conn.head_started < head_cutoff:
                    conn.time_out()
                elif conn.idle and conn.last_active < idle_cutoff:
                    conn.close()

    def _all_idle(self) -> bool:
        return all(conn.idle for conn in self.connections)

    async def drain(self, timeout_seconds: float) -> bool:
        """Stops accepting, then waits up to `timeout_seconds` until no connection has a request
        queued or in flight; True if none is left. Connections stay open until `stop()`."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + timeout_seconds
        while not self._all_idle():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        await asyncio.sleep(0)  # one more turn: answers just written reach the transports
        return True

    async def stop(self) -> None:
        self.closing = True
        if self._sweeper:
            self._sweeper.cancel()
        if self._server:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            await self._server.wait_closed()
