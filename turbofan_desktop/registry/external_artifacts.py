"""A server registry's artifacts outside its database: a folder every user can reach (a network
mount), or an fsspec URL (``s3://bucket/models``, ...) when fsspec and its backend are installed.

Configured with ``--artifacts`` or the ``artifacts`` setting. Each artifact is one object
``<sha256>.tar`` (the deterministic tar of :func:`~turbofan_desktop.registry.artifacts.pack_folder`),
so the store is content-addressed: identical models share one object, and a name says what its bytes
must hash to. The protocol keeps a version from ever naming a missing or half-written object:

1. the object is uploaded before the version's transaction (a folder: written to a hidden
   ``.<sha>.<token>.tmp`` file, flushed, then renamed; elsewhere: uploaded under a temporary name,
   then moved);
2. inside the transaction, under the artifact's advisory lock, the object is checked to be there
   (and uploaded again if a concurrent clean-up removed it), then the row is inserted;
3. an object is deleted only under the same lock and only when no version names it, so a deletion
   and a registration of the same bytes never interleave.

Loading unpacks the object into the local cache and checks the sha256 (as for blobs in the
database). ``registry check`` lists objects no version names as orphans; ``--repair`` keeps a copy in
the local quarantine folder and deletes them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from turbofan_desktop.errors import ConfigError, RegistryError
from turbofan_desktop.registry.artifacts import DatabaseArtifactStore, StagedArtifact, _fdatasync, _fsync_dir

if TYPE_CHECKING:
    import peewee

SUFFIX = ".tar"


class ObjectStore(Protocol):
    """Where the artifact objects live: put/get/exists/delete/list by sha256 name."""

    location: str

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def exists(self, name: str) -> bool: ...
    def delete(self, name: str) -> None: ...
    def names(self) -> Iterator[str]: ...


class FolderObjects:
    """Objects as files in a folder (local or a network mount): temp file, fsync, rename."""

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser()
        self.location = str(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"Cannot create the artifact folder '{self.folder}': {exc.strerror or exc}."
            ) from None

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}{SUFFIX}"

    def put(self, name: str, data: bytes) -> None:
        tmp = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                _fdatasync(handle.fileno())
            os.replace(tmp, self._path(name))
            _fsync_dir(self.folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RegistryError(
                f"Cannot write the artifact {name[:12]}… into '{self.folder}': {exc.strerror or exc}."
            ) from None

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> Iterator[str]:
        for entry in self.folder.iterdir():
            if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                yield entry.name[: -len(SUFFIX)]


class FsspecObjects:
    """Objects under an fsspec URL: uploaded under a temporary name, then moved into place."""

    def __init__(self, url: str):
        if importlib.util.find_spec("fsspec") is None:
            raise ConfigError(
                f"The artifact location '{url}' is a URL, which needs the fsspec package (and the one for "
                "its scheme, e.g. s3fs); install them, or give a folder instead."
            )
        import fsspec

        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"The artifact location '{url}' cannot be used: {exc}") from None
        self.location = url
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}{SUFFIX}"

    def put(self, name: str, data: bytes) -> None:
        tmp = f"{self.root.rstrip('/')}/.{name}.{uuid.uuid4().hex}.tmp"
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, self._path(name))

    def get(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self._path(name)))
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(name))

    def names(self) -> Iterator[str]:
        for path in self.fs.ls(self.root, detail=False):
            base = str(path).rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(SUFFIX) and not base.startswith("."):
                yield base[: -len(SUFFIX)]


def object_store(location: str | Path) -> ObjectStore:
    """A folder, or an fsspec URL (``scheme://...``; ``file://`` is a folder too)."""
    text = str(location).strip()
    if text.lower().startswith("file://"):
        return FolderObjects(Path(text[len("file://") :]))
    if "://" in text:
        return FsspecObjects(text)
    return FolderObjects(Path(text))


class ExternalArtifactStore(DatabaseArtifactStore):
    """A server registry's artifacts in an :class:`ObjectStore`; ``root`` is the local cache."""

    def __init__(self, root: Path, db: peewee.Database, objects: ObjectStore):
        super().__init__(root, db)
        self.objects = objects

    def stage(self, write: Callable[[Path], None]) -> StagedArtifact:
        staged = super().stage(write)  # packed, cached locally, marked as ours
        try:
            if not self.objects.exists(staged.name):
                self.objects.put(staged.name, staged.blob or b"")
        except BaseException:
            super().discard(staged)
            raise
        return staged

    def commit(self, staged: StagedArtifact) -> None:
        self._locked(staged.sha256)
        if not self.objects.exists(staged.name):  # removed by a clean-up since it was uploaded
            self.objects.put(staged.name, staged.blob or b"")

    def discard(self, staged: StagedArtifact) -> None:
        # unless a version (another program's) names the same bytes; when the connection failed, the
        # object stays as an orphan for `registry check`
        with contextlib.suppress(Exception):
            self.remove(staged.name)
        super().discard(staged)

    def remove(self, name: str) -> bool:
        """Delete the object once no version names it (objects are shared by identical models)."""
        from turbofan_desktop.registry.db import write_transaction

        def work() -> bool:
            self._locked(name)
            named = self.db.execute_sql(
                "SELECT 1 FROM model_versions WHERE artifact_path = %s LIMIT 1", (name,)
            ).fetchone()
            if named is not None or not self.objects.exists(name):
                return False
            self.objects.delete(name)
            return True

        removed = write_transaction(self.db, work)
        if removed:
            import shutil

            shutil.rmtree(self.path_of(name), ignore_errors=True)
        return removed

    def _blob(self, name: str) -> bytes | None:
        return self.objects.get(name)

    def has(self, name: str, *, any_entry: bool = False) -> bool:
        return self.objects.exists(name)

    def describe(self, name: str) -> str:
        return f"{self.objects.location.rstrip('/')}/{name}{SUFFIX}"

    def artifact_names(self) -> Iterator[str]:
        yield from self.objects.names()


__all__ = ["ExternalArtifactStore", "FolderObjects", "FsspecObjects", "object_store"]
