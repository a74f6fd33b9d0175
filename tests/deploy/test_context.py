"""deploy/context.py: the Docker/Railway build folder holds exactly what the Dockerfile copies."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common import exit_codes
from common.facts import DEFAULT_SERVING_DIR, MODEL_NAME, PROJECT_ROOT
from deploy import context as deploy

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"


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
    let_through = [ignore.index(f"!{p}" + ("/" if p == pushed else "")) for p in deploy.copy_sources(text)]
    assert ignore.index("*") < min(let_through)
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
    assert result.returncode == exit_codes.USAGE and "error:" in result.stderr and "Traceback" not in result.stderr


def test_railway_json() -> None:
    config = json.loads((PROJECT_ROOT / "railway.json").read_text())
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert config["deploy"]["healthcheckPath"] == f"/v1/models/{MODEL_NAME}"
