"""Finds servable versions under a model's base path (TF Serving `FileSystemStoragePathSource`).

A child directory is a version when its name parses as an int64 (`00000123` is version 123);
other children are ignored. On top of TF Serving, a version is only reported once it looks
complete: it holds `saved_model.pb`/`.pbtxt` and its files have stopped changing (unchanged
since the previous poll, or untouched for `settle_seconds`). A directory still being copied
is therefore never loaded half-written; an atomically renamed one is picked up at once.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

LOG = logging.getLogger(__name__)
_INT64_MAX = 2**63 - 1
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
Fingerprint = Tuple[Tuple[str, int, int], ...]


def parse_version(name: str) -> Optional[int]:
    """`absl::SimpleAtoi` into int64, or None for non-version children."""
    text = name.strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        return None
    value = int(text)
    return value if -(2**63) <= value <= _INT64_MAX else None


def _fingerprint(path: Path) -> Tuple[Fingerprint, float]:
    entries = []
    newest = 0.0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            entries.append((os.path.join(root, name), st.st_size, st.st_mtime_ns))
            newest = max(newest, st.st_mtime)
    return tuple(sorted(entries)), newest


class FileSystemVersionSource:
    """Polls one base path and reports the complete version directories found there."""

    def __init__(self, name: str, base_path: Path, settle_seconds: float = 2.0) -> None:
        self.name = name
        self.base_path = base_path
        self.settle_seconds = settle_seconds
        self._seen: Dict[int, Fingerprint] = {}
        self._stable: Set[int] = set()
        self._warned_empty = False

    def poll(self) -> Dict[int, Path]:
        """Version -> directory for every complete, stable version currently on disk."""
        try:
            children = sorted(os.listdir(self.base_path))
        except OSError as err:
            LOG.error("Could not find base path %s for servable %s: %s", self.base_path, self.name, err)
            return {}
        found: Dict[int, Path] = {}
        present = set()
        for child in children:
            version = parse_version(child)
            path = self.base_path / child
            if version is None or not path.is_dir():
                continue
            if version in present:
                LOG.warning("Duplicate version directories detected: %s", path)
                continue
            present.add(version)
            if self._is_complete(version, path):
                found[version] = path
        self._seen = {v: fp for v, fp in self._seen.items() if v in present}
        self._stable &= present
        if not found and not self._warned_empty:
            LOG.warning(
                "No versions of servable %s found under base path %s. Did you forget to name "
                "your leaf directory as a number (eg. '/1/')?", self.name, self.base_path,
            )
        self._warned_empty = not found
        return found

    def _is_complete(self, version: int, path: Path) -> bool:
        if not any((path / f).is_file() for f in _SAVED_MODEL_FILES):
            return False
        if version in self._stable:  # once reported, later touches must not unload it
            return True
        fingerprint, newest = _fingerprint(path)
        previous = self._seen.get(version)
        self._seen[version] = fingerprint
        if previous == fingerprint or time.time() - newest >= self.settle_seconds:
            self._stable.add(version)
            return True
        return False
