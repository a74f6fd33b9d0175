"""The REST server's limits, one definition: `HttpServer` and `RestApi` enforce them, the flags default to them."""
from __future__ import annotations

from dataclasses import dataclass

JSON_DEPTH_FLAG = "--rest_api_max_json_depth"
"""Flag of `HttpLimits.max_json_depth` (named in the 400 error a too-deep body gets)."""
JSON_NUMBER_DIGITS_FLAG = "--rest_api_max_json_number_digits"
"""Flag of `HttpLimits.max_json_number_digits` (named in the 400 error a too-long number gets)."""
MAX_JSON_DEPTH_CEILING = 512
"""Largest accepted `--rest_api_max_json_depth`: orjson stops at 1,024 levels and Python's JSON decoder
(the lenient fallback) at its recursion limit (1,000 frames, less those already in use), so a larger
value would not be the limit that applies. The digits flag's ceiling is `sys.get_int_max_str_digits()`
(4,300 by default), Python's cap on integer literals, for the same reason."""


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
    max_json_depth: int = 64
    """Nesting levels (arrays and objects) a REST JSON body may have; deeper -> 400. Real requests have
    3 + (tensor rank) levels at most (object, "instances", row object, the tensor's lists)."""
    max_json_number_digits: int = 1000
    """Digits (exponent included) one JSON number literal may have; more -> 400. int64 needs 19, a
    double's round-trip form 17 significant digits and the largest double written as an integer 309."""
