"""Start-up as TF Serving: a REST port in use costs REST only (one log line, gRPC keeps serving), a
missing base path is logged once and polled, and only bad flags or config exit at once."""
from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from common.facts import PROJECT_ROOT
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.helpers import free_port
from tests.serving.conftest import ServerFactory, install, make_config
from tests.serving.http_util import get


def _grpc_state(port: int, name: str) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return reply.model_version_status[0].state


def test_rest_port_in_use_is_one_log_line_and_grpc_keeps_serving(tmp_path: Path, model_store: Path,
                                                                  server_factory: ServerFactory,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="serving"):
            server = server_factory((ModelConfig("m", tmp_path / "m"),), rest_port=port)
        assert _grpc_state(server.grpc_port, "m") == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == ["Failed to start HTTP Server at 127.0.0.1"]
    assert f"127.0.0.1:{port}" in errors[0].getMessage() and "gRPC keeps serving" in errors[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert not any("Exporting HTTP/REST API" in r.getMessage() for r in caplog.records)


def test_interrupt_ends_a_start_still_waiting_for_its_models(tmp_path: Path) -> None:
    server = ModelServer(make_config((ModelConfig("m", tmp_path / "missing"),)), CollectorRegistry())
    thread = threading.Thread(target=server.start)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # TF Serving blocks until the models are available
    server.manager.interrupt()
    thread.join(timeout=5)
    assert not thread.is_alive()
    server.stop()


def _serve_logged(log_path: Path, base: Path, *flags: str,
                  wrapper: tuple = ()) -> subprocess.Popen:  # type: ignore[type-arg]
    """`python -m serving` for model `m` at `base` (run under `wrapper`, a command prefix), its output
    going to `log_path`."""
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [*wrapper, sys.executable, "-m", "serving", f"--model_base_path={base}", "--model_name=m", *flags],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_line(process: subprocess.Popen,  # type: ignore[type-arg]
                   log_path: Path, text: str, deadline: float) -> None:
    while text not in log_path.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)


def test_sigterm_ends_a_start_waiting_for_a_missing_base_path(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    process = _serve_logged(log_path, tmp_path / "missing", f"--port={free_port()}", f"--rest_api_port={free_port()}")
    try:
        _wait_for_line(process, log_path, "Could not find base path", time.monotonic() + 120)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log_path.read_text()


def test_missing_base_path_is_logged_once_and_polled(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "not-yet" / "m"
    rest, grpc_port = free_port(), free_port()
    log_path = tmp_path / "server.log"
    process = _serve_logged(log_path, base, f"--port={grpc_port}", f"--rest_api_port={rest}",
                            "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5")
    try:
        deadline = time.monotonic() + 120
        _wait_for_line(process, log_path, "Could not find base path", deadline)
        time.sleep(1.0)  # several more polls
        assert process.poll() is None
        install(model_store, "tf2_v1", base, 1)
        _wait_for_line(process, log_path, "Exporting HTTP/REST API", deadline)
        assert get(rest, "/v1/models/m")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text()
    assert text.count("Could not find base path") == 1, text
    assert "Traceback" not in text


def test_grpc_port_in_use_is_an_os_error_for_one_line(tmp_path: Path, model_store: Path,
                                                      server_factory: ServerFactory) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"Could not bind gRPC port 127.0.0.1:{port}"):
            server_factory((ModelConfig("m", tmp_path / "m"),), grpc_port=port)


WITHOUT_FILE_MODE_BYPASS = ("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                            "--inh-caps=-dac_override,-dac_read_search")
"""Runs a command as root without the capabilities that let root ignore file modes, so a mode-000
folder really fails with EACCES (the tests run as root, where `chmod` alone blocks nothing)."""


def test_an_unreadable_version_folder_is_not_loaded_until_it_is_readable(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    v2 = install(model_store, "tf2_v2", base, 2)
    (v2 / "variables").chmod(0)  # EACCES listing it: the version cannot be checked for completeness
    rest = free_port()
    log_path = tmp_path / "server.log"
    process = _serve_logged(log_path, base, f"--port={free_port()}", f"--rest_api_port={rest}",
                            "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5",
                            wrapper=WITHOUT_FILE_MODE_BYPASS)
    try:
        _wait_for_line(process, log_path, "Exporting HTTP/REST API", time.monotonic() + 120)
        time.sleep(1.0)  # five more polls see the folder unreadable
        status = get(rest, "/v1/models/m")
        assert status[0] == 200 and [v["version"] for v in json.loads(status[2])["model_version_status"]] == ["1"]
        assert log_path.read_text().count("Cannot read version folder") == 1  # logged once, not per poll
        assert "Permission denied" in log_path.read_text()
        (v2 / "variables").chmod(0o755)
        deadline = time.monotonic() + 60
        while json.loads(get(rest, "/v1/models/m/versions/2")[2]).get("model_version_status", [{}])[0].get(
                "state") != "AVAILABLE":
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    finally:
        (v2 / "variables").chmod(0o755)
        process.terminate()
        process.wait(timeout=60)
    assert "Traceback" not in log_path.read_text()


def test_a_load_failed_on_permissions_is_retried_once_they_are_fixed(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    staging = install(model_store, "tf2_v2", tmp_path, 2)
    data = next((staging / "variables").glob("variables.data-*"))
    data.chmod(0)  # the folder lists fine (it settles), but the load cannot read the weights: EACCES
    rest = free_port()
    log_path = tmp_path / "server.log"
    process = _serve_logged(log_path, base, f"--port={free_port()}", f"--rest_api_port={rest}",
                            "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5",
                            "--max_num_load_retries=0", wrapper=WITHOUT_FILE_MODE_BYPASS)

    def v2_state() -> str:
        found = json.loads(get(rest, "/v1/models/m/versions/2")[2]).get("model_version_status", [{}])[0]
        return f"{found.get('state')} {found.get('status', {}).get('error_message', '')}"

    try:
        _wait_for_line(process, log_path, "Exporting HTTP/REST API", time.monotonic() + 120)
        staging.rename(base / "2")
        data = base / "2" / "variables" / data.name
        deadline = time.monotonic() + 60
        while not v2_state().startswith("END"):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert "ermission denied" in v2_state()
        data.chmod(0o644)  # only the mode changes: the listing's sizes and mtimes stay
        while v2_state() != "AVAILABLE ":
            assert time.monotonic() < deadline + 60, log_path.read_text()
            time.sleep(0.2)
    finally:
        data.chmod(0o644)
        process.terminate()
        process.wait(timeout=60)
