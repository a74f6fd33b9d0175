"""Start-up as TF Serving: a REST port in use costs REST only (one log line, gRPC keeps serving), a
missing base path is logged once and polled, and only bad flags or config exit at once. Config reload without a
restart: gRPC HandleReloadConfigRequest and --model_config_file_poll_wait_seconds."""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, model_service_pb2_grpc

from serving.config.server_config import from_args
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.helpers import free_port, served_process, wait_for_line
from tests.serving.conftest import ServerFactory, install, make_config
from tests.serving.http_util import error_of, get, post, wait_for


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


def test_sigterm_ends_a_start_waiting_for_a_missing_base_path(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with served_process(log_path, tmp_path / "missing", f"--port={free_port()}",
                        f"--rest_api_port={free_port()}") as process:
        wait_for_line(process, log_path, "Could not find base path")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in log_path.read_text()


def test_missing_base_path_is_logged_once_and_polled(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "not-yet" / "m"
    rest, grpc_port = free_port(), free_port()
    log_path = tmp_path / "server.log"
    with served_process(log_path, base, f"--port={grpc_port}", f"--rest_api_port={rest}",
                        "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5") as process:
        wait_for_line(process, log_path, "Could not find base path")
        time.sleep(1.0)  # several more polls
        assert process.poll() is None
        install(model_store, "tf2_v1", base, 1)
        wait_for_line(process, log_path, "Exporting HTTP/REST API")
        assert get(rest, "/v1/models/m")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
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
    with served_process(log_path, base, f"--port={free_port()}", f"--rest_api_port={rest}",
                        "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5",
                        wrapper=WITHOUT_FILE_MODE_BYPASS) as process:
        try:
            wait_for_line(process, log_path, "Exporting HTTP/REST API")
            time.sleep(1.0)  # five more polls see the folder unreadable
            status = get(rest, "/v1/models/m")
            assert status[0] == 200 and [v["version"] for v in json.loads(status[2])["model_version_status"]] == ["1"]
            assert log_path.read_text().count("Cannot read version folder") == 1  # logged once, not per poll
            assert "Permission denied" in log_path.read_text()
            (v2 / "variables").chmod(0o755)
            wait_for(lambda: json.loads(get(rest, "/v1/models/m/versions/2")[2]).get(
                "model_version_status", [{}])[0].get("state") == "AVAILABLE", timeout=60)
        finally:
            (v2 / "variables").chmod(0o755)
    assert "Traceback" not in log_path.read_text()


def test_a_load_failed_on_permissions_is_retried_once_they_are_fixed(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    staging = install(model_store, "tf2_v2", tmp_path, 2)
    data = next((staging / "variables").glob("variables.data-*"))
    data.chmod(0)  # the folder lists fine (it settles), but the load cannot read the weights: EACCES
    rest = free_port()
    log_path = tmp_path / "server.log"

    def v2_state() -> str:
        found = json.loads(get(rest, "/v1/models/m/versions/2")[2]).get("model_version_status", [{}])[0]
        return f"{found.get('state')} {found.get('status', {}).get('error_message', '')}"

    with served_process(log_path, base, f"--port={free_port()}", f"--rest_api_port={rest}",
                        "--file_system_poll_wait_seconds=0.2", "--file_system_settle_seconds=0.5",
                        "--max_num_load_retries=0", wrapper=WITHOUT_FILE_MODE_BYPASS) as process:
        try:
            wait_for_line(process, log_path, "Exporting HTTP/REST API")
            staging.rename(base / "2")
            data = base / "2" / "variables" / data.name
            wait_for(lambda: v2_state().startswith("END"), timeout=60)
            assert "ermission denied" in v2_state()
            data.chmod(0o644)  # only the mode changes: the listing's sizes and mtimes stay
            wait_for(lambda: v2_state() == "AVAILABLE ", timeout=60)
        finally:
            data.chmod(0o644)


STABLE_ONLY = """
model_config_list {{ config {{
  name: "m" base_path: "{base}" model_platform: "tensorflow"
  model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
  version_labels {{ key: "stable" value: 1 }}
}} }}
"""
CANARY = STABLE_ONLY.replace('value: 1 }}', 'value: 1 }}\n  version_labels {{ key: "canary" value: 2 }}')


def predict(server: ModelServer, route: str) -> tuple[int, object]:
    """(status, first prediction or error) of `{"instances": [2.0]}` to /v1/models/m<route>:predict."""
    reply = post(server.rest_port, f"/v1/models/m{route}:predict", {"instances": [2.0]})
    if reply[0] != 200:
        return reply[0], error_of(reply)
    return 200, json.loads(reply[2])["predictions"][0]


def reload_request(text: str) -> model_management_pb2.ReloadConfigRequest:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(text, request.config)
    return request


@pytest.fixture
def two_versions(tmp_path: Path, model_store: Path, server_factory: ServerFactory
                 ) -> Iterator[tuple[ModelServer, Path, model_service_pb2_grpc.ModelServiceStub]]:
    """A server for `m` with versions 1 (y = x/2 + 2) and 2 (x/2 + 3) on disk, default policy (latest)."""
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    install(model_store, "tf2_v2", base, 2)
    server = server_factory((ModelConfig("m", base),))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, base, model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def test_canary_rollout_over_grpc(two_versions) -> None:  # type: ignore[no-untyped-def]
    server, base, stub = two_versions
    assert predict(server, "") == (200, 4.0)  # latest policy: only version 2 is loaded
    assert predict(server, "/versions/1")[0] == 404

    response = stub.HandleReloadConfigRequest(reload_request(STABLE_ONLY.format(base=base)), timeout=60)
    assert response.status.error_code == 0 and response.status.error_message == ""
    assert predict(server, "/labels/stable") == (200, 3.0)  # the specific policy loaded version 1 again

    stub.HandleReloadConfigRequest(reload_request(CANARY.format(base=base)), timeout=60)
    assert predict(server, "/labels/stable") == (200, 3.0)
    assert predict(server, "/labels/canary") == (200, 4.0)

    promoted = STABLE_ONLY.format(base=base).replace("value: 1", "value: 2")
    stub.HandleReloadConfigRequest(reload_request(promoted), timeout=60)
    assert predict(server, "/labels/stable") == (200, 4.0)
    assert predict(server, "/labels/canary") == (400, "Unrecognized servable version label: canary")


def test_a_label_on_an_unloaded_version_is_refused_and_old_labels_stay(two_versions) -> None:  # type: ignore[no-untyped-def]
    server, base, stub = two_versions
    stub.HandleReloadConfigRequest(reload_request(STABLE_ONLY.format(base=base)), timeout=60)
    latest_with_label = f"""model_config_list {{ config {{ name: "m" base_path: "{base}"
        version_labels {{ key: "stable" value: 2 }} version_labels {{ key: "canary" value: 1 }} }} }}"""
    with pytest.raises(grpc.RpcError) as err:
        stub.HandleReloadConfigRequest(reload_request(latest_with_label), timeout=60)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == ("Request to assign label to version 1 of model m, "
                                   "which is not currently available for inference")
    # The policy change applied (latest: version 1 unloaded), the labels did not: stable still names 1.
    assert predict(server, "/labels/stable") == (404, "Servable not found for request: Specific(m, 1)")
    assert predict(server, "/labels/canary") == (400, "Unrecognized servable version label: canary")
    assert predict(server, "") == (200, 4.0)


def test_removed_models_unload_and_added_ones_load(two_versions, tmp_path: Path, model_store: Path) -> None:  # type: ignore[no-untyped-def]
    server, base, stub = two_versions
    other = tmp_path / "other"
    install(model_store, "tf2_v1", other, 7)
    stub.HandleReloadConfigRequest(reload_request(
        f'model_config_list {{ config {{ name: "n" base_path: "{other}" }} }}'), timeout=60)
    reply = post(server.rest_port, "/v1/models/n:predict", {"instances": [2.0]})
    assert reply[0] == 200 and json.loads(reply[2])["predictions"] == [3.0]
    assert predict(server, "") == (404, "Servable not found for request: Latest(m)")


@pytest.mark.parametrize("text, message", [
    ('custom_model_config { }', "Only ModelConfigList is currently supported"),
    ('model_config_list { config { name: "m" base_path: "relative/path" } }', "absolute path"),
    ('model_config_list { }', "no models configured"),
])
def test_invalid_configs_are_invalid_argument_and_change_nothing(two_versions, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    server, _, stub = two_versions
    with pytest.raises(grpc.RpcError) as err:
        stub.HandleReloadConfigRequest(reload_request(text), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    assert predict(server, "") == (200, 4.0)


def test_a_missing_base_path_is_added_and_polled(two_versions, tmp_path: Path, model_store: Path) -> None:  # type: ignore[no-untyped-def]
    """As at start-up, a base path that does not exist yet is not a config error: it is polled."""
    server, base, stub = two_versions
    later = tmp_path / "later"
    stub.HandleReloadConfigRequest(reload_request(
        f'model_config_list {{ config {{ name: "n" base_path: "{later}" }} }}'), timeout=60)
    assert post(server.rest_port, "/v1/models/n:predict", {"instances": [2.0]})[0] == 404
    install(model_store, "tf2_v1", later, 7)
    wait_for(lambda: post(server.rest_port, "/v1/models/n:predict", {"instances": [2.0]})[0] == 200)


def test_config_file_is_polled(tmp_path: Path, model_store: Path, server_factory: ServerFactory,
                               caplog: pytest.LogCaptureFixture) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    install(model_store, "tf2_v2", base, 2)
    config_file = tmp_path / "models.config"
    config_file.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{base}" }} }}')
    flags = from_args(["--model_config_file", str(config_file), "--model_config_file_poll_wait_seconds", "0.2"])
    assert flags.model_config_poll_seconds == 0.2 and flags.model_config_file == config_file
    server = server_factory(flags.models, model_config_file=config_file, model_config_poll_seconds=0.2)
    assert predict(server, "/labels/stable")[0] == 400

    config_file.write_text(STABLE_ONLY.format(base=base))
    wait_for(lambda: predict(server, "/labels/stable") == (200, 3.0))

    caplog.set_level(logging.ERROR)
    config_file.write_text("model_config_list { this is not a text proto")
    wait_for(lambda: any("Failed to reload model config" in r.getMessage() for r in caplog.records))
    assert predict(server, "/labels/stable") == (200, 3.0)  # the running config stays


def test_poll_flag_defaults_to_reading_once(tmp_path: Path) -> None:
    config_file = tmp_path / "models.config"
    config_file.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path}" }} }}')
    assert from_args(["--model_config_file", str(config_file)]).model_config_poll_seconds == 0
