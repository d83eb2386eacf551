"""The artifact store: one directory per version, written atomically, identified by its sha256.

Write protocol (why a crash never leaves a version pointing at half a model):
1. ``.staging/<token>.<pid>.pending`` marks the token as owned by a live process;
2. the model writes into ``.staging/<token>.<pid>.tmp/``; every file and folder is fsynced;
3. the folder is renamed to ``<token>/`` (atomic on one file system) and the parent fsynced;
4. the caller commits the database row naming ``<token>``, then drops the marker.
A crash before 3 leaves a ``.tmp`` folder, between 3 and 4 an artifact without a row; ``registry
check`` tells both from work in progress by the marker's process id and quarantines them on repair.

A registry on a database server keeps its artifacts in the database instead
(:class:`DatabaseArtifactStore`): the folder is packed as a deterministic tar (:func:`pack_folder`),
inserted in the same transaction as the version row that names it, keyed by the same folder sha256,
and unpacked into a local cache folder (checked against that sha256) when a plugin loads it.

The store never interprets the files: loading weights is the plugin's job, with
``torch.load(weights_only=True)`` after :meth:`ArtifactStore.verify` has checked the sha256.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry.storage import storage_problem

if TYPE_CHECKING:
    import peewee

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
    blob: bytes | None = None  # the packed folder, for a store that keeps artifacts in its database


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

    def commit(self, staged: StagedArtifact) -> None:
        """Inside the transaction that inserts the row: nothing to do for a folder (already durable)."""

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
    def has(self, name: str, *, any_entry: bool = False) -> bool:
        """Whether the artifact folder is there (``any_entry``: or anything else under its name)."""
        path = self.path_of(name) if not any_entry else self.root / name
        return path.exists() if any_entry else path.is_dir()

    def describe(self, name: str) -> str:
        """Where an artifact lives, for messages."""
        return str(self.root / name)

    def quarantine_artifact(self, name: str) -> Path:
        """Move an orphaned artifact out of the store (see :meth:`move_to_quarantine`)."""
        return self.move_to_quarantine(self.root / name)

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


# -- artifacts inside the registry's database ---------------------------------------------------------
_TAR_FORMAT = tarfile.PAX_FORMAT


def pack_folder(directory: Path, files: list[tuple[str, Path]] | None = None) -> bytes:
    """The folder's files as an uncompressed tar that depends only on names and bytes: sorted names,
    zero mtimes, owner 0, mode 0644 (so packing the same folder twice gives the same bytes)."""
    files = artifact_files(directory) if files is None else files
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=_TAR_FORMAT) as tar:
        for relative, path in files:
            info = tarfile.TarInfo(relative)
            info.size = path.stat().st_size
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def unpack_folder(blob: bytes, directory: Path) -> None:
    """Write the files of a :func:`pack_folder` tar into ``directory``; anything but plain files with
    relative names inside the folder is refused (a blob is data, never a path outside the cache)."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts or not parts:
                raise RegistryError(
                    f"An artifact in the registry database holds an unsafe entry '{member.name}'."
                )
            target = directory.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has a reader
            with open(target, "wb") as out:
                shutil.copyfileobj(source, out)


class DatabaseArtifactStore(ArtifactStore):
    """Artifacts in the ``artifact_blobs`` table of a server registry, with a local cache folder.

    A name is the artifact's sha256 (content-addressed: two identical models share one blob). The
    blob is inserted in the transaction that inserts its version row (:meth:`commit`), so a version
    never names a blob that is not there; the cache folder under ``root`` is disposable and is
    rebuilt from the blob whenever its hash does not match.
    """

    def __init__(self, root: Path, db: peewee.Database):
        super().__init__(root)
        self.db = db

    def _locked(self, sha256: str) -> None:
        from turbofan_desktop.registry.db import lock_key

        lock_key(self.db, "artifact", sha256)  # deletion and insertion of one blob never interleave

    def stage(self, write: Callable[[Path], None]) -> StagedArtifact:
        self.ensure()
        token = uuid.uuid4().hex
        pid = os.getpid()
        marker = self.staging / f"{token}.{pid}.pending"
        tmp = self.staging / f"{token}.{pid}.tmp"
        marker.touch()
        try:
            tmp.mkdir()
            write(tmp)
            files = artifact_files(tmp)
            if not files:
                raise RegistryError("The model wrote no files into its artifact folder.")
            sha = _hash_files(files)
            blob = pack_folder(tmp, files)
            final = self._cache_put(tmp, sha)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            marker.unlink(missing_ok=True)
            raise
        return StagedArtifact(name=sha, path=final, sha256=sha, marker=marker, blob=blob)

    def _cache_put(self, folder: Path, sha: str) -> Path:
        """Move a complete folder into the cache as ``<sha>`` (or drop it when one is there already)."""
        final = self.root / sha
        try:
            os.rename(folder, final)
        except OSError:  # already cached (by us earlier or by another process)
            shutil.rmtree(folder, ignore_errors=True)
        return final

    def commit(self, staged: StagedArtifact) -> None:
        # the artifact's lock (see _locked) and the insert in one statement: one round trip fewer
        self.db.execute_sql(
            "WITH locked AS (SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))) "
            "INSERT INTO artifact_blobs (sha256, size, data, created) SELECT %s, %s, %s, %s FROM locked "
            "ON CONFLICT (sha256) DO NOTHING",
            (
                "artifact",
                staged.sha256,
                staged.sha256,
                len(staged.blob or b""),
                staged.blob,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
        )

    def discard(self, staged: StagedArtifact) -> None:
        # the row (and blob) rolled back; the cache copy goes too unless a committed blob has these bytes
        staged.marker.unlink(missing_ok=True)
        try:
            shared = self.has(staged.name)
        except Exception:  # the connection itself failed: keep the copy, the caller's error matters
            return
        if not shared:
            shutil.rmtree(staged.path, ignore_errors=True)

    def remove(self, name: str) -> bool:
        """Drop the blob once no version names it any more (content-addressed blobs are shared)."""
        from turbofan_desktop.registry.db import write_transaction

        def work() -> int:
            self._locked(name)
            cursor = self.db.execute_sql(
                "DELETE FROM artifact_blobs WHERE sha256 = %s AND NOT EXISTS "
                "(SELECT 1 FROM model_versions WHERE artifact_path = %s)",
                (name, name),
            )
            return cursor.rowcount

        removed = write_transaction(self.db, work)
        if removed:
            shutil.rmtree(self.path_of(name), ignore_errors=True)
        return bool(removed)

    def _blob(self, name: str) -> bytes | None:
        row = self.db.execute_sql("SELECT data FROM artifact_blobs WHERE sha256 = %s", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def verify(self, name: str, expected_sha256: str) -> tuple[bool, str | None]:
        """Check the cached folder; when absent or different, unpack the blob again and check that."""
        cached = self.path_of(name)
        if cached.is_dir():
            try:
                if artifact_sha256(cached) == expected_sha256:
                    from turbofan_desktop.registry.cache import touch

                    touch(cached)  # used now: the cache prunes the least recently used first
                    return True, expected_sha256
            except RegistryError:
                pass
            shutil.rmtree(cached, ignore_errors=True)  # a damaged cache copy; the blob is the truth
        blob = self._blob(name)
        if blob is None:
            return False, None
        self.ensure()
        tmp = self.staging / f"{uuid.uuid4().hex}.{os.getpid()}.tmp"
        tmp.mkdir()
        try:
            unpack_folder(blob, tmp)
            actual = artifact_sha256(tmp)
        except (RegistryError, tarfile.TarError):
            shutil.rmtree(tmp, ignore_errors=True)
            return False, "unreadable-blob"
        if actual != expected_sha256:
            shutil.rmtree(tmp, ignore_errors=True)
            return False, actual
        self._cache_put(tmp, name)
        return True, actual

    def has(self, name: str, *, any_entry: bool = False) -> bool:
        return (
            self.db.execute_sql("SELECT 1 FROM artifact_blobs WHERE sha256 = %s", (name,)).fetchone()
            is not None
        )

    def describe(self, name: str) -> str:
        return f"the artifact blob {name[:12]}… in the registry database"

    def artifact_names(self) -> Iterator[str]:
        yield from (row[0] for row in self.db.execute_sql("SELECT sha256 FROM artifact_blobs").fetchall())

    def quarantine_artifact(self, name: str) -> Path:
        """Save an orphaned blob as ``quarantine/<sha256>.tar`` (nothing is lost), then delete it."""
        blob = self._blob(name)
        self.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.quarantine / f"{name}.tar"
        if blob is not None:
            target.write_bytes(blob)
        self.remove(name)
        return target
