"""serving/core/manager.py, model lifecycle (contract section 8): polling, availability-preserving swaps, bad
versions. The manager never drops a served version on a failed poll, and retries a failed load once the version
folder changes (contract section 8, plus our documented extensions)."""
from __future__ import annotations

import errno
import os
import resource
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from serving.core.errors import NotFoundError
from serving.core.manager import ModelConfig, ModelManager
from serving.core.servable import Servable
from serving.core.types import ModelState
from tests.serving.conftest import OneVersion, ServerFactory, install
from tests.serving.http_util import get, post, predict_one, predictions_under_load, states, wait_for


def _manager(base: Path) -> ModelManager:
    return ModelManager([ModelConfig("m", base)], lambda sid, path: Servable.load(sid, path),
                        max_load_retries=0, settle_seconds=0)


def _exhaust_descriptors(during: Callable[[], None]) -> None:
    """Runs `during` while this process cannot open one more file (a real EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
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
                                                             one_version: OneVersion) -> None:
    base, server = one_version(poll_seconds=0.1)
    port = server.rest_port
    with predictions_under_load(port, threads=3) as results:
        base.rename(tmp_path / "away")
        time.sleep(1.0)  # ten polls without the folder
        (tmp_path / "away").rename(base)
        time.sleep(0.3)
    failures = [r for r in results if r != 3.0]
    assert results and not failures, failures[:3]
    assert states(port) == [(1, "AVAILABLE", "OK")]
    install(model_store, "tf2_v2", base, 2)  # polling still works afterwards
    wait_for(lambda: states(port)[0] == (2, "AVAILABLE", "OK"))


def test_unloaded_version_closes_its_session_once_requests_are_done(tmp_path: Path, model_store: Path,
                                                                    server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf1", base, 1)
    server = server_factory((ModelConfig("m", base),), rest_timeout_ms=1500)
    old = server.manager.get("m")
    old.release()
    blocked: list[tuple] = []
    # The `blocking` signature waits on an empty queue until the 1.5 s run deadline.
    thread = threading.Thread(target=lambda: blocked.append(
        post(server.rest_port, "/v1/models/m:predict", {"signature_name": "blocking", "instances": [[1.0]]})))
    thread.start()
    time.sleep(0.3)
    install(model_store, "tf1", base, 2)
    wait_for(lambda: states(server.rest_port)[:2] == [(2, "AVAILABLE", "OK"), (1, "END", "OK")])
    assert not old.closed  # the blocked run still uses version 1's session
    assert get(server.rest_port, "/v1/models/m/versions/1/metadata")[0] == 404
    thread.join()
    assert blocked[0][0] == 504
    wait_for(lambda: old.closed, timeout=5)
    assert predict_one(server.rest_port) == 3.0


def test_leases_keep_a_retired_session_open_until_released(tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    manager = _manager(base)
    manager.poll_once()
    first, second = manager.get("m"), manager.get("m", version=1)
    graph = weakref.ref(first.graph)
    install(model_store, "tf2_v2", base, 2)
    manager.poll_once()
    with pytest.raises(NotFoundError, match=r"Specific\(m, 1\)"):
        manager.get("m", version=1)
    first.release()
    assert not first.closed
    second.release()
    assert first.closed
    manager.poll_once()  # frees the closed graph (a web of reference cycles) on the manager thread
    assert graph() is None
    served = manager.get("m")
    assert served.id.version == 2 and not served.closed


def _versions(manager: ModelManager) -> list[tuple]:
    return [(s.version, s.state) for s in manager.status("m")]


def test_start_up_loads_a_fresh_version_when_it_settles_not_a_poll_interval_later(
        tmp_path: Path, model_store: Path) -> None:
    install(model_store, "tf2_v1", tmp_path / "m", 1)  # just copied: not settled at the first poll
    manager = ModelManager([ModelConfig("m", tmp_path / "m")], lambda sid, path: Servable.load(sid, path),
                           poll_seconds=3600, settle_seconds=1.0)
    failures: list[list[str]] = []
    waiting = threading.Thread(target=lambda: failures.append(manager.wait_until_available()))
    waiting.start()
    waiting.join(timeout=60)  # the next full poll would be an hour away
    manager.interrupt()
    waiting.join()
    assert failures == [[]] and _versions(manager) == [(1, ModelState.AVAILABLE)]


def test_a_version_seen_settling_is_polled_again_when_its_settle_time_ends(
        tmp_path: Path, model_store: Path) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    manager = ModelManager([ModelConfig("m", base)], lambda sid, path: Servable.load(sid, path),
                           poll_seconds=3600, settle_seconds=1.0)
    waiting = threading.Thread(target=manager.wait_until_available)
    waiting.start()
    waiting.join(timeout=60)
    manager.start()
    try:
        install(model_store, "tf2_v2", base, 2)
        manager.poll_once()  # a poll (here: this thread's; a config reload's or the poller's) sees v2 copied just now
        assert _versions(manager) == [(1, ModelState.AVAILABLE)]
        wait_for(lambda: _versions(manager)[0] == (2, ModelState.AVAILABLE), timeout=30)
    finally:
        manager.stop()


def test_version_swap_under_load_has_no_failures(tmp_path: Path, model_store: Path,
                                                 one_version: OneVersion) -> None:
    base, server = one_version()
    port = server.rest_port
    assert predict_one(port) == 3.0
    with predictions_under_load(port, threads=4) as results:
        staging = tmp_path / "staging"
        install(model_store, "tf2_v2", staging, 2)
        (staging / "2").rename(base / "2")  # atomic, like the pusher
        wait_for(lambda: states(port)[:2] == [(2, "AVAILABLE", "OK"), (1, "END", "OK")])
        time.sleep(0.3)
    assert results and all(r in (3.0, 4.0) for r in results), [r for r in results if r not in (3.0, 4.0)][:3]
    assert results[-1] == 4.0
    assert get(port, "/v1/models/m/versions/1/metadata")[0] == 404


def test_corrupt_version_never_disturbs_serving_one(tmp_path: Path, model_store: Path,
                                                    one_version: OneVersion) -> None:
    base, server = one_version()
    port = server.rest_port
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "saved_model.pb").write_bytes(b"\x08garbage-not-a-proto")
    bad.rename(base / "2")
    wait_for(lambda: states(port)[0][1] == "END")
    version, state, code = states(port)[0]
    assert version == 2 and state == "END" and code != "OK"
    assert states(port)[1] == (1, "AVAILABLE", "OK")
    assert predict_one(port) == 3.0
    install(model_store, "tf2_v2", tmp_path / "next", 3)
    (tmp_path / "next" / "3").rename(base / "3")
    wait_for(lambda: states(port)[0] == (3, "AVAILABLE", "OK"))
    assert predict_one(port) == 4.0


def test_partial_directory_is_not_loaded_until_complete(model_store: Path, one_version: OneVersion) -> None:
    base, server = one_version()
    port = server.rest_port
    partial = base / "2"
    partial.mkdir()
    (partial / "variables").mkdir()  # no saved_model.pb yet: still being written
    time.sleep(1.0)
    assert [s[0] for s in states(port)] == [1]
    shutil.copy(model_store / "tf2_v2" / "saved_model.pb", partial / "saved_model.pb")
    shutil.rmtree(partial / "variables")
    shutil.copytree(model_store / "tf2_v2" / "variables", partial / "variables")
    wait_for(lambda: states(port)[0] == (2, "AVAILABLE", "OK"))
    assert predict_one(port) == 4.0


def test_specific_policy_and_labels(tmp_path: Path, model_store: Path, server_factory: ServerFactory) -> None:
    from serving.core.version_policy import PolicyKind, VersionPolicy
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    install(model_store, "tf2_v2", base, 2)
    policy = VersionPolicy(PolicyKind.SPECIFIC, versions=frozenset({1, 2}))
    server = server_factory((ModelConfig("m", base, policy, {"stable": 1, "canary": 2}),))
    port = server.rest_port
    assert [s[:2] for s in states(port)] == [(2, "AVAILABLE"), (1, "AVAILABLE")]
    import json
    one = post(port, "/v1/models/m/labels/stable:predict", {"instances": [2.0]})
    two = post(port, "/v1/models/m/versions/2:predict", {"instances": [2.0]})
    assert json.loads(one[2])["predictions"] == [3.0] and json.loads(two[2])["predictions"] == [4.0]
    assert predict_one(port) == 4.0


def test_failed_initial_load_fails_startup(tmp_path: Path, server_factory: ServerFactory) -> None:
    import pytest

    from serving.main import StartupError
    base = tmp_path / "m" / "1"
    base.mkdir(parents=True)
    (base / "saved_model.pb").write_bytes(b"junk")
    with pytest.raises(StartupError, match="1 model\\(s\\) did not become available"):
        server_factory((ModelConfig("m", tmp_path / "m"),))
