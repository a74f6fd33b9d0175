"""deploy/local_config.py: `make serve`'s model config maps the image's /models root to the local serving dir."""
from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common import exit_codes
from common.facts import MODEL_NAME, PROJECT_ROOT
from deploy import local_config
from serving.config.server_config import from_args

CONFIG_DIR = PROJECT_ROOT / "serving" / "config"


def test_local_config_maps_the_container_root_to_the_serving_dir(tmp_path: Path) -> None:
    out = tmp_path / "models.config"
    assert local_config.main(["--out", str(out), "--serving-dir", str(tmp_path / "pushed")]) == exit_codes.OK
    (tmp_path / "pushed" / MODEL_NAME).mkdir(parents=True)
    (model,) = from_args([f"--model_config_file={out}"]).models
    assert model.name == MODEL_NAME and model.base_path == tmp_path / "pushed" / MODEL_NAME
    shipped = text_format.Parse((CONFIG_DIR / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    mapped = text_format.Parse(out.read_text(), model_server_config_pb2.ModelServerConfig())
    shipped.model_config_list.config[0].ClearField("base_path")
    mapped.model_config_list.config[0].ClearField("base_path")
    assert mapped == shipped  # policies, labels, names: the same file but for the root
