"""Which versions to serve, and in what order to load/unload them. Pure functions, no I/O.

* `aspired_versions(on_disk, policy)` applies the model's `model_version_policy`
  (latest N — default N=1 —, all, or specific).
* `next_action(snapshots)` is TF Serving's `AvailabilityPreservingPolicy`: unload an un-aspired
  ready version only if an aspired one is ready (or several un-aspired ones are, or nothing is
  aspired any more); otherwise load the highest new aspired version. A new version is therefore
  loaded *before* the old one is unloaded, and a version that fails to load never takes the
  serving one down.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Set
from dataclasses import dataclass

from serving.core.types import ModelState


class PolicyKind(enum.Enum):
    LATEST = "latest"
    ALL = "all"
    SPECIFIC = "specific"


@dataclass(frozen=True)
class VersionPolicy:
    """`FileSystemStoragePathSourceConfig.ServableVersionPolicy`."""

    kind: PolicyKind = PolicyKind.LATEST
    num_versions: int = 1
    versions: frozenset[int] = frozenset()


def aspired_versions(on_disk: Set[int], policy: VersionPolicy) -> frozenset[int]:
    """The versions the policy wants served, out of those present (and complete) on disk."""
    if policy.kind is PolicyKind.ALL:
        return frozenset(on_disk)
    if policy.kind is PolicyKind.SPECIFIC:
        return frozenset(on_disk & policy.versions)
    return frozenset(sorted(on_disk, reverse=True)[: policy.num_versions])


class ActionKind(enum.Enum):
    LOAD = "load"
    UNLOAD = "unload"


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    version: int


@dataclass(frozen=True)
class VersionSnapshot:
    """What the policy sees of one version: its state and whether the source still wants it."""

    version: int
    state: ModelState
    is_aspired: bool
    is_new: bool = False
    """Never tried yet (state START); only such versions are candidates for loading."""


def next_action(snapshots: Iterable[VersionSnapshot]) -> Action | None:
    """`AvailabilityPreservingPolicy::GetNextAction`; None when nothing is left to do."""
    snapshots = list(snapshots)
    has_aspired = any(s.is_aspired for s in snapshots)
    has_aspired_serving = any(s.is_aspired and s.state is ModelState.AVAILABLE for s in snapshots)
    unaspired_serving = [
        s.version for s in snapshots if not s.is_aspired and s.state is ModelState.AVAILABLE
    ]
    if unaspired_serving and (not has_aspired or has_aspired_serving or len(unaspired_serving) > 1):
        return Action(ActionKind.UNLOAD, min(unaspired_serving))
    new_aspired = [s.version for s in snapshots if s.is_aspired and s.is_new]
    if new_aspired:
        return Action(ActionKind.LOAD, max(new_aspired))
    return None
