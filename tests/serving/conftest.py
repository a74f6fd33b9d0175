"""Fixtures: tiny SavedModels (built once per session) and in-process servers on free ports."""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from serving.config.server_config import ServerConfig
from serving.core.batching import BatchingOptions
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.serving.models import build_tf1_model, build_tf2_model


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: slow end-to-end test (still runs in CI)")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_tf2_model(root / "tf2_v1", offset=2.0)
    build_tf2_model(root / "tf2_v2", offset=3.0)
    build_tf1_model(root / "tf1")
    return root


def install(store: Path, name: str, base: Path, version: int) -> Path:
    """Copies a built model into `<base>/<version>` (what the pipeline's pusher does)."""
    target = base / str(version)
    shutil.copytree(store / name, target)
    return target


def make_config(models: tuple, **overrides: object) -> ServerConfig:
    values = dict(
        host="127.0.0.1", grpc_port=0, rest_port=0, models=models, poll_seconds=0.2,
        rest_timeout_ms=30000, num_threads=8, batching=None, metrics_path="/monitoring/prometheus/metrics",
        enable_cors=False, max_request_bytes=1 << 20, max_instances=1000, max_load_retries=0,
        load_retry_interval_seconds=0.0, intra_op_threads=1, inter_op_threads=1,
        settle_seconds=1.0,  # freshly copied test versions load within a second
    )
    values.update(overrides)
    return ServerConfig(**values)  # type: ignore[arg-type]


ServerFactory = Callable[..., ModelServer]


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    servers = []

    def start(models: tuple, registry: CollectorRegistry | None = None, **overrides: object) -> ModelServer:
        server = ModelServer(make_config(models, **overrides), registry or CollectorRegistry())
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


OneVersion = Callable[..., tuple[Path, ModelServer]]


@pytest.fixture
def one_version(tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> OneVersion:
    """`start(**overrides) -> (base, server)`: a server (`make_config` plus `overrides`) for model `m` at
    `base = tmp_path / "m"`, holding `tf2_v1` (y = x/2 + 2) as version 1."""
    def start(**overrides: object) -> tuple[Path, ModelServer]:
        base = tmp_path / "m"
        install(model_store, "tf2_v1", base, 1)
        return base, server_factory((ModelConfig("m", base),), **overrides)
    return start


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_store: Path) -> Iterator[ModelServer]:
    """One server with `half` (TF2, version 123) and `tf1` (TF1 half_plus_two, version 1)."""
    base = tmp_path_factory.mktemp("served")
    install(model_store, "tf2_v1", base / "half", 123)
    install(model_store, "tf1", base / "tf1", 1)
    models = (ModelConfig("half", base / "half", labels={"stable": 123}),
              ModelConfig("tf1", base / "tf1"))
    server = ModelServer(make_config(models, rest_timeout_ms=2000), CollectorRegistry())
    server.start()
    yield server
    server.stop()


__all__ = ["BatchingOptions", "install", "make_config"]
