"""The shipped model config with the container's model root mapped to this checkout's serving dir.

TF Serving accepts only absolute base paths, and `serving/config/models.config` names the Docker
image's `/models/customer-model`. Locally the Pusher writes to `serving_model/customer-model`, so
`make serve` runs the same config (names, version policies, labels unchanged) with that one prefix
rewritten: `python -m deploy.local_config --out .serving/models.config`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path, PurePosixPath

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from common import exit_codes
from common.facts import CONTAINER_MODEL_ROOT, DEFAULT_SERVING_DIR, PROJECT_ROOT

SHIPPED_MODEL_CONFIG = PROJECT_ROOT / "serving" / "config" / "models.config"


def localize(text: str, local_root: Path, container_root: str = CONTAINER_MODEL_ROOT) -> str:
    """`text` (a ModelServerConfig) with base paths under `container_root` moved to `local_root`."""
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    for model in config.model_config_list.config:
        path = PurePosixPath(model.base_path)
        if path.is_relative_to(container_root):
            model.base_path = str(local_root.resolve() / path.relative_to(container_root))
    return text_format.MessageToString(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local_config", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=SHIPPED_MODEL_CONFIG, help="model config to map")
    parser.add_argument("--serving-dir", type=Path, default=DEFAULT_SERVING_DIR,
                        help=f"local folder standing for {CONTAINER_MODEL_ROOT}")
    parser.add_argument("--out", type=Path, required=True, help="where to write the mapped config")
    args = parser.parse_args(argv)
    try:
        text = localize(args.config.read_text(), args.serving_dir)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# Generated from {args.config} by deploy/local_config.py; do not edit.\n{text}")
    except (OSError, text_format.ParseError) as err:
        print(f"error: cannot map {args.config}: {err}", file=sys.stderr)
        return exit_codes.USAGE
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
