"""common.facts: the shared names agree with the files that repeat them outside Python."""
from __future__ import annotations

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common import facts
from serving.config.protos import MonitoringConfig


def test_project_root_is_the_repository_root() -> None:
    assert (facts.PROJECT_ROOT / "local_pipeline.py").is_file() and (facts.PROJECT_ROOT / "common").is_dir()
    assert facts.DEFAULT_SERVING_DIR.parent == facts.PROJECT_ROOT


def test_the_shipped_configs_name_the_model_root_and_metrics_path() -> None:
    config_dir = facts.PROJECT_ROOT / "serving" / "config"
    models = text_format.Parse((config_dir / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    expected = f"{facts.CONTAINER_MODEL_ROOT}/{facts.MODEL_NAME}"
    assert [m.base_path for m in models.model_config_list.config] == [expected]
    monitoring = text_format.Parse((config_dir / "monitoring.config").read_text(), MonitoringConfig())
    assert monitoring.prometheus_config.path == facts.METRICS_PATH


def test_the_official_image_ports_and_env_match() -> None:
    dockerfile = (facts.PROJECT_ROOT / "Dockerfile").read_text()
    assert f"ENV MODEL_NAME={facts.MODEL_NAME}" in dockerfile
    assert f"EXPOSE {facts.GRPC_PORT} {facts.REST_PORT}" in dockerfile
    assert f"--port={facts.GRPC_PORT} --rest_api_port=${{PORT:-{facts.REST_PORT}}}" in dockerfile
