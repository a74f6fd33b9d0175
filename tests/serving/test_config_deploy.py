"""Flags and config files (official protos), the Docker image recipe and railway.json."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.config import ConfigError, from_args, load_batching, load_metrics_path, load_model_config
from serving.constants import DEFAULT_SERVING_DIR, METRICS_PATH, MODEL_NAME, PROJECT_ROOT, REST_PORT
from serving.protos import MonitoringConfig
from serving.version_policy import PolicyKind

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"


def test_shipped_model_config_parses_with_official_proto() -> None:
    proto = text_format.Parse((CONFIG_DIR / "models.config").read_text(),
                              model_server_config_pb2.ModelServerConfig())
    entry = proto.model_config_list.config[0]
    assert entry.name == MODEL_NAME and entry.model_platform == "tensorflow"
    assert Path(entry.base_path) == DEFAULT_SERVING_DIR.relative_to(PROJECT_ROOT) / MODEL_NAME


def test_shipped_monitoring_and_batching_configs() -> None:
    assert load_metrics_path(str(CONFIG_DIR / "monitoring.config")) == METRICS_PATH
    options = load_batching(str(CONFIG_DIR / "batching.config"))
    assert options.max_batch_size == 256 and options.max_enqueued_batches == 1000


def test_model_config_policies_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "m.config"
    path.write_text('model_config_list { config { name: "a" base_path: "/x" model_platform: "tensorflow" '
                    'model_version_policy { specific { versions: 1 versions: 2 } } '
                    'version_labels { key: "stable" value: 1 } } '
                    'config { name: "b" base_path: "/y" model_version_policy { all {} } } }')
    a, b = load_model_config(str(path))
    assert a.policy.kind is PolicyKind.SPECIFIC and a.policy.versions == {1, 2} and a.labels == {"stable": 1}
    assert b.policy.kind is PolicyKind.ALL


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: 'a' base_path: '/x' bogus: 1 } }", "Invalid --model_config_file"),
    ("model_config_list { config { name: 'a' } }", "needs a name and a base_path"),
    ("model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }", "not supported"),
])
def test_bad_model_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_model_config(str(path))


def test_flags(tmp_path: Path) -> None:
    config = from_args([f"--model_base_path={tmp_path}", "--model_name=x", "--port=9000",
                        "--rest_api_port=0", "--enable_batching", "--file_system_poll_wait_seconds=5"])
    assert config.models[0].name == "x" and config.grpc_port == 9000 and config.rest_port is None
    assert config.batching is not None and config.poll_seconds == 5
    assert from_args([f"--model_base_path={tmp_path}"]).rest_port == REST_PORT
    with pytest.raises(ConfigError, match="--enable_batching"):
        from_args([f"--model_base_path={tmp_path}", "--batching_parameters_file=/x"])
    with pytest.raises(ConfigError, match="Could not find base path"):
        from_args(["--model_base_path=/does/not/exist"])
    with pytest.raises(ConfigError, match="invalid int value"):
        from_args(["--port=abc"])


def test_monitoring_proto_matches_official_field_numbers() -> None:
    fields = {f.name: f.number for f in MonitoringConfig.DESCRIPTOR.fields}
    assert fields == {"prometheus_config": 1}
    assert MonitoringConfig.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"


@pytest.mark.parametrize("args, message", [
    (["--port=abc"], "invalid int value"),
    (["--model_base_path=/does/not/exist"], "Could not find base path"),
    (["--model_config_file=/does/not/exist"], "Cannot read --model_config_file"),
])
def test_cli_bad_flags_exit_nonzero_without_traceback(args: list, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "serving", *args], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_dockerfile_serves_what_the_pusher_writes() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM tensorflow/serving:2\.16\.\d+$", text, re.M)
    pushed = DEFAULT_SERVING_DIR.relative_to(PROJECT_ROOT) / MODEL_NAME
    assert f"COPY {pushed.as_posix()} /models/{MODEL_NAME}\n" in text
    assert "COPY serving/config/models.config serving/config/monitoring.config /srv/config/" in text
    assert "RUN ln -s /models /srv/serving_model" in text and "WORKDIR /srv" in text
    assert "--rest_api_port=${PORT:-8501}" in text
    assert "--model_config_file=/srv/config/models.config" in text
    assert "--monitoring_config_file=/srv/config/monitoring.config" in text
    # The config's relative base path, resolved from WORKDIR through the link, is the copy target.
    base = text_format.Parse((CONFIG_DIR / "models.config").read_text(),
                             model_server_config_pb2.ModelServerConfig()).model_config_list.config[0].base_path
    resolved = ("/srv/" + base).replace("/srv/serving_model", "/models", 1)
    assert resolved == f"/models/{MODEL_NAME}"


def test_railway_json() -> None:
    config = json.loads((PROJECT_ROOT / "railway.json").read_text())
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert config["deploy"]["healthcheckPath"] == f"/v1/models/{MODEL_NAME}"
