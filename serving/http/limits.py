"""The REST server's limits, one definition: `HttpServer` enforces them, the flags default to them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpLimits:
    """Per-server HTTP limits; the defaults are the flags' defaults (see `--help`, docs/serving.md)."""

    max_header_bytes: int = 64 * 1024
    """Request line plus headers, bytes; larger -> 431 and close (checked per socket read)."""
    max_decompressed_bytes: int = 64 * 1024 * 1024
    """A `Content-Encoding: gzip` body may inflate to at most this many bytes; more -> 413."""
    max_connections: int = 1024
    """Open REST connections; a connection past the cap is answered 503 and closed."""
    header_timeout_seconds: float = 10.0
    """Time from a request's first byte (or the connection's start) to its last header; past it -> 408."""
    idle_timeout_seconds: float = 75.0
    """A keep-alive connection with no request in progress for this long is closed."""
    offload_body_bytes: int = 256 * 1024
    """Bodies larger than this are decoded on a worker thread, not the event loop."""
    drain_seconds: float = 25.0
    """On SIGTERM: how long requests already received may take to be answered before the server exits."""
