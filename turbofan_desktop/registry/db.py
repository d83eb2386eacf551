"""Database objects: :func:`open_database` for a path or URL, :func:`write_transaction` for writes.

Each registry binds its own copy of the models in :mod:`.schema` to the database object it opened
(:func:`~turbofan_desktop.registry.schema.bind_tables`) and writes only through
:func:`write_transaction`; a backend is a factory in ``BACKENDS``. SQLite (one desk) and PostgreSQL
(a team, ``postgresql://user@host:port/db``, psycopg 3 from the ``postgres`` extra). On SQLite the
pragmas below are why it is safe for months of work:

- ``journal_mode=wal``: readers never block the writer and a crash never corrupts the file;
- ``synchronous=full``: a commit that returned survives a power cut, not only a process crash;
- ``foreign_keys=on``: SQLite enforces ``REFERENCES`` only when asked to;
- ``busy_timeout``: a writer waits for another instead of failing with "database is locked".

On PostgreSQL a write is one READ COMMITTED transaction; where a write allocates or moves something
per (plugin, target) it first takes a transaction-level advisory lock on that key (:func:`lock_key`),
the equivalent of SQLite's single writer for that key only. Passwords never leave this module in clear:
every message names a registry by :func:`redact_url`.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlparse, urlunparse

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


def _postgres(url: str, password: str | None = None) -> peewee.Database:
    # peewee imports psycopg itself when installed; asked here only for a sentence when it is not (the
    # frozen app leaves it out on purpose: build.spec)
    if importlib.util.find_spec("psycopg") is None:
        raise RegistryError(
            f"The registry {redact_url(url)} is on PostgreSQL, which needs the psycopg package: "
            "pip install 'turbofan-desktop[postgres]'."
        )
    # psycopg reads what the URL leaves out (password, sslmode, ...) from the libpq environment
    # (PGPASSWORD, PGSSLMODE, ...) and ~/.pgpass, so a URL never needs to carry a password.
    # ``password`` is one the user typed when the server asked (never stored anywhere).
    extra = {"password": password} if password else {}
    return peewee.PostgresqlDatabase(url, prefer_psycopg3=True, thread_safe=True, **extra)


def asks_for_password(exc: BaseException) -> bool:
    """Whether a failed connection was the server asking for a password that libpq did not have
    (none in the URL, ``PGPASSWORD`` or ``~/.pgpass``) or refusing the one given."""
    text = str(exc).lower()
    return "no password supplied" in text or "password authentication failed" in text


def is_postgres(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def is_server_url(location: str | Path) -> bool:
    return str(location).split("://", 1)[0].lower() in ("postgres", "postgresql") and is_url(location)


def redact_url(location: str | Path) -> str:
    """``location`` with any password removed (``postgresql://ann:secret@db/reg`` -> ``postgresql://ann@db/reg``);
    paths and password-less URLs come back unchanged. Also strips ``password=`` query parameters."""
    text = str(location)
    if not is_url(text):
        return text
    parsed = urlparse(text)
    if parsed.password is None and "password=" not in parsed.query.lower():
        return text  # nothing to hide: the text stays exactly as written
    netloc = parsed.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = "&".join(p for p in parsed.query.split("&") if p and not p.lower().startswith("password="))
    return urlunparse(parsed._replace(netloc=netloc, query=query))


def has_password(location: str | Path) -> bool:
    return redact_url(location) != str(location)


def lock_key(db: peewee.Database, *parts: str) -> None:
    """Serialise writers on one key (e.g. ``"version", plugin, target``) until the transaction ends.

    SQLite needs nothing: ``BEGIN IMMEDIATE`` already admits one writer at a time. On PostgreSQL a
    transaction-level advisory lock on two 32-bit hashes (kind, then the rest joined); a hash collision
    only makes two unrelated keys wait for each other, never breaks uniqueness (the unique indexes do that).
    """
    if not is_postgres(db):
        return
    kind, rest = parts[0], "\x1f".join(parts[1:])
    db.execute_sql("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (kind, rest))


# scheme -> factory(url_or_path). The schema and migrations are plain SQL kept portable where cheap.
BACKENDS: dict[str, Callable[[str], peewee.Database]] = {
    "sqlite": lambda url: _sqlite(_sqlite_path(url)),
    "postgres": _postgres,
    "postgresql": _postgres,
}


def _sqlite_path(url: str) -> str:
    """``sqlite:///abs/path.db`` -> ``/abs/path.db`` (``sqlite:////abs`` too); ``sqlite://rel/x.db`` ->
    ``rel/x.db``."""
    parsed = urlparse(url)
    path = unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def sqlite_file(url_or_path: str | Path) -> Path:
    """The database file of a SQLite path or ``sqlite:///`` URL."""
    text = str(url_or_path)
    return Path(_sqlite_path(text) if is_url(text) else text)


def open_database(url_or_path: str | Path, *, password: str | None = None) -> peewee.Database:
    """A database object for a file path or a URL (``sqlite:///path``); bind models to it with
    :func:`~turbofan_desktop.registry.schema.bind_tables`. ``password`` is for a server URL only."""
    text = str(url_or_path)
    if password and is_server_url(text):
        return _postgres(text, password)
    if "://" not in text:
        return _sqlite(text)
    scheme = text.split("://", 1)[0].lower()
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise RegistryError(
            f"Unknown registry database URL '{redact_url(text)}' (expected a folder or one of: {known})."
        )
    return factory(text)


def is_busy_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    # SQLite's lock answers; PostgreSQL's deadlock / serialization failures are retried the same way
    return any(
        word in text for word in ("locked", "database is busy", "deadlock detected", "could not serialize")
    )


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
