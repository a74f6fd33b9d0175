"""Config reload without a restart: gRPC HandleReloadConfigRequest and --model_config_file_poll_wait_seconds."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from serving.config.server_config import from_args
from serving.core.manager import ModelConfig
from serving.main import ModelServer
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import error_of, post
from tests.serving.test_lifecycle import wait_for

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
