"""Ordered schema migrations per backend, keyed by ``PRAGMA user_version`` on SQLite and by the one row
of the ``registry_schema`` table on PostgreSQL.

PostgreSQL registries start at schema 4 (no older one ever existed there): :data:`PG_V4` creates in
PostgreSQL's dialect (identity keys, BOOLEAN, DOUBLE PRECISION, BYTEA) the schema SQLite reaches
through steps 1-4; from 5 on each version has a step list per backend. A PostgreSQL migration holds
a transaction-level advisory lock, so two programs opening a fresh database migrate it once (its DDL
is transactional too).

A fresh registry runs every step from 0, an old one the steps it lacks, so both end with the same
schema. Steps are frozen SQL (or, where rows must be converted, a function of the database): never
edit a released step, append a new one. Each step runs inside the
same ``BEGIN IMMEDIATE`` transaction that bumps ``user_version`` (SQLite DDL is transactional), so a
crash mid-migration leaves the old schema intact and two programs opening one registry at once
migrate it exactly once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable

import peewee

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry.db import is_postgres, redact_url, write_transaction

log = logging.getLogger(__name__)

# A step is frozen SQL, or (where rows must be converted, not only moved) a function of the database
# that runs inside the same transaction.
Step = str | Callable[[peewee.Database], None]

# Version 1: datasets, training runs, model versions, feedback labels.
V1 = (
    """CREATE TABLE datasets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        data_hash TEXT NOT NULL,
        source TEXT NOT NULL,
        file_sha256 TEXT,
        format TEXT NOT NULL,
        units INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        time_kind TEXT NOT NULL,
        time_start TEXT,
        time_end TEXT,
        preprocessing TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL,
        UNIQUE (data_hash, source))""",
    """CREATE TABLE training_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plugin TEXT NOT NULL,
        target TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        dataset_id INTEGER REFERENCES datasets (id) ON DELETE SET NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
        message TEXT NOT NULL DEFAULT '',
        epochs_done INTEGER NOT NULL DEFAULT 0,
        started TEXT NOT NULL,
        finished TEXT)""",
    """CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plugin TEXT NOT NULL,
        target TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        stage TEXT NOT NULL DEFAULT 'none'
            CHECK (stage IN ('none', 'staging', 'production', 'archived')),
        status TEXT NOT NULL CHECK (status IN ('training', 'trained', 'failed')),
        created TEXT NOT NULL,
        artifact_path TEXT,
        artifact_sha256 TEXT,
        config TEXT NOT NULL DEFAULT '{}',
        history TEXT NOT NULL DEFAULT '[]',
        metrics TEXT NOT NULL DEFAULT '{}',
        validation_performed INTEGER NOT NULL DEFAULT 0,
        validation_metrics TEXT,
        validation_data_hash TEXT,
        training_seconds REAL NOT NULL DEFAULT 0,
        library_versions TEXT NOT NULL DEFAULT '{}',
        dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
        UNIQUE (plugin, target, version))""",
    """CREATE TABLE feedback_labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
        unit TEXT NOT NULL,
        range_start TEXT,
        range_end TEXT,
        label TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL)""",
)

# Version 2: the KPI history, run ownership (pid/host) for crash detection, the run a version came
# from, dataset columns/unit ids, free-form extras, and the indexes the list/status views filter on.
# "At most one production version per (plugin, target)" becomes a partial unique index, so even a
# buggy caller cannot break it.
V2 = (
    "ALTER TABLE datasets ADD COLUMN columns TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE datasets ADD COLUMN unit_ids TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE training_runs ADD COLUMN pid INTEGER",
    "ALTER TABLE training_runs ADD COLUMN host TEXT",
    "ALTER TABLE model_versions ADD COLUMN run_id INTEGER REFERENCES training_runs (id) ON DELETE SET NULL",
    "ALTER TABLE model_versions ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'",
    """CREATE TABLE metric_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        data_hash TEXT,
        created TEXT NOT NULL)""",
    # Versions validated under v1 start their KPI history with that validation.
    """INSERT INTO metric_history (version_id, kind, metrics, data_hash, created)
        SELECT id, 'validation', validation_metrics, validation_data_hash, created
        FROM model_versions WHERE validation_performed = 1 AND validation_metrics IS NOT NULL""",
    # An index on (x) is ordered by (x, rowid): each filter of the newest-first list is an index walk.
    "CREATE INDEX model_versions_plugin ON model_versions (plugin)",
    "CREATE INDEX model_versions_plugin_target ON model_versions (plugin, target)",
    "CREATE INDEX model_versions_target ON model_versions (target)",
    "CREATE INDEX model_versions_stage ON model_versions (stage)",
    "CREATE INDEX model_versions_status ON model_versions (status)",
    # covers "newest trained version per (plugin, target)" for the status overview
    "CREATE INDEX model_versions_newest_by_status ON model_versions (status, plugin, target, version)",
    "CREATE UNIQUE INDEX model_versions_one_production ON model_versions (plugin, target) "
    "WHERE stage = 'production'",
    "CREATE INDEX training_runs_status ON training_runs (status)",
    "CREATE INDEX feedback_labels_version ON feedback_labels (version_id)",
    "CREATE INDEX metric_history_version ON metric_history (version_id)",
)

# Version 3: a feedback label names the data it was made on, so labels reach only the same data.
V3 = (
    "ALTER TABLE feedback_labels ADD COLUMN data_key TEXT",
    "CREATE INDEX feedback_labels_data_key ON feedback_labels (data_key)",
)


# Version 4: the free-form ``extra`` JSON of a version becomes typed columns of its own table
# (records.TrainingProvenance). Every existing version gets a row converted from its ``extra``; keys
# no column names are kept in ``legacy``. Plain SQL types (TEXT, INTEGER, REAL) so the same schema
# fits PostgreSQL.
V4_TABLE = """CREATE TABLE training_provenance (
        version_id INTEGER PRIMARY KEY REFERENCES model_versions (id) ON DELETE CASCADE,
        split_units TEXT,
        split_seed INTEGER,
        val_fraction REAL,
        test_fraction REAL,
        source_path TEXT,
        source_rul_path TEXT,
        source_unit_col TEXT,
        source_time_col TEXT,
        source_format TEXT,
        source_data_hash TEXT,
        source_units INTEGER,
        validation_split TEXT,
        validation_units INTEGER,
        validation_data_hash TEXT,
        held_out_split TEXT,
        held_out_frame_hash TEXT,
        fit_epochs_run INTEGER,
        fit_best_epoch INTEGER,
        fit_stopped_early INTEGER,
        fit_seed INTEGER,
        fit_notes TEXT,
        model_version TEXT,
        training_stats TEXT,
        legacy TEXT NOT NULL DEFAULT '{}')"""


# the training_provenance columns schema 6 adds (see V6)
V6_COLUMNS = ("trained_executor", "trained_host", "trained_worker")


def _convert_extra(db: peewee.Database) -> None:
    """Copy every version's ``extra`` document into ``training_provenance`` (then the column goes)."""
    if isinstance(db, peewee.SqliteDatabase) and sqlite3.sqlite_version_info < (3, 35, 0):
        raise RegistryError(
            f"Upgrading the registry {_name(db)} to schema 4 needs SQLite 3.35 or newer, but this Python "
            f"has SQLite {sqlite3.sqlite_version}; open it with the packaged app or a newer Python."
        )
    from turbofan_desktop.registry.records import (
        PROVENANCE_COLUMNS,
        PROVENANCE_JSON_COLUMNS,
        TrainingProvenance,
        provenance_to_row,
    )
    from turbofan_desktop.registry.schema import dumps

    # the columns the table has at schema 4 (later steps add more, which an old extra never fills)
    columns = [c for c in PROVENANCE_COLUMNS if c not in V6_COLUMNS]
    names = ", ".join(("version_id", *columns))
    marks = ", ".join([db.param] * (len(columns) + 1))
    insert = f"INSERT INTO training_provenance ({names}) VALUES ({marks})"
    for version_id, extra in db.execute_sql("SELECT id, extra FROM model_versions ORDER BY id").fetchall():
        try:
            document = json.loads(extra) if extra else {}
        except ValueError:
            document = {"unreadable_extra": extra}  # keep what was there, even if it never parsed
        row = provenance_to_row(TrainingProvenance.from_legacy(document))
        values = [
            dumps(row[k]) if k in PROVENANCE_JSON_COLUMNS and row[k] is not None else row[k] for k in columns
        ]
        db.execute_sql(insert, (version_id, *values))


V4: tuple[Step, ...] = (
    V4_TABLE,
    _convert_extra,
    "ALTER TABLE model_versions DROP COLUMN extra",  # SQLite 3.35+, checked in _convert_extra
)

# Version 5: who and where (OS user and host) on every version and run.
V5 = (
    "ALTER TABLE model_versions ADD COLUMN os_user TEXT",
    "ALTER TABLE model_versions ADD COLUMN host TEXT",
    "ALTER TABLE training_runs ADD COLUMN os_user TEXT",
)

# Version 6: where a version trained (records.TrainedOn: executor, host, worker); NULL before.
V6 = tuple(f"ALTER TABLE training_provenance ADD COLUMN {column} TEXT" for column in V6_COLUMNS)

MIGRATIONS: tuple[tuple[int, tuple[Step, ...]], ...] = (
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
)
LATEST_VERSION = MIGRATIONS[-1][0]

# PostgreSQL: schema 4 in one step, in PostgreSQL's types (see the module docstring).
PG_V4 = (
    """CREATE TABLE datasets (
        id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        data_hash TEXT NOT NULL,
        source TEXT NOT NULL,
        file_sha256 TEXT,
        format TEXT NOT NULL,
        units INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        time_kind TEXT NOT NULL,
        time_start TEXT,
        time_end TEXT,
        preprocessing TEXT NOT NULL DEFAULT '[]',
        created TEXT NOT NULL,
        columns TEXT NOT NULL DEFAULT '[]',
        unit_ids TEXT NOT NULL DEFAULT '[]',
        UNIQUE (data_hash, source))""",
    """CREATE TABLE training_runs (
        id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        plugin TEXT NOT NULL,
        target TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        dataset_id INTEGER REFERENCES datasets (id) ON DELETE SET NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
        message TEXT NOT NULL DEFAULT '',
        epochs_done INTEGER NOT NULL DEFAULT 0,
        started TEXT NOT NULL,
        finished TEXT,
        pid INTEGER,
        host TEXT)""",
    """CREATE TABLE model_versions (
        id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        plugin TEXT NOT NULL,
        target TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        stage TEXT NOT NULL DEFAULT 'none'
            CHECK (stage IN ('none', 'staging', 'production', 'archived')),
        status TEXT NOT NULL CHECK (status IN ('training', 'trained', 'failed')),
        created TEXT NOT NULL,
        artifact_path TEXT,
        artifact_sha256 TEXT,
        config TEXT NOT NULL DEFAULT '{}',
        history TEXT NOT NULL DEFAULT '[]',
        metrics TEXT NOT NULL DEFAULT '{}',
        validation_performed BOOLEAN NOT NULL DEFAULT FALSE,
        validation_metrics TEXT,
        validation_data_hash TEXT,
        training_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
        library_versions TEXT NOT NULL DEFAULT '{}',
        dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
        run_id INTEGER REFERENCES training_runs (id) ON DELETE SET NULL,
        UNIQUE (plugin, target, version))""",
    """CREATE TABLE feedback_labels (
        id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
        unit TEXT NOT NULL,
        range_start TEXT,
        range_end TEXT,
        label TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        data_key TEXT)""",
    """CREATE TABLE metric_history (
        id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        data_hash TEXT,
        created TEXT NOT NULL)""",
    V4_TABLE.replace("REAL", "DOUBLE PRECISION").replace(
        "fit_stopped_early INTEGER", "fit_stopped_early BOOLEAN"
    ),
    # the same indexes as SQLite's V2/V3, including the database-enforced single production version
    *(statement for statement in V2 if statement.startswith("CREATE ") and "INDEX" in statement),
    *(statement for statement in V3 if statement.startswith("CREATE INDEX")),
    # content-addressed artifacts (artifacts.DatabaseArtifactStore): the folder packed as a
    # deterministic tar, keyed by the folder's sha256 (the same hash a folder store records)
    """CREATE TABLE artifact_blobs (
        sha256 TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        data BYTEA NOT NULL,
        created TEXT NOT NULL)""",
)

PG_MIGRATIONS: tuple[tuple[int, tuple[Step, ...]], ...] = ((4, PG_V4), (5, V5), (6, V6))
PG_SCHEMA_TABLE = "registry_schema"
_PG_MIGRATION_LOCK = 0x7475_7262  # an arbitrary constant advisory-lock key: "turb"


def migrations_for(db: peewee.Database) -> tuple[tuple[int, tuple[Step, ...]], ...]:
    return PG_MIGRATIONS if is_postgres(db) else MIGRATIONS


def schema_version(db: peewee.Database) -> int:
    if not is_postgres(db):
        return int(db.execute_sql("PRAGMA user_version").fetchone()[0])
    exists = db.execute_sql("SELECT to_regclass(%s) IS NOT NULL", (PG_SCHEMA_TABLE,)).fetchone()[0]
    if not exists:
        return 0
    row = db.execute_sql(f"SELECT max(version) FROM {PG_SCHEMA_TABLE}").fetchone()
    return int(row[0] or 0)


def _set_version(db: peewee.Database, number: int) -> None:
    if not is_postgres(db):
        db.execute_sql(f"PRAGMA user_version = {number:d}")
        return
    db.execute_sql(f"DELETE FROM {PG_SCHEMA_TABLE}")
    db.execute_sql(f"INSERT INTO {PG_SCHEMA_TABLE} (version) VALUES (%s)", (number,))


def _name(db: peewee.Database) -> str:
    return redact_url(db.database)


def migrate(db: peewee.Database) -> int:
    """Bring the schema to :data:`LATEST_VERSION`; returns the version it started from."""

    def upgrade() -> int:
        if is_postgres(db):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
            db.execute_sql(f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA_TABLE} (version INTEGER NOT NULL)")
        start = schema_version(db)  # read under the write lock: another program may have migrated
        if start > LATEST_VERSION:
            raise RegistryError(
                f"The registry {_name(db)} has schema version {start}, newer than this program "
                f"understands ({LATEST_VERSION}); update Turbofan Desktop to open it."
            )
        for number, statements in migrations_for(db):
            if number <= start:
                continue
            log.info("migrating registry %s to schema version %d", _name(db), number)
            for step in statements:
                if callable(step):
                    step(db)
                else:
                    db.execute_sql(step)
            _set_version(db, number)
        return start

    if schema_version(db) == LATEST_VERSION:
        return LATEST_VERSION
    return write_transaction(db, upgrade)
