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
from collections.abc import Sequence
from pathlib import Path

import grpc
from prometheus_client import CollectorRegistry
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.api import warmup
from serving.api.grpc_service import create_grpc_server
from serving.api.rest import RestApi
from serving.api.service import DirectRunner, PredictionService
from serving.config.server_config import (
    ConfigError,
    ServerConfig,
    check_base_paths,
    from_args,
    load_model_config,
    models_from_proto,
)
from serving.core.batching import BatchScheduler
from serving.core.errors import InvalidArgumentError, ServingError
from serving.core.manager import ModelManager
from serving.core.servable import Servable
from serving.core.types import ServableId
from serving.http.server import HttpServer
from serving.observability.metrics import ServingMetrics
from serving.observability.model_metrics import ModelMetrics
from serving.observability.prediction_log import PredictionLog
from serving.observability.request_log import RequestLog

LOG = logging.getLogger("serving")


class StartupError(Exception):
    """Initial models did not become available (TF Serving exits in that case too)."""


YOUNG_GC_THRESHOLD = 10_000


def _tune_gc() -> None:
    """A loaded TF model is hundreds of thousands of long-lived Python objects, and every full
    collection walked them all mid-request: freezing them once the models are loaded, and
    collecting the young generation less often (requests make many short-lived objects), cut the p99
    latency under load (measured with bench/bench_serving.py: docs/performance.md, "Model server")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


def polls_config_file(config: ServerConfig) -> bool:
    """Whether `--model_config_file` is re-read (`--model_config_file_poll_wait_seconds` > 0)."""
    return config.model_config_file is not None and config.model_config_poll_seconds > 0


class ModelServer:
    """Owns every long-lived part of the server; `start()` blocks until models are served."""

    def __init__(self, config: ServerConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.metrics = ServingMetrics(registry or CollectorRegistry())
        session_config = config_pb2.ConfigProto(
            intra_op_parallelism_threads=config.intra_op_threads,
            inter_op_parallelism_threads=config.inter_op_threads)

        def load(servable_id: ServableId, path: Path) -> Servable:
            servable = Servable.load(servable_id, path, session_config=session_config)
            self.metrics.record_load_stages(str(path), servable.load_stage_micros)
            if config.enable_model_warmup:
                self._warm_up(servable)
            return servable

        self.manager = ModelManager(
            list(config.models), load, poll_seconds=config.poll_seconds,
            max_load_retries=config.max_load_retries,
            load_retry_interval_seconds=config.load_retry_interval_seconds,
            settle_seconds=config.settle_seconds,
            on_load=self.metrics.record_load)
        served = frozenset(model.name for model in config.models)
        self.metrics.limit_unknown_model_names(
            lambda name: name in served or name in self.manager.model_names(), config.max_unknown_model_names)
        self.runner = (BatchScheduler(config.batching, self.metrics) if config.batching
                       else DirectRunner(config.num_threads))
        request_log = (RequestLog(config.request_log_file, config.observed_output)
                       if config.request_log_file and config.observed_output else None)
        prediction_log = (PredictionLog(config.prediction_store_url, config.observed_output,
                                        config.prediction_id_output)
                          if config.prediction_store_url and config.observed_output else None)
        self.model_metrics = ModelMetrics(self.metrics.registry, self.manager, request_log, config.observed_output,
                                          prediction_log)
        self.service = PredictionService(self.manager, self.runner, self.metrics,
                                         config.max_instances, config.rest_timeout_ms, self.model_metrics,
                                         max_tensor_elements=config.max_request_bytes)
        self.grpc_port = 0
        self.rest_port = 0
        self._grpc: grpc.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: HttpServer | None = None
        self._loop_thread: threading.Thread | None = None
        self._config_poller: threading.Thread | None = None
        self._config_stop = threading.Event()

    # ---- warmup and config reload (issue 14) ----------------------------------------------------
    def _warm_up(self, servable: Servable) -> None:
        """Replays the version's warmup file inside its load, so before it can become AVAILABLE.

        Raises:
          ServingError: the replay failed (the load fails, as in TF Serving).
        """
        started = time.perf_counter()
        try:
            count = warmup.replay(servable)
        except ServingError as err:
            self.metrics.record_warmup(str(servable.path), err.status_string(),
                                       (time.perf_counter() - started) * 1e6)
            raise
        if count is None:
            LOG.info("No warmup data file found at %s", warmup.warmup_path(servable.path))
            return
        micros = (time.perf_counter() - started) * 1e6
        self.metrics.record_warmup(str(servable.path), "OK", micros)
        LOG.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. "
                 "Elapsed time (microseconds): %d.", warmup.warmup_path(servable.path), count, micros)

    def reload_config(self, proto: model_server_config_pb2.ModelServerConfig) -> None:
        """Applies a `ModelServerConfig` (gRPC `HandleReloadConfigRequest`, config file polling).

        Raises:
          InvalidArgumentError: the config is invalid (same checks as `--model_config_file`).
          FailedPreconditionError: a label names a version that is not AVAILABLE.
        """
        try:
            models = models_from_proto(proto, "ReloadConfigRequest")
            check_base_paths(models)
        except ConfigError as err:
            raise InvalidArgumentError(str(err)) from None
        self.manager.reload(list(models))

    def _poll_config_file(self, path: Path, seconds: float) -> None:
        """Re-reads `--model_config_file` every `seconds`; a changed file is applied, a bad one
        logged (the running config stays), as TF Serving's `PollFilesystemAndReloadConfig`."""
        last = path.read_bytes() if path.is_file() else b""
        while not self._config_stop.wait(seconds):
            try:
                text = path.read_bytes()
                if text == last:
                    continue
                last = text
                models = load_model_config(str(path))
                check_base_paths(models)
                self.manager.reload(list(models))
            except (OSError, ConfigError, ServingError) as err:
                LOG.error("Failed to reload model config %s: %s", path, err)

    def start(self) -> None:
        failures = self.manager.wait_until_available()
        if failures:
            self.manager.stop()
            raise StartupError(
                f"{len(failures)} model(s) did not become available: {{{'; '.join(failures)}}}")
        if self.manager.interrupted:  # SIGTERM/SIGINT while waiting for the models
            return
        self.manager.start()
        if polls_config_file(self.config):
            self._config_poller = threading.Thread(
                target=self._poll_config_file, name="model-config-poll", daemon=True,
                args=(self.config.model_config_file, self.config.model_config_poll_seconds))
            self._config_poller.start()
        _tune_gc()
        cfg = self.config
        self._grpc, self.grpc_port = create_grpc_server(
            self.service, cfg.host, cfg.grpc_port, cfg.num_threads, cfg.max_request_bytes,
            reload=self.reload_config)
        self._grpc.start()
        LOG.info("Running gRPC ModelServer at %s:%d ...", cfg.host, self.grpc_port)
        if cfg.rest_port is not None:
            try:
                self._start_rest()
            except OSError as err:  # as TF Serving's server.cc: one line, gRPC keeps serving
                self._close_rest_loop()
                LOG.error("Failed to start HTTP Server at %s:%d: %s; gRPC keeps serving", cfg.host,
                          cfg.rest_port, err.strerror or err)
                return
            LOG.info("Exporting HTTP/REST API at:%s:%d ...", cfg.host, self.rest_port)

    def _close_rest_loop(self) -> None:
        """Forgets a REST server that failed to bind (its loop thread has already returned)."""
        if self._loop_thread is not None:
            self._loop_thread.join(timeout=5)
        if self._loop is not None:
            self._loop.close()
        self._loop, self._http, self._loop_thread = None, None, None

    def _start_rest(self) -> None:
        cfg = self.config
        loop = asyncio.new_event_loop()
        self._loop = loop
        api = RestApi(self.service, self.metrics, cfg.metrics_path, loop, cfg.enable_cors,
                      offload_body_bytes=cfg.http_limits.offload_body_bytes,
                      max_json_depth=cfg.http_limits.max_json_depth,
                      max_json_number_digits=cfg.http_limits.max_json_number_digits)
        self._http = HttpServer(api, cfg.host, cfg.rest_port or 0, cfg.max_request_bytes, cfg.http_limits)
        ready = threading.Event()
        errors: list[BaseException] = []

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
        self._config_stop.set()
        if self._config_poller is not None:
            self._config_poller.join(timeout=10)
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
        if self.model_metrics.prediction_log is not None:
            self.model_metrics.prediction_log.close()


def main(argv: Sequence[str] | None = None) -> int:
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

    def on_signal(*_: object) -> None:
        stop.set()
        server.manager.interrupt()  # also ends a start-up still waiting for its models

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
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
