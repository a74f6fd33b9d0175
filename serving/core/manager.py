"""Version lifecycle for every served model (TF Serving `AspiredVersionsManager` + monitor).

A background thread polls each model's source, marks versions aspired or not per the model's
version policy, and applies `version_policy.next_action` until nothing is left to do. Loads run
serially on that thread, with retries; requests never wait on it. Readers get servables from an
immutable snapshot swapped in one assignment, so a request that resolved version N keeps it even
while N is being unloaded: lookups hand out leases, and an unloaded version's session is closed
once the last lease is released (`Servable.retire`).
The state history per version is kept for the status API, as TF Serving's monitor does.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serving.constants import DEFAULT_SETTLE_SECONDS
from serving.core.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, ServingError
from serving.core.servable import Servable
from serving.core.source import FileSystemVersionSource
from serving.core.types import ModelState, ServableId
from serving.core.version_policy import ActionKind, VersionPolicy, VersionSnapshot, aspired_versions, next_action

LOG = logging.getLogger(__name__)
SETTLE_REPOLL_MARGIN_SECONDS = 0.05
"""A settling version is polled again this long after its settle time ends (clock rounding)."""
LoadFn = Callable[[ServableId, Path], Servable]
LoadObserver = Callable[[str, bool, float], None]
"""Called after each load attempt with (version path, succeeded, microseconds)."""


@dataclass(frozen=True)
class ModelConfig:
    """One entry of the model config: where versions live and which to serve."""

    name: str
    base_path: Path
    policy: VersionPolicy = VersionPolicy()
    labels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: ModelState
    error: ServingError | None


@dataclass
class _Record:
    path: Path
    state: ModelState = ModelState.START
    is_aspired: bool = True
    is_new: bool = True
    error: ServingError | None = None
    retry: bool = False
    """The load failed and the folder has changed since: load it again once it settles."""


class _Model:
    def __init__(self, config: ModelConfig, settle_seconds: float) -> None:
        self.config = config
        self.source = FileSystemVersionSource(config.name, config.base_path, settle_seconds)
        self.records: dict[int, _Record] = {}
        self.serving: tuple[dict[int, Servable], Servable | None] = ({}, None)
        self.removed = False
        """Dropped by a config reload: nothing aspired, so every version unloads (TF Serving)."""


class ModelManager:
    """Loads, serves and unloads model versions; thread-safe lookups for request handlers."""

    def __init__(self, models: list[ModelConfig], load_fn: LoadFn, *, poll_seconds: float = 1.0,
                 max_load_retries: int = 5, load_retry_interval_seconds: float = 60.0,
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS, on_load: LoadObserver | None = None) -> None:
        self._models = {m.name: _Model(m, settle_seconds) for m in models}
        self._settle_seconds = settle_seconds
        self._reload_lock = threading.Lock()
        self._load_fn = load_fn
        self._poll_seconds = poll_seconds
        self._max_retries = max_load_retries
        self._retry_interval = load_retry_interval_seconds
        self._on_load = on_load
        self._retired: list[Servable] = []
        """Unloaded versions whose session may still be open (requests in flight)."""
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._replan = threading.Event()
        """Set when a poll (on any thread) leaves a version settling: the polling thread recomputes its wait."""
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def poll_once(self) -> None:
        """One source poll plus every policy action it implies (loads are synchronous)."""
        with self._poll_lock:
            for model in self._models.values():
                for version, record in list(model.records.items()):
                    if (record.state is ModelState.END and record.error is not None and not record.retry
                            and model.source.recheck(version, record.path)):
                        LOG.info("Version folder %s changed since its load failed; loading it again "
                                 "once its files settle", record.path)
                        record.retry = True
                on_disk = {} if model.removed else model.source.poll()
                if on_disk is None:  # failed poll: keep every version as it is (as TF Serving)
                    continue
                aspired = aspired_versions(set(on_disk), model.config.policy)
                with self._lock:
                    for version in aspired:
                        known = model.records.get(version)
                        if known is None or known.retry or (
                                known.state is ModelState.END and not known.is_aspired and known.error is None):
                            model.records[version] = _Record(path=on_disk[version])
                    for version, record in model.records.items():
                        record.is_aspired = version in aspired
                self._reconcile(model)
            self._collect_closed()
            if any(model.source.seconds_until_settled() is not None for model in self._models.values()):
                self._replan.set()

    def _reconcile(self, model: _Model) -> None:
        while not self._stop.is_set():
            with self._lock:
                action = next_action(
                    VersionSnapshot(v, r.state, r.is_aspired, r.is_new) for v, r in model.records.items()
                )
            if action is None:
                return
            if action.kind is ActionKind.LOAD:
                self._load(model, action.version)
            else:
                self._unload(model, action.version)

    def _load(self, model: _Model, version: int) -> None:
        record = model.records[version]
        with self._lock:
            record.state, record.is_new = ModelState.LOADING, False
        servable_id = ServableId(model.config.name, version)
        error: ServingError | None = None
        for attempt in range(self._max_retries + 1):
            started = time.perf_counter()
            try:
                servable = self._load_fn(servable_id, record.path)
            except ServingError as err:
                error = err
                LOG.error("Loading servable %s failed (attempt %d): %s", servable_id, attempt + 1, err)
            else:
                error = None
            if self._on_load:
                self._on_load(str(record.path), error is None, (time.perf_counter() - started) * 1e6)
            if error is None or attempt == self._max_retries or self._stop.wait(self._retry_interval):
                break
        with self._lock:
            if error is not None:
                record.state, record.error = ModelState.END, error
                return
            record.state = ModelState.AVAILABLE
            self._publish(model, add=servable)
        LOG.info("Successfully loaded servable version %s", servable_id)

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            model.records[version].state = ModelState.UNLOADING
            servable = model.serving[0].get(version)
            self._publish(model, remove=version)
            model.records[version].state = ModelState.END
        if servable is not None:
            servable.retire()  # the session closes once requests still using it are done
            self._retired.append(servable)
        self._collect_closed()
        LOG.info("Unloaded servable version %s", ServableId(model.config.name, version))

    def _collect_closed(self) -> None:
        """Frees the memory of closed sessions on this (manager) thread, not a request's.

        A loaded graph is full of reference cycles, so closing the session is not enough: only
        a full collection returns its memory (measured in `make bench-serving`'s reload section).
        """
        if any(s.closed for s in self._retired):
            self._retired = [s for s in self._retired if not s.closed]
            gc.collect()

    @staticmethod
    def _publish(model: _Model, add: Servable | None = None, remove: int | None = None) -> None:
        versions = dict(model.serving[0])
        if add is not None:
            versions[add.id.version] = add
        if remove is not None:
            versions.pop(remove, None)
        latest = versions[max(versions)] if versions else None
        model.serving = (versions, latest)

    def wait_until_available(self) -> list[str]:
        """Polls until every model serves a version (TF Serving's blocking start).

        Returns:
          One message per model whose aspired versions all failed to load (empty if all is well).
        """
        while not self._stop.is_set():
            self.poll_once()
            failed, pending = [], False
            with self._lock:
                for name, model in self._models.items():
                    if model.serving[1] is not None:
                        continue
                    errors = [r.error for r in model.records.values() if r.is_aspired and r.error]
                    if errors and all(r.state is ModelState.END for r in model.records.values()):
                        failed.append(f"{name}: {errors[0].status_string()}")
                    else:
                        pending = True
            if failed or not pending:
                return failed
            self._stop.wait(max(self.seconds_until_next_poll(self._poll_seconds), 0.1))
        return []

    def start(self) -> None:
        """Keeps polling in the background (a non-positive poll interval disables polling)."""
        if self._poll_seconds <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="model-manager", daemon=True)
        self._thread.start()

    def seconds_until_next_poll(self, interval: float) -> float:
        """`interval`, shortened to when the first version folder seen settling settles (plus
        `SETTLE_REPOLL_MARGIN_SECONDS`), so it loads then rather than a whole poll interval later."""
        for model in list(self._models.values()):
            due = model.source.seconds_until_settled()
            if due is not None:
                interval = min(interval, due + SETTLE_REPOLL_MARGIN_SECONDS)
        return interval

    def _run(self) -> None:
        next_poll = time.monotonic() + self._poll_seconds
        while not self._stop.is_set():
            self._replan.clear()
            wait = self.seconds_until_next_poll(next_poll - time.monotonic())
            if wait > 0 and (self._replan.wait(wait) or self._stop.is_set()):
                continue  # another poll left a version settling, or stop(): plan again
            try:
                self.poll_once()
            except Exception:  # a poll must never kill the manager thread
                LOG.exception("Model poll failed")
            next_poll = time.monotonic() + self._poll_seconds

    def interrupt(self) -> None:
        """Ends `wait_until_available` and polling soon; safe from a signal handler (no join)."""
        self._stop.set()
        self._replan.set()

    @property
    def interrupted(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._replan.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def reload(self, models: list[ModelConfig]) -> None:
        """Applies a new model list without a restart (TF Serving's `ServerCore::ReloadConfig`).

        New models are added and loaded, models left out are unloaded (requests then get
        NOT_FOUND), and changed base paths and version policies apply at once: this call polls
        and runs the resulting loads and unloads before it returns (waiting up to one settle
        period plus a second for an added model's versions to appear). Labels are applied last, all
        or none, and only if every labelled version is AVAILABLE by then, as TF Serving's
        `UpdateModelVersionLabelMap` requires (without `--allow_version_labels_for_unavailable_models`);
        otherwise the previous labels stay and FAILED_PRECONDITION is raised.

        Raises:
          FailedPreconditionError: a label names a version that is not AVAILABLE.
        """
        with self._reload_lock:  # gRPC and the config file poller may reload at the same time
            self._reload(models)

    def _reload(self, models: list[ModelConfig]) -> None:
        wanted = {m.name: m for m in models}
        with self._poll_lock, self._lock:
            for name, config in wanted.items():
                model = self._models.get(name)
                if model is None:
                    model = self._models[name] = _Model(dataclasses.replace(config, labels={}),
                                                         self._settle_seconds)
                elif model.config.base_path != config.base_path:
                    model.source = FileSystemVersionSource(name, config.base_path, self._settle_seconds)
                model.config = dataclasses.replace(config, labels=model.config.labels)
                model.removed = False
            for name, model in self._models.items():
                if name not in wanted:
                    model.removed = True
                    model.config = dataclasses.replace(model.config, labels={})
        added = [name for name in wanted if not self._models[name].serving[0]]
        # Like TF Serving, wait for added models to load; a version folder still settling (see
        # source.py) gets one settle period, then the background poll picks it up later.
        deadline = time.monotonic() + self._settle_seconds + 1.0
        while True:
            self.poll_once()
            with self._lock:
                pending = [n for n in added if not self._models[n].serving[0]
                           and not any(r.error for r in self._models[n].records.values())]
            if not pending or time.monotonic() >= deadline or self._stop.wait(0.1):
                break
        with self._lock:
            for name, config in wanted.items():
                available = self._models[name].serving[0]
                for _label, version in sorted(config.labels.items()):
                    if version not in available:
                        raise FailedPreconditionError(
                            f"Request to assign label to version {version} of model {name}, "
                            "which is not currently available for inference")
            for name, config in wanted.items():
                self._models[name].config = config
        LOG.info("Reloaded model config: %s", ", ".join(sorted(wanted)))

    # ---- lookups ---------------------------------------------------------------------------
    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request (latest ready, a specific version, or a labelled one),
        leased: the caller must call `release()` on it exactly once when done with it.

        Raises:
          NotFoundError: no such model or version is served; InvalidArgumentError: unknown label.
        """
        model = self._models.get(name)
        if label is not None:
            labels = model.config.labels if model else {}
            if label not in labels:
                raise InvalidArgumentError(f"Unrecognized servable version label: {label}")
            version = labels[label]
        while True:  # a version retired after we read the snapshot: the next read no longer has it
            versions, latest = model.serving if model else ({}, None)
            servable = latest if version is None else versions.get(version)
            if servable is None:
                what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
                raise NotFoundError(f"Servable not found for request: {what}")
            if servable.acquire():
                return servable

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Version states, newest first (`GetModelStatusImpl`)."""
        model = self._models.get(name)
        with self._lock:
            records = dict(model.records) if model else {}
            snapshot = {v: VersionStatus(v, r.state, r.error) for v, r in records.items()}
        if not snapshot:
            raise NotFoundError(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in snapshot:
                raise NotFoundError(f"Could not find version {version} of model {name}")
            return [snapshot[version]]
        return [snapshot[v] for v in sorted(snapshot, reverse=True)]

    def model_names(self) -> list[str]:
        return [name for name, model in list(self._models.items()) if not model.removed]
