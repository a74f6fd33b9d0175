"""Finds servable versions under a model's base path (TF Serving `FileSystemStoragePathSource`).

A child directory is a version when its name parses as an int64 (`00000123` is version 123);
other children are ignored.

A poll that fails (the base path cannot be listed: I/O error, too many open files, the folder
missing or briefly renamed away) reports nothing, and the manager leaves the served versions as
they are: TF Serving's source likewise returns the error without calling its aspired-versions
callback (`PollFileSystemAndInvokeCallback`). A base path that lists fine but holds no version
still unloads everything, as in TF Serving.

Our extension, on top of TF Serving: a version is only reported once it looks complete. It must
hold `saved_model.pb`/`.pbtxt`, and its files must have settled: either every file and folder in
it has an inode change time (`st_ctime`, which copy tools cannot back-date, unlike `st_mtime`) at
least `settle_seconds` old, or our polls have seen the same listing (names, sizes, mtimes, modes) for
`settle_seconds`. A folder whose files arrive seconds apart is therefore not loaded half-written
as long as the gaps are shorter than `settle_seconds`; a folder written earlier and renamed into
place is picked up at once. A version seen unsettled is polled again as soon as its settle time ends
(`seconds_until_settled`, used by the manager), not only at the next full poll interval. If a load
fails anyway, `recheck` tells the manager when the folder changes, so the load is retried once the
new files settle.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
import time
from pathlib import Path

from common.limits import INT64_MAX, INT64_MIN
from serving.constants import DEFAULT_SETTLE_SECONDS

LOG = logging.getLogger(__name__)
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
Fingerprint = tuple[tuple[str, int, int, int], ...]
"""(relative path, size, mtime ns, mode) of every file and folder under a version folder, sorted.
The mode counts so that a load that failed on permissions is retried once they are fixed."""


def parse_version(name: str) -> int | None:
    """`absl::SimpleAtoi` into int64, or None for non-version children."""
    text = name.strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def _raise(err: OSError) -> None:
    raise err


def fingerprint(path: Path) -> tuple[Fingerprint, float]:
    """The listing of a version folder and the newest inode change time (epoch seconds) in it.

    Raises:
      OSError: the folder or one of its subfolders could not be read (a file that disappears
        between listing and stat is skipped: the listing changes, which is what matters).
    """
    entries = []
    newest = 0.0
    for root, dirs, files in os.walk(path, onerror=_raise):
        for name in dirs + files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size if stat.S_ISREG(st.st_mode) else -1,
                            st.st_mtime_ns, st.st_mode))
            newest = max(newest, st.st_ctime)
    return tuple(sorted(entries)), newest


class FileSystemVersionSource:
    """Polls one base path and reports the complete version directories found there."""

    def __init__(self, name: str, base_path: Path, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.name = name
        self.base_path = base_path
        self.settle_seconds = settle_seconds
        self._pending: dict[int, tuple[Fingerprint, float, float]] = {}
        """Versions not yet settled: their last listing, when (monotonic) it last changed, and when
        (monotonic) the version settles if nothing changes meanwhile."""
        self._stable: dict[int, Fingerprint] = {}
        """Versions reported complete, with their listing at that time (for `recheck`)."""
        self._warned_empty = False
        self._unreadable: set[int] = set()
        self._last_error: str | None = None

    def poll(self) -> dict[int, Path] | None:
        """Version -> directory for every complete, settled version currently on disk.

        Returns:
          None when the poll failed (logged once per kind of failure, and again on recovery);
          the caller must then leave its versions as they are.
        """
        try:
            found = self._poll()
        except OSError as err:
            message = (f"Could not find base path {self.base_path} for servable {self.name}"
                       if err.errno == errno.ENOENT and not os.path.exists(self.base_path)
                       else f"Failed to read base path {self.base_path} for servable {self.name}: {err}")
            if message != self._last_error:
                LOG.error("%s; keeping the versions already served and polling again", message)
                self._last_error = message
            return None
        if self._last_error is not None:
            LOG.info("Base path %s for servable %s is readable again", self.base_path, self.name)
            self._last_error = None
        if not found and not self._warned_empty:
            LOG.warning(
                "No versions of servable %s found under base path %s. Did you forget to name "
                "your leaf directory as a number (eg. '/1/')?", self.name, self.base_path,
            )
        self._warned_empty = not found
        return found

    def _poll(self) -> dict[int, Path]:
        children = sorted(os.listdir(self.base_path))
        found: dict[int, Path] = {}
        present = set()
        for child in children:
            version = parse_version(child)
            if version is None:
                continue
            path = self.base_path / child
            try:
                if not stat.S_ISDIR(os.stat(path).st_mode):
                    continue
            except FileNotFoundError:  # removed since the listing
                continue
            if version in present:
                LOG.warning("Duplicate version directories detected: %s", path)
                continue
            present.add(version)
            if self._is_complete(version, path):
                found[version] = path
        self._pending = {v: p for v, p in self._pending.items() if v in present}
        self._stable = {v: fp for v, fp in self._stable.items() if v in present}
        self._unreadable &= present
        return found

    def _is_complete(self, version: int, path: Path) -> bool:
        if version in self._stable:  # once reported, later touches must not unload it
            return True
        if not any(os.path.isfile(path / f) for f in _SAVED_MODEL_FILES):
            self._pending.pop(version, None)
            return False
        try:
            listing, newest_change = fingerprint(path)
        except OSError as err:  # not readable yet (permissions, EMFILE): not complete yet either
            self._pending.pop(version, None)
            if version not in self._unreadable:
                LOG.warning("Cannot read version folder %s yet: %s", path, err)
            self._unreadable.add(version)
            return False
        self._unreadable.discard(version)
        now = time.monotonic()
        previous = self._pending.get(version)
        since = previous[1] if previous is not None and previous[0] == listing else now
        unchanged_for = time.time() - newest_change
        due = now + self.settle_seconds - max(unchanged_for, now - since)
        self._pending[version] = (listing, since, due)
        if unchanged_for >= self.settle_seconds or now - since >= self.settle_seconds:
            del self._pending[version]
            self._stable[version] = listing
            return True
        return False

    def recheck(self, version: int, path: Path) -> bool:
        """For a version whose load failed: True if its folder `path` changed since it was reported.

        The version is then withdrawn until the new files settle, so the next report of it is a
        fresh, retryable load. Unreadable folders count as unchanged.
        """
        reported = self._stable.get(version)
        if reported is None:
            return False
        try:
            listing, _ = fingerprint(path)
        except OSError:
            return False
        if listing == reported:
            return False
        del self._stable[version]
        now = time.monotonic()
        self._pending[version] = (listing, now, now + self.settle_seconds)
        return True

    def seconds_until_settled(self) -> float | None:
        """Seconds until the first version seen unsettled by the last poll settles, if its files do
        not change meanwhile (0 if that time has passed); None if no version is waiting to settle.
        The caller polls again then, so a settling version loads as soon as it can."""
        dues = [due for _, _, due in list(self._pending.values())]
        return max(min(dues) - time.monotonic(), 0.0) if dues else None
