"""Composition root: config -> registry, manager, runner, service -> gRPC + REST servers.

`ModelServer` is also what tests start in-process (ephemeral ports, injected registry).
Start order follows TF Serving: models load first (blocking), then gRPC, then REST.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

from prometheus_client import CollectorRegistry
from tensorflow.core.protobuf import config_pb2

from serving.core.batching import BatchScheduler
from serving.config.server_config import ConfigError, ServerConfig, from_args
from serving.api.grpc_service import create_grpc_server
from serving.http.server import HttpServer
from serving.core.manager import ModelManager
from serving.observability.metrics import ServingMetrics
from serving.observability.model_metrics import ModelMetrics
from serving.observability.request_log import RequestLog
from serving.api.rest import RestApi
from serving.core.servable import Servable
from serving.api.service import DirectRunner, PredictionService
from serving.core.types import ServableId

LOG = logging.getLogger("serving")


class StartupError(Exception):
    """Initial models did not become available (TF Serving exits in that case too)."""


YOUNG_GC_THRESHOLD = 10_000


def _tune_gc() -> None:
    """A loaded TF model is hundreds of thousands of long-lived Python objects, and every full
    collection walked them all mid-request: freezing them once the models are loaded, and
    collecting the young generation less often (requests make many short-lived objects), took p99
    at 64 concurrent clients from 227 ms to 53 ms (bench/bench_serving.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


class ModelServer:
    """Owns every long-lived part of the server; `start()` blocks until models are served."""

    def __init__(self, config: ServerConfig, registry: Optional[CollectorRegistry] = None) -> None:
        self.config = config
        self.metrics = ServingMetrics(registry or CollectorRegistry())
        session_config = config_pb2.ConfigProto(
            intra_op_parallelism_threads=config.intra_op_threads,
            inter_op_parallelism_threads=config.inter_op_threads)

        def load(servable_id: ServableId, path: Path) -> Servable:
            servable = Servable.load(servable_id, path, session_config=session_config)
            self.metrics.record_load_stages(str(path), servable.load_stage_micros)
            return servable

        self.manager = ModelManager(
            list(config.models), load, poll_seconds=config.poll_seconds,
            max_load_retries=config.max_load_retries,
            load_retry_interval_seconds=config.load_retry_interval_seconds,
            on_load=self.metrics.record_load)
        served = frozenset(model.name for model in config.models)
        self.metrics.limit_unknown_model_names(
            lambda name: name in served or name in self.manager.model_names(), config.max_unknown_model_names)
        self.runner = (BatchScheduler(config.batching, self.metrics) if config.batching
                       else DirectRunner(config.num_threads))
        request_log = RequestLog(config.request_log_file) if config.request_log_file else None
        self.model_metrics = ModelMetrics(self.metrics.registry, self.manager, request_log)
        self.service = PredictionService(self.manager, self.runner, self.metrics,
                                         config.max_instances, config.rest_timeout_ms, self.model_metrics)
        self.grpc_port = 0
        self.rest_port = 0
        self._grpc = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._http: Optional[HttpServer] = None
        self._loop_thread: Optional[threading.Thread] = None

    def start(self) -> None:
        failures = self.manager.wait_until_available()
        if failures:
            self.manager.stop()
            raise StartupError(
                f"{len(failures)} model(s) did not become available: {{{'; '.join(failures)}}}")
        self.manager.start()
        _tune_gc()
        cfg = self.config
        self._grpc, self.grpc_port = create_grpc_server(
            self.service, cfg.host, cfg.grpc_port, cfg.num_threads, cfg.max_request_bytes)
        self._grpc.start()
        LOG.info("Running gRPC ModelServer at %s:%d ...", cfg.host, self.grpc_port)
        if cfg.rest_port is not None:
            self._start_rest()
            LOG.info("Exporting HTTP/REST API at:%s:%d ...", cfg.host, self.rest_port)

    def _start_rest(self) -> None:
        cfg = self.config
        loop = asyncio.new_event_loop()
        self._loop = loop
        api = RestApi(self.service, self.metrics, cfg.metrics_path, loop, cfg.enable_cors,
                      offload_body_bytes=cfg.http_limits.offload_body_bytes)
        self._http = HttpServer(api, cfg.host, cfg.rest_port or 0, cfg.max_request_bytes, cfg.http_limits)
        ready = threading.Event()
        errors: List[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._http.start())  # type: ignore[union-attr]
            except BaseException as err:  # surfaced to start()'s caller below
                errors.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop_thread = threading.Thread(target=run, name="rest-loop", daemon=True)
        self._loop_thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        self.rest_port = self._http.port

    def drain(self) -> bool:
        """Stops taking requests (new REST connections are refused, new RPCs rejected) and waits up
        to `--drain_timeout_seconds` for those already received to be answered, on both ports (what
        a Kubernetes pod gets between SIGTERM and SIGKILL); True if none was left unanswered. Call
        `stop()` afterwards."""
        timeout = self.config.http_limits.drain_seconds
        deadline = time.monotonic() + timeout
        grpc_done = self._grpc.stop(grace=timeout) if self._grpc is not None else None
        drained = True
        if self._loop is not None and self._http is not None and self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._http.drain(timeout), self._loop)
            try:
                drained = future.result(timeout=timeout + 5)
            except Exception:  # the loop died: nothing left to wait for
                drained = False
        if grpc_done is not None:
            drained = grpc_done.wait(max(deadline - time.monotonic(), 0)) and drained
        return drained

    def stop(self) -> None:
        if self._loop is not None and self._http is not None:
            asyncio.run_coroutine_threadsafe(self._http.stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread:
                self._loop_thread.join(timeout=10)
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        self.manager.stop()
        self.runner.shutdown()
        if self.model_metrics.request_log is not None:
            self.model_metrics.request_log.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m serving`; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        server = ModelServer(config)
    except OSError as err:  # e.g. the request log file cannot be opened
        print(f"Failed to start server. Error: {err}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except (StartupError, OSError) as err:
        print(f"Failed to start server. Error: {err}", file=sys.stderr)
        server.stop()
        return 1
    stop.wait()
    LOG.info("Shutting down: answering requests already received (up to %gs)",
             config.http_limits.drain_seconds)
    if not server.drain():
        LOG.warning("Requests still unanswered after %gs; closing their connections",
                    config.http_limits.drain_seconds)
    server.stop()
    return 0
