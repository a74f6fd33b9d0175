"""Flags and config files (official protos). The Docker image recipe and its build context: tests/deploy/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common.facts import CONTAINER_MODEL_ROOT, METRICS_PATH, MODEL_NAME, PROJECT_ROOT, REST_PORT
from serving.config.protos import MonitoringConfig
from serving.config.server_config import ConfigError, from_args, load_batching, load_metrics_path, load_model_config
from serving.core.version_policy import PolicyKind

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"


def test_shipped_model_config_parses_with_official_proto() -> None:
    proto = text_format.Parse((CONFIG_DIR / "models.config").read_text(),
                              model_server_config_pb2.ModelServerConfig())
    entry = proto.model_config_list.config[0]
    assert entry.name == MODEL_NAME and entry.model_platform == "tensorflow"
    assert entry.base_path == f"{CONTAINER_MODEL_ROOT}/{MODEL_NAME}"


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
    assert from_args([f"--model_base_path={tmp_path}"]).observed_output is None  # the server names no output
    assert from_args([f"--model_base_path={tmp_path}", "--observed_output=p"]).observed_output == "p"
    with pytest.raises(ConfigError, match="--request_log_file needs --observed_output"):
        from_args([f"--model_base_path={tmp_path}", f"--request_log_file={tmp_path / 'r.jsonl'}"])


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


def test_prediction_store_url_is_off_by_default_and_checked(tmp_path: Path) -> None:
    base = f"--model_base_path={tmp_path}"
    assert from_args([base]).prediction_store_url is None  # TF Serving keeps no predictions
    url = f"sqlite:///{tmp_path / 'p.sqlite'}"
    config = from_args([base, "--observed_output=p", f"--prediction_store_url={url}", "--prediction_id_output=id"])
    assert (config.prediction_store_url, config.prediction_id_output) == (url, "id")
    with pytest.raises(ConfigError, match="--prediction_store_url needs --observed_output"):
        from_args([base, f"--prediction_store_url={url}"])
    with pytest.raises(ConfigError, match="--prediction_store_url: not a database URL: 'predictions.sqlite'"):
        from_args([base, "--observed_output=p", "--prediction_store_url=predictions.sqlite"])


def test_a_bad_prediction_store_url_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "serving", f"--model_base_path={tmp_path}", "--observed_output=p",
                           "--prediction_store_url=not a url"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: --prediction_store_url: not a database URL: 'not a url'" in done.stderr
