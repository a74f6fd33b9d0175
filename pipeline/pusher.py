"""Pusher executor that publishes a model version atomically and never pushes the same model twice.

TFX's own Pusher copies files straight into `<base>/<version>/`, so a model server polling the base
directory can see a half-copied version. Here the copy goes to a hidden, non-numeric folder (which
TF Serving ignores) and is renamed into place in one step. If the newest version already holds the
same model (a cached re-run re-blesses an unchanged model), nothing is copied and that version is
reported instead of creating a duplicate.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

PUSHED_VERSION_PROPERTY = "pushed_version"
"""Custom property TFX's Pusher records on its PushedModel (`_MarkPushed(..., pushed_version=...)`): the
version folder's name."""
NEWLY_PUSHED_PROPERTY = "newly_pushed"


def model_digest(model_dir: Path) -> str:
    """Content hash of a SavedModel folder (relative paths and bytes of every file)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def versions(base: Path) -> list[int]:
    """Numeric version folders in a TF Serving base path, ascending."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def push_model(model_dir: Path, base: Path, clock: Callable[[], float] = time.time) -> tuple[Path, bool]:
    """Publish `model_dir` as a new version under `base`; returns (version folder, whether it is new).

    The version is the Unix time in seconds (as TFX's Pusher), raised above the newest existing
    version if needed so the newest push is always the one TF Serving serves.
    """
    existing = versions(base)
    if existing and model_digest(base / str(existing[-1])) == model_digest(model_dir):
        return base / str(existing[-1]), False
    version = max(int(clock()), existing[-1] + 1 if existing else 0)
    base.mkdir(parents=True, exist_ok=True)
    staging = base / f".incoming-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    while True:
        target = base / str(version)
        try:
            os.rename(staging, target)
            return target, True
        except OSError:
            if not target.exists():
                shutil.rmtree(staging, ignore_errors=True)
                raise
            version += 1


class AtomicPusherExecutor(pusher_executor.Executor):
    """Drop-in executor for `tfx.components.Pusher` with a filesystem destination."""

    def Do(  # noqa: N802 (TFX executor API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        version_dir, is_new = push_model(Path(model_path), Path(destination.filesystem.base_directory))
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=str(version_dir), pushed_version=version_dir.name)
        model_push.set_int_custom_property(NEWLY_PUSHED_PROPERTY, int(is_new))


class AtomicPusher(Pusher):
    """TFX's Pusher component (same inputs, outputs and properties) running AtomicPusherExecutor."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)
