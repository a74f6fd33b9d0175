"""The manager never drops a served version on a failed poll, and retries a failed load once the
version folder changes (contract section 8, plus our documented extensions)."""
from __future__ import annotations

import errno
import os
import resource
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

from serving.core.manager import ModelConfig, ModelManager
from serving.core.servable import Servable
from serving.core.types import ModelState
from tests.serving.conftest import ServerFactory, install
from tests.serving.test_lifecycle import predict_one, states, wait_for


def _manager(base: Path) -> ModelManager:
    return ModelManager([ModelConfig("m", base)], lambda sid, path: Servable.load(sid, path),
                        max_load_retries=0, settle_seconds=0)


def _exhaust_descriptors(during: Callable[[], None]) -> None:
    """Runs `during` while this process cannot open one more file (a real EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: List[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as err:
                assert err.errno == errno.EMFILE
                break
        during()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_descriptor_exhaustion_keeps_the_served_version(tmp_path: Path, model_store: Path) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)
    manager = _manager(tmp_path / "m")
    manager.poll_once()
    served = manager.get("m")
    _exhaust_descriptors(manager.poll_once)
    assert manager.get("m") is served
    assert [(s.version, s.state) for s in manager.status("m")] == [(1, ModelState.AVAILABLE)]
    manager.poll_once()
    assert manager.get("m") is served


def test_failed_load_is_retried_once_the_folder_changes(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    manager = _manager(base)
    manager.poll_once()
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"\x08half-copied")
    manager.poll_once()
    assert [(s.version, s.state, s.error is not None) for s in manager.status("m")] == [
        (2, ModelState.END, True), (1, ModelState.AVAILABLE, False)]
    manager.poll_once()  # unchanged: no retry (TF Serving never retries after the last attempt)
    assert manager.status("m")[0].state is ModelState.END and manager.get("m").id.version == 1
    shutil.rmtree(base / "2")
    install(model_store, "tf2_v2", base, 2)  # the copy completes
    manager.poll_once()
    assert [(s.version, s.state, s.error) for s in manager.status("m")] == [
        (2, ModelState.AVAILABLE, None), (1, ModelState.END, None)]
    assert manager.get("m").id.version == 2


def test_base_path_renamed_away_under_load_fails_no_request(tmp_path: Path, model_store: Path,
                                                             server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    port = server_factory((ModelConfig("m", base),), poll_seconds=0.1).rest_port
    results: List[object] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                results.append(predict_one(port))
            except AssertionError as err:
                results.append(err)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        base.rename(tmp_path / "away")
        time.sleep(1.0)  # ten polls without the folder
        (tmp_path / "away").rename(base)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failures = [r for r in results if r != 3.0]
    assert results and not failures, failures[:3]
    assert states(port) == [(1, "AVAILABLE", "OK")]
    install(model_store, "tf2_v2", base, 2)  # polling still works afterwards
    wait_for(lambda: states(port)[0] == (2, "AVAILABLE", "OK"))
