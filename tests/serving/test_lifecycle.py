"""Model lifecycle (contract section 8): polling, availability-preserving swaps, bad versions."""
from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from serving.core.manager import ModelConfig
from tests.serving.conftest import ServerFactory, install
from tests.serving.http_util import get, post


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def states(port: int, name: str = "m") -> list[tuple]:
    import json
    status, _, body = get(port, f"/v1/models/{name}")
    assert status == 200
    return [(int(v["version"]), v["state"], v["status"]["error_code"])
            for v in json.loads(body)["model_version_status"]]


def predict_one(port: int) -> float:
    import json
    status, _, body = post(port, "/v1/models/m:predict", {"instances": [2.0]})
    assert status == 200, body
    return json.loads(body)["predictions"][0]


def test_version_swap_under_load_has_no_failures(tmp_path: Path, model_store: Path,
                                                 server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),))
    port = server.rest_port
    assert predict_one(port) == 3.0
    results: list[object] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set() and len(results) < 20000:
            try:
                results.append(predict_one(port))
            except AssertionError as err:
                results.append(err)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    staging = tmp_path / "staging"
    install(model_store, "tf2_v2", staging, 2)
    (staging / "2").rename(base / "2")  # atomic, like the pusher
    wait_for(lambda: states(port)[:2] == [(2, "AVAILABLE", "OK"), (1, "END", "OK")])
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert results and all(r in (3.0, 4.0) for r in results), [r for r in results if r not in (3.0, 4.0)][:3]
    assert results[-1] == 4.0
    assert get(port, "/v1/models/m/versions/1/metadata")[0] == 404


def test_corrupt_version_never_disturbs_serving_one(tmp_path: Path, model_store: Path,
                                                    server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),))
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


def test_partial_directory_is_not_loaded_until_complete(tmp_path: Path, model_store: Path,
                                                        server_factory: ServerFactory) -> None:
    base = tmp_path / "m"
    install(model_store, "tf2_v1", base, 1)
    server = server_factory((ModelConfig("m", base),))
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
