"""REST adapter: TF Serving's URL grammar, dispatch order, JSON bodies and status codes.

`RestApi.handle(request)` returns a `Response` at once, or a `PendingReply[Response]` for
requests that run a model. It holds no model logic: parse -> service -> codec -> bytes.
Every request under `/v1/` is counted in `request_count`; successful ones are timed.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import unquote

from google.protobuf import json_format
from google.protobuf.message import Message

from common.facts import REST_SOURCE
from common.limits import INT64_MAX
from serving.api.service import PredictionService
from serving.codec.decode import decode_predict_inputs, signature_name_of
from serving.codec.encode import encode_predict_response
from serving.codec.examples import decode_examples, encode_classify_results, encode_regress_results
from serving.codec.json_read import parse_json
from serving.codec.json_write import error_body
from serving.core.errors import Code, DeadlineExceededError, InvalidArgumentError, ServingError
from serving.core.servable import Servable
from serving.core.types import Done
from serving.http.bridge import LoopBridge, PendingReply
from serving.http.limits import HttpLimits
from serving.observability.metrics import ServingMetrics
from serving.observability.prometheus_text import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serving.observability.prometheus_text import render

LOG = logging.getLogger(__name__)
JSON = "application/json"
HTML = "text/html"
_POST_RE = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)")
_GET_RE = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?")
_V1_RE = re.compile(r"(?i)/v1/.*", re.DOTALL)
_ORIGIN_RE = re.compile(r"https?://")
_CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)
NOT_FOUND_HTML = (b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
                  b"<H1>Not Found</H1>\n</BODY></HTML>\n")


class Request(NamedTuple):
    """One parsed HTTP request (named tuples: built per request, so cheaper than dataclasses)."""

    method: str
    target: str
    """Path plus `?query`, as sent (TF Serving matches its regexes against both)."""
    headers: Mapping[str, str]
    """Lower-case names."""
    body: bytes


class Response(NamedTuple):
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = ()


Reply = Response | PendingReply[Response]


class _Route(NamedTuple):
    model: str
    version: int | None
    label: str | None
    verb: str


def _route(match: re.Match[str]) -> _Route:
    name, version_text, label, verb = match.groups()
    version = None
    if version_text is not None:
        version = int(version_text)
        if version > INT64_MAX:
            raise InvalidArgumentError(f"Failed to convert version: {version_text} to numeric.")
    return _Route(
        model=unquote(name, errors="surrogateescape") if name else "",
        version=version,
        label=unquote(label, errors="surrogateescape") if label is not None else None,
        verb=verb or "",
    )


def _proto_json(message: Message) -> str:
    return json_format.MessageToJson(
        message, including_default_value_fields=True, preserving_proto_field_name=True, indent=1,
        ensure_ascii=False)


_Decoded = tuple[Servable, Callable[[Done], None], Callable[[Any], bytes]]
"""A decoded POST: the leased servable, how to start the model call, how to encode its result."""

class RestApi:
    """Routes and handles HTTP requests; see module docstring."""

    def __init__(self, service: PredictionService, metrics: ServingMetrics, metrics_path: str | None,
                 loop: asyncio.AbstractEventLoop, enable_cors: bool = False,
                 offload_body_bytes: int | None = None,
                 max_json_depth: int = HttpLimits.max_json_depth,
                 max_json_number_digits: int = HttpLimits.max_json_number_digits) -> None:
        """`offload_body_bytes`: POST bodies larger than this are parsed and decoded on a worker
        thread (TF Serving handles every REST request on its worker threads); None: never.
        `max_json_depth`, `max_json_number_digits`: `json_read.check_json_limits`' limits, applied
        to every POST body before it is parsed (400 past them)."""
        self._service = service
        self._json_limits = (max_json_depth, max_json_number_digits)
        self._loop = loop
        self._offload_bytes = offload_body_bytes
        self._decoder: ThreadPoolExecutor | None = None
        self._bridge = LoopBridge(loop, service.timeout_ms / 1000 + 0.05)
        self._metrics = metrics
        self._metrics_path = metrics_path
        self._extra = _CORS_HEADERS if enable_cors else ()

    def handle(self, request: Request) -> Reply:
        bare = request.target.split("?", 1)[0].split("#", 1)[0]
        if self._metrics_path and bare == self._metrics_path:
            return self._prometheus(request.target)
        if not _V1_RE.fullmatch(request.target):
            return Response(404, NOT_FOUND_HTML, HTML)
        started = time.perf_counter()
        if request.method == "OPTIONS":
            return self._preflight(request)
        route: _Route | None = None
        try:
            route = self._parse(request)
            if request.method == "POST":
                return self._post(route, request.body, started)
            return self._ok(route, self._get(route), started)
        except ServingError as err:
            return self._error(route.model if route else "", err)
        except RecursionError:
            return self._error(route.model if route else "", InvalidArgumentError("JSON nesting too deep"))

    def _parse(self, request: Request) -> _Route:
        malformed = InvalidArgumentError(f"Malformed request: {request.method} {request.target}")
        if request.method == "POST":
            match = _POST_RE.fullmatch(request.target)
            if match is None or match.group(4) not in ("predict", "classify", "regress"):
                raise malformed
            return _route(match)
        if request.method == "GET":
            match = _GET_RE.fullmatch(request.target)
            if match is None:
                raise malformed
            return _route(match)
        raise malformed

    # ---- GET -------------------------------------------------------------------------------
    def _get(self, route: _Route) -> bytes:
        if not route.model:
            raise InvalidArgumentError("Missing model name in request.")
        if route.verb == "metadata":
            servable = self._service.resolve(route.model, route.version, route.label)
            try:
                spec, sig_map = self._service.model_metadata(servable)
            finally:
                servable.release()
            return ('{\n"model_spec":' + _proto_json(spec) + ',\n"metadata": {"signature_def": '
                    + _proto_json(sig_map) + "}\n}\n").encode("utf-8")
        return _proto_json(self._service.model_status(route.model, route.version)).encode("utf-8")

    # ---- POST ------------------------------------------------------------------------------
    def _post(self, route: _Route, body: bytes, started: float) -> Reply:
        if self._offload_bytes is not None and len(body) > self._offload_bytes:
            return self._post_offloaded(route, body, started)
        servable, start, encode = self._decode_post(route, body)
        try:
            return self._pending(route, start, started, encode)
        finally:
            servable.release()  # a run started meanwhile holds its own lease

    def _post_offloaded(self, route: _Route, body: bytes, started: float) -> PendingReply[Response]:
        """`_decode_post` on a worker thread, so one large body does not hold up other clients'
        turns on the loop; the model call then starts from the loop as usual."""
        if self._decoder is None:
            self._decoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rest-decode")
        reply: PendingReply[Response] = PendingReply()

        def decoded(future: Future[_Decoded]) -> None:
            try:
                servable, start, encode = future.result()
                try:
                    self._pending(route, start, started, encode).then(reply.resolve)
                finally:
                    servable.release()  # a run started meanwhile holds its own lease
            except ServingError as err:
                reply.resolve(self._error(route.model, err))
            except RecursionError:
                reply.resolve(self._error(route.model, InvalidArgumentError("JSON nesting too deep")))
            except Exception:  # a bug must cost one request, never the loop
                LOG.exception("Unhandled error decoding a request for %s", route.model)
                reply.resolve(self._error(route.model, ServingError("Internal server error", Code.INTERNAL)))

        future = self._decoder.submit(self._decode_post, route, body)
        future.add_done_callback(lambda f: self._loop.call_soon_threadsafe(decoded, f))
        return reply

    def _decode_post(self, route: _Route, body: bytes) -> _Decoded:
        """Parses and decodes a POST body: (the servable, leased; start the model call; encode its
        result). The caller releases the lease once the call has started. Thread-safe."""
        service = self._service
        doc = parse_json(body, *self._json_limits)
        signature_name = signature_name_of(doc)
        servable = service.resolve(route.model, route.version, route.label)
        try:
            start, encode = self._decode_call(route, servable, doc, signature_name)
        except BaseException:
            servable.release()
            raise
        return servable, start, encode

    def _decode_call(self, route: _Route, servable: Servable, doc: Any, signature_name: str
                     ) -> tuple[Callable[[Done], None], Callable[[Any], bytes]]:
        service = self._service
        max_rows = service.max_instances
        if route.verb == "predict":
            signature = service.predict_signature(servable, signature_name)
            inputs, fmt = decode_predict_inputs(doc, signature.inputs, max_rows)
            return (lambda done: service.predict(servable, signature, inputs, done, source=REST_SOURCE),
                    lambda out: encode_predict_response(out, fmt))
        examples = decode_examples(doc, max_rows)
        if route.verb == "classify":
            return (lambda done: service.classify(servable, signature_name, examples, done),
                    encode_classify_results)
        return (lambda done: service.regress(servable, signature_name, examples, done), encode_regress_results)

    def _pending(self, route: _Route, start: Callable[[Done], None], started: float,
                 encode: Callable[[Any], bytes]) -> PendingReply[Response]:
        """The reply once the worker thread is done (encoded on the loop), or 504 at the REST timeout."""

        def respond(result: Any, error: Exception | None) -> Response:
            try:
                if error is not None:
                    raise error
                return self._ok(route, encode(result), started)
            except ServingError as err:
                return self._error(route.model, err)
            except RecursionError:
                return self._error(route.model, InvalidArgumentError("Output nesting too deep"))
            except Exception:  # a bug must cost one request, never the batch or the loop
                LOG.exception("Unhandled error answering a request for %s", route.model)
                return self._error(route.model, ServingError("Internal server error", Code.INTERNAL))

        def expire() -> Response:
            return self._error(route.model, DeadlineExceededError("Deadline Exceeded"))

        return self._bridge.reply(start, respond, expire)

    # ---- responses -------------------------------------------------------------------------
    def _ok(self, route: _Route, body: bytes, started: float) -> Response:
        self._metrics.record_request(route.model, "OK")
        api = route.verb if route.verb != "metadata" else ""
        micros = (time.perf_counter() - started) * 1e6
        self._metrics.record_request_latency(route.model, api, "REST", micros)
        return Response(200, body, JSON, self._extra)

    def _error(self, model: str, err: ServingError) -> Response:
        self._metrics.record_request(model, err.code.name)
        return Response(err.http_status, error_body(err.message), JSON, self._extra)

    def _preflight(self, request: Request) -> Response:
        if _ORIGIN_RE.match(request.headers.get("origin", "")):
            self._metrics.record_request("", Code.OK.name)
            return Response(200, b"", JSON, _CORS_HEADERS)
        self._metrics.record_request("", Code.FAILED_PRECONDITION.name)
        return Response(400, b"", None)

    def _prometheus(self, target: str) -> Response:
        if target != self._metrics_path:
            message = f"Unexpected path: {target}. Should be {self._metrics_path}"
            return Response(400, message.encode("utf-8", "surrogateescape"), METRICS_CONTENT_TYPE)
        body = render(self._metrics.registry, self._metrics.tf_names)
        return Response(200, body, METRICS_CONTENT_TYPE)

    def oversized(self, target: str, limit: int) -> Response:
        """Answer for a body over `--max_request_bytes` (counted like any /v1 request)."""
        match = _POST_RE.fullmatch(target) or _GET_RE.fullmatch(target)
        model = unquote(match.group(1) or "") if match else ""
        err = ServingError(f"Request body is larger than the limit of {limit} bytes", Code.RESOURCE_EXHAUSTED)
        self._metrics.record_request(model, err.code.name)
        return Response(413, error_body(err.message), JSON, self._extra)
