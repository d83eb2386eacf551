"""The artifact store: one directory per version, written atomically, identified by its sha256.

Write protocol (why a crash never leaves a version pointing at half a model):
1. ``.staging/<token>.<pid>.pending`` marks the token as owned by a live process;
2. the model writes into ``.staging/<token>.<pid>.tmp/``; every file and folder is fsynced;
3. the folder is renamed to ``<token>/`` (atomic on one file system) and the parent fsynced;
4. the caller commits the database row naming ``<token>``, then drops the marker.
A crash before 3 leaves a ``.tmp`` folder, between 3 and 4 an artifact without a row; ``registry
check`` tells both from work in progress by the marker's process id and quarantines them on repair.

The store never interprets the files: loading weights is the plugin's job, with
``torch.load(weights_only=True)`` after :meth:`ArtifactStore.verify` has checked the sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry.storage import storage_problem

STAGING = ".staging"
QUARANTINE = "quarantine"  # beside artifacts/, so quarantined folders never look like artifacts
_CHUNK = 1 << 20


# fdatasync flushes the bytes and the size (all a new file needs) without other metadata.
_fdatasync = getattr(os, "fdatasync", os.fsync)


def _fsync_dir(path: Path) -> None:
    """Make a rename or new entry in ``path`` durable (POSIX; Windows has no directory handles)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def artifact_files(directory: Path) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every file under ``directory``, sorted; links are refused.

    A symbolic link could point outside the artifact, so the hash would not cover what gets loaded.
    """
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(directory):
        root_path = Path(root)
        for name in dirs + files:
            path = root_path / name
            if path.is_symlink():
                raise RegistryError(
                    f"The artifact {directory} contains a link ({path}); links are not allowed."
                )
        for name in files:
            path = root_path / name
            found.append((path.relative_to(directory).as_posix(), path))
    found.sort()
    return found


def _hash_files(files: list[tuple[str, Path]], *, fsync: bool = False) -> str:
    """sha256 over each file's relative path, size and bytes in sorted path order."""
    digest = hashlib.sha256(b"turbofan-desktop/artifact-v1\0")
    for relative, path in files:
        # Windows can only flush a handle opened for writing; POSIX flushes any descriptor.
        with open(path, "r+b" if fsync and os.name == "nt" else "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest.update(relative.encode("utf-8") + b"\0" + size.to_bytes(8, "little"))
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
            if fsync:
                _fdatasync(handle.fileno())
    return digest.hexdigest()


def artifact_sha256(directory: Path) -> str:
    return _hash_files(artifact_files(directory))


@dataclass(frozen=True)
class StagedArtifact:
    """A complete, durable artifact folder whose database row is not committed yet."""

    name: str
    path: Path
    sha256: str
    marker: Path


@dataclass(frozen=True)
class StagingEntry:
    """Something in ``.staging``: a folder being written (``tmp``) or an ownership marker (``pending``)."""

    path: Path
    token: str
    pid: int | None
    kind: str  # "tmp" | "pending" | "unknown"


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.staging = self.root / STAGING
        self.quarantine = self.root.parent / QUARANTINE

    def ensure(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)

    def path_of(self, name: str) -> Path:
        """The folder of an artifact name from the database, refusing names that leave the store."""
        candidate = (self.root / name).resolve()
        root = self.root.resolve()
        if candidate.parent != root or name.startswith("."):
            raise RegistryError(f"The registry names an artifact outside {self.root}: '{name}'.")
        return candidate

    # -- writing --------------------------------------------------------------------------------
    def stage(self, write: Callable[[Path], None]) -> StagedArtifact:
        """Steps 1-3 of the protocol; on any failure nothing of this artifact remains."""
        self.ensure()
        token = uuid.uuid4().hex
        pid = os.getpid()
        marker = self.staging / f"{token}.{pid}.pending"
        tmp = self.staging / f"{token}.{pid}.tmp"
        final = self.root / token
        try:
            marker.touch()
            tmp.mkdir()
            write(tmp)
            files = artifact_files(tmp)
            if not files:
                raise RegistryError("The model wrote no files into its artifact folder.")
            sha = _hash_files(files, fsync=True)
            for folder in sorted({path.parent for _, path in files}, key=lambda p: -len(p.parts)):
                _fsync_dir(folder)
            os.rename(tmp, final)
            _fsync_dir(self.root)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            marker.unlink(missing_ok=True)
            problem = storage_problem(exc, self.root)
            if problem is not None:
                raise problem from exc
            raise
        return StagedArtifact(name=token, path=final, sha256=sha, marker=marker)

    def release(self, staged: StagedArtifact) -> None:
        """Step 4, after the row committed: the artifact now belongs to the database."""
        staged.marker.unlink(missing_ok=True)

    def discard(self, staged: StagedArtifact) -> None:
        """The row did not commit: remove the artifact so nothing half-registered remains."""
        shutil.rmtree(staged.path, ignore_errors=True)
        staged.marker.unlink(missing_ok=True)

    def remove(self, name: str) -> bool:
        """Delete a committed artifact's folder (after its row is gone); False when it was absent."""
        path = self.path_of(name)
        if not path.exists():
            return False
        shutil.rmtree(path)
        return True

    # -- verification ---------------------------------------------------------------------------
    def verify(self, name: str, expected_sha256: str) -> tuple[bool, str | None]:
        """(ok, actual sha256 or None when missing)."""
        path = self.path_of(name)
        if not path.is_dir():
            return False, None
        try:
            actual = artifact_sha256(path)
        except RegistryError:
            return False, "contains-a-link"
        return actual == expected_sha256, actual

    # -- inventory (for registry check) ---------------------------------------------------------
    def artifact_names(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if not entry.name.startswith("."):
                yield entry.name

    def staging_entries(self) -> Iterator[StagingEntry]:
        if not self.staging.is_dir():
            return
        for entry in self.staging.iterdir():
            parts = entry.name.split(".")
            if len(parts) == 3 and parts[1].isdigit() and parts[2] in {"tmp", "pending"}:
                yield StagingEntry(entry, parts[0], int(parts[1]), parts[2])
            else:
                yield StagingEntry(entry, entry.name, None, "unknown")

    def move_to_quarantine(self, path: Path) -> Path:
        """Move a folder or file out of the store, never overwriting an earlier quarantined one."""
        self.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.quarantine / path.name
        counter = 1
        while target.exists():
            target = self.quarantine / f"{path.name}.{counter}"
            counter += 1
        os.replace(path, target)
        return target
