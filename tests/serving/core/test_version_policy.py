"""`serving/core/version_policy.py`: aspired versions per policy, and the availability-preserving policy."""
from __future__ import annotations

import pytest

from serving.core.types import ModelState
from serving.core.version_policy import (
    Action,
    ActionKind,
    PolicyKind,
    VersionPolicy,
    VersionSnapshot,
    aspired_versions,
    next_action,
)


def test_aspired_versions_per_policy() -> None:
    disk = {1, 2, 3}
    assert aspired_versions(disk, VersionPolicy()) == {3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.LATEST, 2)) == {2, 3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.ALL)) == {1, 2, 3}
    assert aspired_versions(disk, VersionPolicy(PolicyKind.SPECIFIC, versions=frozenset({1, 7}))) == {1}


A, L, S, E = ModelState.AVAILABLE, ModelState.LOADING, ModelState.START, ModelState.END


@pytest.mark.parametrize("snapshots, action", [
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, S, True, True)], Action(ActionKind.LOAD, 2)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, L, True)], None),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, A, True)], Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, E, True)], None),
    ([VersionSnapshot(1, A, False)], Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, A, False), VersionSnapshot(2, A, False), VersionSnapshot(3, E, True)],
     Action(ActionKind.UNLOAD, 1)),
    ([VersionSnapshot(1, S, True, True), VersionSnapshot(2, S, True, True)], Action(ActionKind.LOAD, 2)),
])
def test_availability_preserving_policy(snapshots: list, action: object) -> None:
    assert next_action(snapshots) == action
