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

from deploy import context as deploy
from deploy import local_config
from serving.config.protos import MonitoringConfig
from serving.config.server_config import ConfigError, from_args, load_batching, load_metrics_path, load_model_config
from serving.constants import (
    CONTAINER_MODEL_ROOT,
    DEFAULT_SERVING_DIR,
    METRICS_PATH,
    MODEL_NAME,
    PROJECT_ROOT,
    REST_PORT,
)
from serving.core.version_policy import PolicyKind

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"


def test_shipped_model_config_parses_with_official_proto() -> None:
    proto = text_format.Parse((CONFIG_DIR / "models.config").read_text(),
                              model_server_config_pb2.ModelServerConfig())
    entry = proto.model_config_list.config[0]
    assert entry.name == MODEL_NAME and entry.model_platform == "tensorflow"
    assert entry.base_path == f"{CONTAINER_MODEL_ROOT}/{MODEL_NAME}"


def test_local_config_maps_the_container_root_to_the_serving_dir(tmp_path: Path) -> None:
    out = tmp_path / "models.config"
    assert local_config.main(["--out", str(out), "--serving-dir", str(tmp_path / "pushed")]) == 0
    (tmp_path / "pushed" / MODEL_NAME).mkdir(parents=True)
    (model,) = from_args([f"--model_config_file={out}"]).models
    assert model.name == MODEL_NAME and model.base_path == tmp_path / "pushed" / MODEL_NAME
    shipped = text_format.Parse((CONFIG_DIR / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    mapped = text_format.Parse(out.read_text(), model_server_config_pb2.ModelServerConfig())
    shipped.model_config_list.config[0].ClearField("base_path")
    mapped.model_config_list.config[0].ClearField("base_path")
    assert mapped == shipped  # policies, labels, names: the same file but for the root


@pytest.mark.parametrize("flag", ["--model_base_path=serving_model/customer-model", "--model_config_file={cfg}"])
def test_relative_base_paths_are_refused_like_tf_serving(tmp_path: Path, flag: str) -> None:
    (tmp_path / "m.config").write_text('model_config_list { config { name: "customer-model" '
                                       'base_path: "serving_model/customer-model" } }')
    with pytest.raises(ConfigError, match="Expected model customer-model to have an absolute path or URI; "
                                          "got base_path\\(\\)=serving_model/customer-model"):
        from_args([flag.format(cfg=tmp_path / "m.config"), "--model_name=customer-model"])


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
    assert from_args(["--model_base_path=/does/not/exist"]).models[0].base_path == Path("/does/not/exist")
    with pytest.raises(ConfigError, match="absolute path"):
        from_args(["--model_base_path=relative/path"])
    assert from_args([f"--model_base_path={tmp_path}", "--file_system_settle_seconds=0.5"]).settle_seconds == 0.5
    with pytest.raises(ConfigError, match="--file_system_settle_seconds must be >= 0"):
        from_args([f"--model_base_path={tmp_path}", "--file_system_settle_seconds=nan"])
    with pytest.raises(ConfigError, match="invalid int value"):
        from_args(["--port=abc"])


def test_monitoring_proto_matches_official_field_numbers() -> None:
    fields = {f.name: f.number for f in MonitoringConfig.DESCRIPTOR.fields}
    assert fields == {"prometheus_config": 1}
    assert MonitoringConfig.DESCRIPTOR.full_name == "tensorflow.serving.MonitoringConfig"


@pytest.mark.parametrize("args, message", [
    (["--port=abc"], "invalid int value"),
    (["--model_base_path=relative/path"], "absolute path"),
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
    pushed = (DEFAULT_SERVING_DIR.relative_to(PROJECT_ROOT) / MODEL_NAME).as_posix()
    model_config = text_format.Parse((CONFIG_DIR / "models.config").read_text(),
                                     model_server_config_pb2.ModelServerConfig()).model_config_list.config[0]
    # The Pusher's folder lands exactly where the shipped model config points TF Serving.
    assert f"COPY {pushed} {model_config.base_path}\n" in text
    assert "COPY serving/config/models.config serving/config/monitoring.config /srv/config/" in text
    assert "--rest_api_port=${PORT:-8501}" in text
    assert "--model_config_file=/srv/config/models.config" in text
    assert "--monitoring_config_file=/srv/config/monitoring.config" in text
    assert deploy.copy_sources(text) == [pushed, "serving/config/models.config", "serving/config/monitoring.config"]
    # .dockerignore lets through every COPY source and hides the Pusher's in-progress folders.
    ignore = (PROJECT_ROOT / ".dockerignore").read_text().split("\n")
    assert ignore.index("*") < min(ignore.index(f"!{p}" + ("/" if p == pushed else ""))
                                   for p in deploy.copy_sources(text))
    assert f"{pushed}/.*" in ignore


def test_deploy_context_holds_the_pushed_versions_and_configs(tmp_path: Path) -> None:
    pushed = tmp_path / "repo" / DEFAULT_SERVING_DIR.relative_to(PROJECT_ROOT) / MODEL_NAME
    (pushed / "17" / "variables").mkdir(parents=True)
    (pushed / "17" / "saved_model.pb").write_bytes(b"model")
    (pushed / ".incoming-18-1").mkdir()  # a push still being written is not deployed
    for name in ("Dockerfile", "railway.json", ".dockerignore", "serving/config/models.config",
                 "serving/config/monitoring.config"):
        (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    dest = tmp_path / "stage"
    assert deploy.stage(dest, tmp_path / "repo") == ["17"]
    staged = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert staged == sorted([".customer-model-deploy", ".dockerignore", "Dockerfile", "railway.json", "serving",
                             "serving/config", "serving/config/models.config", "serving/config/monitoring.config",
                             "serving_model", f"serving_model/{MODEL_NAME}", f"serving_model/{MODEL_NAME}/17",
                             f"serving_model/{MODEL_NAME}/17/saved_model.pb",
                             f"serving_model/{MODEL_NAME}/17/variables"])
    assert deploy.stage(dest, tmp_path / "repo") == ["17"]  # a staged folder may be refreshed


def test_deploy_context_refuses_unsafe_destinations(tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep")
    with pytest.raises(deploy.DeployError, match="was not staged by this command"):
        deploy.stage(tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep"
    with pytest.raises(deploy.DeployError, match="inside the checkout"):
        deploy.stage(PROJECT_ROOT / "build")
    result = subprocess.run([sys.executable, "-m", "deploy.context", str(tmp_path / "precious")],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_railway_json() -> None:
    config = json.loads((PROJECT_ROOT / "railway.json").read_text())
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert config["deploy"]["healthcheckPath"] == f"/v1/models/{MODEL_NAME}"
