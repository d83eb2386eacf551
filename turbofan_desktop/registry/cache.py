"""The local cache of server registries' artifacts (``TURBOFAN_HOME/cache/server-registries/``): kept
within a size and an age limit.

Every artifact a server registry hands to a plugin is unpacked into
``<cache>/server-registries/<registry key>/artifacts/<sha256>/`` and checked against its sha256; the
blob (or object) on the server stays the truth, so a pruned folder is simply unpacked again the next
time it is needed. :func:`prune_artifact_cache` removes the least recently used folders first: every
folder unused for longer than the age limit, then the oldest ones until the rest fits the size limit.
A folder used in the last few minutes is never removed (a model may be loading from it right now),
and neither is anything in ``.staging`` (registrations in progress).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_CACHE = "server-registries"
ARTIFACTS = "artifacts"
RECENT_S = 600.0  # a folder used this recently stays, whatever the limits


def touch(folder: Path) -> None:
    """Mark a cached artifact as used now (its folder's mtime orders the pruning)."""
    with contextlib.suppress(OSError):  # a read-only cache still works; it prunes by the unpack time
        os.utime(folder)


@dataclass
class CachedArtifact:
    path: Path
    size: int
    used: float  # seconds since the epoch


@dataclass
class PruneReport:
    root: str
    kept: int = 0
    kept_bytes: int = 0
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "kept": self.kept,
            "kept_bytes": self.kept_bytes,
            "removed": list(self.removed),
            "removed_bytes": self.removed_bytes,
            "failed": list(self.failed),
        }


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def cached_artifacts(cache_root: Path) -> list[CachedArtifact]:
    """Every unpacked artifact folder under ``cache_root`` (the ``cache`` folder of the settings' home)."""
    found: list[CachedArtifact] = []
    base = Path(cache_root) / SERVER_CACHE
    if not base.is_dir():
        return found
    for registry in base.iterdir():
        folder = registry / ARTIFACTS
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
                continue
            try:
                used = entry.stat().st_mtime
            except OSError:
                continue
            found.append(CachedArtifact(entry, _size(entry), used))
    return found


def prune_artifact_cache(
    cache_root: Path,
    *,
    max_mb: float,
    max_days: float,
    now: float | None = None,
    recent_s: float = RECENT_S,
) -> PruneReport:
    """Remove cached artifact folders unused for ``max_days`` (0: no age limit), then the least
    recently used until the rest takes at most ``max_mb`` (0: no size limit)."""
    now = time.time() if now is None else now
    report = PruneReport(root=str(Path(cache_root) / SERVER_CACHE))
    entries = sorted(cached_artifacts(Path(cache_root)), key=lambda e: e.used)  # oldest first
    total = sum(e.size for e in entries)
    limit = max_mb * 1024 * 1024 if max_mb > 0 else None
    keep: list[CachedArtifact] = []
    for entry in entries:
        recent = now - entry.used < recent_s
        too_old = max_days > 0 and now - entry.used > max_days * 86400
        too_big = limit is not None and total > limit
        if recent or not (too_old or too_big):
            keep.append(entry)
            continue
        try:
            shutil.rmtree(entry.path)
        except OSError as exc:
            report.failed.append(f"{entry.path}: {exc.strerror or exc}")
            keep.append(entry)
            continue
        total -= entry.size
        report.removed.append(str(entry.path))
        report.removed_bytes += entry.size
    report.kept = len(keep)
    report.kept_bytes = sum(e.size for e in keep)
    return report


__all__ = ["PruneReport", "cached_artifacts", "prune_artifact_cache", "touch"]
