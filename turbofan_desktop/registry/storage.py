"""Where the registry meets the disk: read-only folders, damaged database files, full or failing disks.

- A folder this process cannot write (permissions, a read-only mount) is opened read-only: SQLite's
  ``mode=ro``, or ``immutable=1`` when a WAL database cannot get its shared-memory file. Every read
  works; every write is refused with one sentence (:class:`ReadOnlyRegistryError`).
- :class:`GuardedSqliteDatabase` turns SQLite's storage failures into the error family: a damaged file
  (``SQLITE_CORRUPT``/``SQLITE_NOTADB``) into :class:`DamagedRegistryError` pointing at ``registry
  check``, a full disk or an I/O error into :class:`StorageError`. Busy and constraint errors pass
  through unchanged: the write path retries or explains those itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import peewee

from turbofan_desktop.errors import (
    DamagedRegistryError,
    ReadOnlyRegistryError,
    StorageError,
    TurbofanError,
)

CHECK_COMMAND = "turbofan-desktop registry check"
# An "I/O error" from SQLite on a disk with less than this free is reported as a full disk.
NEARLY_FULL_BYTES = 256 * 1024

READ_ONLY_PRAGMAS = (("foreign_keys", 1), ("busy_timeout", 30_000))


def read_only_sentence(home: Path) -> str:
    return (
        f"The registry folder '{home}' is read-only, so nothing in it can be changed (training, "
        "validating, promoting and deleting need write access); use a writable folder (--registry) "
        "or ask its owner for write access."
    )


def damaged_sentence(path: Path, detail: str) -> str:
    return f"The registry database {path} is damaged ({detail}); run `{CHECK_COMMAND}`."


def sqlite_error(exc: BaseException, path: Path) -> TurbofanError | None:
    """The sentence for a SQLite storage failure on ``path``; None for anything else (busy, constraint)."""
    orig = getattr(exc, "orig", None) or exc
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig)
    lowered = text.lower()
    if name.startswith("SQLITE_CORRUPT") or "malformed" in lowered:
        return DamagedRegistryError(damaged_sentence(path, text))
    if name == "SQLITE_NOTADB" or "file is not a database" in lowered:  # the header itself is gone
        return DamagedRegistryError(
            f"The registry database {path} is damaged or not a usable registry database ({text}); "
            f"run `{CHECK_COMMAND}`."
        )
    if name.startswith("SQLITE_READONLY") or "readonly database" in lowered:
        return ReadOnlyRegistryError(read_only_sentence(path.parent))
    if name == "SQLITE_FULL" or "database or disk is full" in lowered:
        return StorageError.from_os_error(OSError(errno.ENOSPC, text), path)
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in lowered:
        code = errno.ENOSPC if _nearly_full(path.parent) else errno.EIO
        return StorageError.from_os_error(OSError(code, text), path)
    return None


def storage_problem(exc: BaseException, folder: Path) -> StorageError | None:
    """The sentence for a write into ``folder`` that failed because of the disk, else None.

    An OSError says so by its errno; a library that wraps the failure in its own exception (torch's
    writer raises RuntimeError) is judged by the space left: on a nearly full disk, that is the cause.
    """
    if isinstance(exc, OSError):
        return StorageError.from_os_error(exc, folder)
    if isinstance(exc, Exception) and not isinstance(exc, TurbofanError) and _nearly_full(folder):
        return StorageError.from_os_error(OSError(errno.ENOSPC, str(exc)), folder)
    return None


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


class GuardedSqliteDatabase(peewee.SqliteDatabase):
    """A peewee SQLite database whose storage failures arrive as sentences (see :func:`sqlite_error`)."""

    def __init__(self, database: str, *, file: Path, read_only: bool = False, **kwargs) -> None:
        super().__init__(database, **kwargs)
        self.file = Path(file)
        self.read_only = read_only

    def _guarded(self, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except (peewee.DatabaseError, sqlite3.DatabaseError) as exc:
            problem = sqlite_error(exc, self.file)
            if problem is None:
                raise
            raise problem from exc

    def connect(self, reuse_if_open: bool = False):
        return self._guarded(super().connect, reuse_if_open)

    def execute_sql(self, sql, params=None):
        return _GuardedCursor(self._guarded(super().execute_sql, sql, params), self)

    def begin(self, *args, **kwargs):
        return self._guarded(super().begin, *args, **kwargs)

    def commit(self):
        return self._guarded(super().commit)

    def rollback(self):
        # After SQLITE_FULL or an I/O error SQLite has already rolled the transaction back; a second
        # ROLLBACK would fail and hide the sentence being raised.
        connection = self._state.conn
        if connection is not None and not connection.in_transaction:
            return None
        return self._guarded(super().rollback)


class _GuardedCursor:
    """A sqlite3 cursor whose row fetching is guarded too: SQLite reads most pages lazily, after
    ``execute`` returned, so a damaged page usually surfaces while rows are fetched."""

    def __init__(self, cursor, db: GuardedSqliteDatabase) -> None:
        self._cursor, self._db = cursor, db

    def __getattr__(self, name: str):
        return getattr(self._cursor, name)

    def fetchone(self):
        return self._db._guarded(self._cursor.fetchone)

    def fetchmany(self, *args):
        return self._db._guarded(self._cursor.fetchmany, *args)

    def fetchall(self):
        return self._db._guarded(self._cursor.fetchall)

    def __iter__(self):
        return self

    def __next__(self):
        return self._db._guarded(self._cursor.__next__)


def folder_is_writable(home: Path) -> bool:
    """Whether this process can create files in ``home`` and write its database there.

    ``os.access`` reads the permission bits; the probe file catches what they do not show (a read-only
    mount, ACLs, a network share). A full disk still counts as writable: writes then say it is full.
    """
    database = home / "registry.db"
    if not os.access(home, os.W_OK | os.X_OK):
        return False
    if database.exists() and not os.access(database, os.W_OK):
        return False
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=home)
    except OSError as exc:
        return exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS)
    os.close(handle)
    os.unlink(probe)
    return True


def open_read_only(path: Path, **kwargs) -> GuardedSqliteDatabase:
    """The registry database opened for reading only; ReadOnlyRegistryError when it cannot be read.

    A WAL database needs its ``-shm`` file; in a folder nobody may write, SQLite cannot create it, so
    the file is opened ``immutable`` instead, which is exact as long as no ``-wal`` file holds changes
    that were never merged into the database (then we refuse rather than show stale rows).
    """
    base = path.resolve().as_uri()
    db = GuardedSqliteDatabase(f"{base}?mode=ro", file=path, read_only=True, uri=True, **kwargs)
    try:
        db.execute_sql("PRAGMA user_version")
        return db
    except (ReadOnlyRegistryError, peewee.OperationalError):  # "readonly" or "unable to open" (-shm)
        db.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise ReadOnlyRegistryError(
            f"The registry folder '{path.parent}' is read-only and {wal.name} holds changes not yet "
            f"merged into {path.name}; open the registry once with write access."
        )
    db = GuardedSqliteDatabase(f"{base}?mode=ro&immutable=1", file=path, read_only=True, uri=True, **kwargs)
    db.execute_sql("PRAGMA user_version")
    return db


def require_current_schema(db: peewee.Database, latest: int) -> None:
    """A read-only registry cannot be migrated: refuse one whose schema is older than ``latest``."""
    found = int(db.execute_sql("PRAGMA user_version").fetchone()[0])
    if found < latest:
        raise ReadOnlyRegistryError(
            f"The registry database {db.file} needs an upgrade (schema version {found} to {latest}), "
            f"but its folder '{db.file.parent}' is read-only; open it once with write access."
        )


def damage_detail(exc: DamagedRegistryError) -> str:
    """SQLite's own words for the damage behind ``exc`` (e.g. "database disk image is malformed")."""
    cause = exc.__cause__
    return str(getattr(cause, "orig", None) or cause or exc)


def integrity_problems(db: peewee.Database, *, limit: int = 3) -> list[str]:
    """SQLite's ``quick_check`` findings (at most ``limit``); empty when the file is intact."""
    try:
        rows = [str(row[0]) for row in db.execute_sql(f"PRAGMA quick_check({int(limit):d})").fetchall()]
    except DamagedRegistryError as exc:
        return [damage_detail(exc)]
    return [] if rows == ["ok"] else rows
