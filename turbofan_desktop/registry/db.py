"""Database objects: :func:`open_database` for a path or URL, :func:`write_transaction` for writes.

Each registry binds its own copy of the models in :mod:`.schema` to the database object it opened
(:func:`~turbofan_desktop.registry.schema.bind_tables`) and writes only through
:func:`write_transaction`, so another backend slots in by adding a factory to ``BACKENDS``. Only SQLite is implemented; the pragmas below are why it is safe for months of work:

- ``journal_mode=wal``: readers never block the writer and a crash never corrupts the file;
- ``synchronous=full``: a commit that returned survives a power cut, not only a process crash;
- ``foreign_keys=on``: SQLite enforces ``REFERENCES`` only when asked to;
- ``busy_timeout``: a writer waits for another instead of failing with "database is locked".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse

import peewee

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry import storage
from turbofan_desktop.registry.storage import GuardedSqliteDatabase

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", int(BUSY_TIMEOUT_S * 1000)),
    ("synchronous", "full"),
)


def _sqlite(path: str) -> peewee.Database:
    # thread_safe=True (the default) keeps one connection per thread; the sqlite3 ``timeout`` is the
    # same busy handler as the pragma, set before the first pragma can meet a lock.
    # Guarded: a damaged file, a full disk or a read-only folder arrive as sentences (see .storage).
    return GuardedSqliteDatabase(
        path, file=Path(path), pragmas=SQLITE_PRAGMAS, timeout=BUSY_TIMEOUT_S, thread_safe=True
    )


def open_read_only(path: Path) -> peewee.Database:
    """The SQLite registry at ``path`` for reading only (a folder this process cannot write)."""
    return storage.open_read_only(path, pragmas=storage.READ_ONLY_PRAGMAS, timeout=BUSY_TIMEOUT_S)


def _postgres(url: str) -> peewee.Database:
    raise RegistryError(
        f"The registry at '{url}' uses PostgreSQL, which this version does not support yet; "
        "use a registry folder (SQLite) instead."
    )


# scheme -> factory(url_or_path). The schema and migrations are plain SQL kept portable where cheap.
BACKENDS: dict[str, Callable[[str], peewee.Database]] = {
    "sqlite": lambda url: _sqlite(_sqlite_path(url)),
    "postgres": _postgres,
    "postgresql": _postgres,
}


def _sqlite_path(url: str) -> str:
    parsed = urlparse(url)
    return unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path)


def open_database(url_or_path: str | Path) -> peewee.Database:
    """A database object for a file path or a URL (``sqlite:///path``); bind models to it with
    :func:`~turbofan_desktop.registry.schema.bind_tables`."""
    text = str(url_or_path)
    if "://" not in text:
        return _sqlite(text)
    scheme = text.split("://", 1)[0].lower()
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise RegistryError(f"Unknown registry database URL '{text}' (expected one of: {known}).")
    return factory(text)


def is_busy_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "locked" in text


def write_transaction(db: peewee.Database, work: Callable[[], T], *, patience_s: float = 120.0) -> T:
    """Run ``work`` in one write transaction, retrying while another writer holds the lock.

    SQLite's busy handler already waits ``BUSY_TIMEOUT_S``; the loop here covers the cases where
    SQLite answers "busy" at once (WAL recovery, a checkpoint in progress) so no "database is locked"
    reaches the caller unless the registry stayed locked for ``patience_s``.
    ``BEGIN IMMEDIATE`` takes the write lock up front: version numbers are read and written under it.
    """
    deadline = time.monotonic() + patience_s
    delay = 0.005
    immediate = isinstance(db, peewee.SqliteDatabase)
    while True:
        try:
            with db.atomic("IMMEDIATE") if immediate else db.atomic():
                return work()
        except peewee.OperationalError as exc:
            if not is_busy_error(exc) or db.transaction_depth() > 0:
                raise
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"The registry database stayed locked by another program for {patience_s:.0f} s; "
                    "close other Turbofan Desktop windows or commands and try again."
                ) from None
            log.debug("registry busy, retrying in %.3f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
