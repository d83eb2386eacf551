"""Recovering a damaged registry database: every readable row into a fresh file, the damaged one kept.

``registry check --repair`` calls :func:`salvage_database` when SQLite's ``quick_check`` finds damage.
The damaged file (and its ``-wal``) is first *copied* into ``quarantine/``, so nothing is lost even if
the salvage itself fails. A fresh database with the current schema is built beside it, each table is
copied row by row in rowid order, and a read that meets a damaged page skips ahead to the next rowid
that can be read (probing forward, then narrowing by bisection), so one bad page costs only the rows
on it. References that point at lost rows are mended where that loses nothing (a version whose dataset
row was lost gets a placeholder lineage; a lost run becomes "no run"); labels and KPI entries of lost
versions belong to nothing and are dropped, and counted. Ids are never reused: each table's
AUTOINCREMENT counter continues from the highest id the damaged file knew. The fresh file then
replaces the damaged one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import peewee

from turbofan_desktop.registry.migrations import LATEST_VERSION, MIGRATIONS, migrate

# Parents before children, so the references can be mended after the copy.
TABLES = (
    "datasets",
    "training_runs",
    "model_versions",
    "feedback_labels",
    "metric_history",
    "training_provenance",
)
_MAX_ROWID = (1 << 63) - 1
LOST_SOURCE = "(lost: this dataset's row was in a damaged part of the registry database)"


@dataclass
class SalvageReport:
    damaged_copy: Path
    recovered: dict[str, int] = field(default_factory=dict)
    # rows known to be lost per table; None where the damaged file cannot even say how many it had
    lost: dict[str, int | None] = field(default_factory=dict)
    damaged_regions: dict[str, int] = field(default_factory=dict)
    placeholder_datasets: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # children of lost rows

    @property
    def complete(self) -> bool:
        """Whether every row of the damaged file was recovered."""
        return not any(self.damaged_regions.values()) and not any(
            count is None or count > 0 for count in self.lost.values()
        )

    def summary(self) -> str:
        recovered = ", ".join(f"{count} {table}" for table, count in self.recovered.items())
        text = (
            f"rebuilt from the readable rows ({recovered}); the damaged file is kept as {self.damaged_copy}"
        )
        return text

    def losses(self) -> str:
        """What could not be recovered, as one sentence ('' when nothing was lost)."""
        if not any(self.recovered.values()) and self.lost and all(n is None for n in self.lost.values()):
            return (
                "None of the damaged file's tables could be read, so none of its rows were recovered "
                f"(the damaged file is kept as {self.damaged_copy})."
            )
        parts = []
        for table in TABLES:
            regions = self.damaged_regions.get(table, 0)
            lost = self.lost.get(table, 0)
            if lost is None:
                parts.append(f"an unknown number of {table} rows ({regions} unreadable region(s))")
            elif lost:
                parts.append(f"{lost} {table} row(s)")
            elif regions:
                parts.append(f"the rows in {regions} unreadable region(s) of {table}")
        for table, count in self.dropped.items():
            if count:
                parts.append(f"{count} {table} row(s) of lost model versions")
        if not parts:
            return ""
        sentence = "Could not recover " + "; ".join(parts)
        if self.placeholder_datasets:
            sentence += (
                f"; {self.placeholder_datasets} model version(s) kept a placeholder for their lost dataset "
                "lineage"
            )
        return sentence + f" (the damaged file is kept as {self.damaged_copy})."


def salvage_database(path: Path, quarantine: Path) -> SalvageReport:
    """Rebuild the database at ``path`` from its readable rows; see the module docstring."""
    quarantine.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    copy = quarantine / f"{path.name}.damaged-{stamp}"
    shutil.copy2(path, copy)
    for suffix in ("-wal",):
        side = path.with_name(path.name + suffix)
        if side.exists():
            shutil.copy2(side, copy.with_name(copy.name + suffix))
    report = SalvageReport(damaged_copy=copy)

    fresh = path.with_name(f".{path.name}.salvage-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    # read-only; without a -wal to replay, immutable too, so no -shm is left beside the copy
    has_wal = copy.with_name(copy.name + "-wal").exists()
    old = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro{'' if has_wal else '&immutable=1'}", uri=True)
    try:
        # rows are copied into the schema they were written for, then migrated like any old registry
        _create_schema(fresh, _schema_version(old))
        new = sqlite3.connect(str(fresh), isolation_level=None)
        try:
            new.execute("PRAGMA foreign_keys = OFF")
            new.execute("BEGIN")
            sequences = _old_sequences(old)
            for table in [t for t in TABLES if _columns(new, t)]:
                _copy_table(old, new, table, report)
                highest = max(sequences.get(table, 0), _max_id(new, table))
                if highest:
                    new.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                    new.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, highest))
            _mend_references(new, report)
            new.execute("COMMIT")
        finally:
            new.close()
        upgraded = peewee.SqliteDatabase(str(fresh), pragmas={"foreign_keys": 1})
        try:
            migrate(upgraded)
            problems = upgraded.execute_sql("PRAGMA foreign_key_check").fetchall()
        finally:
            upgraded.close()
        if problems:  # would be a bug in _mend_references: keep the damaged file in place
            raise RuntimeError(f"salvaged database still violates foreign keys: {problems[:3]}")
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
    finally:
        old.close()
    _fsync(fresh)
    # The damaged file's -wal and -shm must go before the new file arrives, or SQLite would replay
    # the old log onto it; both are in the quarantined copy.
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    _fsync(path.parent)
    return report


def _schema_version(old: sqlite3.Connection) -> int:
    """The damaged file's schema version; the latest when even its header cannot say."""
    try:
        found = int(old.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return LATEST_VERSION
    return found if 1 <= found <= LATEST_VERSION else LATEST_VERSION


def _create_schema(path: Path, version: int) -> None:
    """An empty registry database at schema ``version`` (the steps ``migrate`` would have run)."""
    db = peewee.SqliteDatabase(str(path))
    try:
        with db.atomic():
            for number, steps in MIGRATIONS:
                if number > version:
                    break
                for step in steps:
                    step(db) if callable(step) else db.execute_sql(step)
                db.execute_sql(f"PRAGMA user_version = {number:d}")
    finally:
        db.close()


def _fsync(path: Path) -> None:
    if os.name == "nt" and path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _old_sequences(old: sqlite3.Connection) -> dict[str, int]:
    try:
        return {name: int(seq) for name, seq in old.execute("SELECT name, seq FROM sqlite_sequence")}
    except sqlite3.DatabaseError:
        return {}


def _max_id(conn: sqlite3.Connection, table: str) -> int:
    """The highest id of an AUTOINCREMENT table (0 for one keyed otherwise, like training_provenance)."""
    if "id" not in _columns(conn, table):
        return 0
    return int(conn.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').fetchone()[0])


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def _copy_table(old: sqlite3.Connection, new: sqlite3.Connection, table: str, report: SalvageReport) -> None:
    try:
        old_columns = set(_columns(old, table))
    except sqlite3.DatabaseError:
        old_columns = set()
    if not old_columns:  # the schema itself is unreadable, or the table predates this registry
        report.recovered[table], report.lost[table] = 0, None if table in _old_tables(old) else 0
        return
    columns = [name for name in _columns(new, table) if name in old_columns]
    try:
        expected = int(old.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    except sqlite3.DatabaseError:
        expected = None  # counting walks the damaged pages too
    names = ", ".join(f'"{name}"' for name in columns)
    insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    copied = 0
    reader = _RowReader(old, table, names)
    for row in reader.rows():
        try:
            new.execute(insert, row)
            copied += 1
        except sqlite3.DatabaseError:  # a garbled row breaking a constraint: lost like an unreadable one
            reader.regions += 1
    report.recovered[table] = copied
    report.damaged_regions[table] = reader.regions
    if expected is not None and expected >= copied:
        report.lost[table] = expected - copied
    else:
        report.lost[table] = None if reader.regions else 0


def _old_tables(old: sqlite3.Connection) -> set[str]:
    try:
        return {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return set(TABLES)


class _RowReader:
    """Rows of one table in rowid order, stepping over the rowid ranges that sit on damaged pages."""

    def __init__(self, conn: sqlite3.Connection, table: str, names: str) -> None:
        self.conn, self.table, self.names = conn, table, names
        self.regions = 0

    def rows(self) -> Iterator[tuple]:
        # ">= start", never "> last": a seek past ``last`` visits the page holding ``last`` first
        columns = f'rowid, {self.names} FROM "{self.table}" WHERE rowid >= ? ORDER BY rowid'
        start = -(1 << 63)
        while True:
            try:
                for row in self.conn.execute(f"SELECT {columns}", (start,)):
                    start = row[0] + 1
                    yield row[1:]
                return
            except sqlite3.DatabaseError:
                pass
            # sqlite3 steps to the next row before handing out the current one, so the row read last
            # before the damage was dropped with the error: read it alone (LIMIT 1 never steps on).
            try:
                row = self.conn.execute(f"SELECT {columns} LIMIT 1", (start,)).fetchone()
            except sqlite3.DatabaseError:
                row = ()
            if row is None:
                return
            if row:
                start = row[0] + 1
                yield row[1:]
                continue
            self.regions += 1
            resume = self._first_readable_after(start)
            if resume is None:
                return
            start = resume

    def _seek(self, start: int) -> bool:
        """Whether looking up the first row at or after ``start`` avoids the damage."""
        try:
            self.conn.execute(
                f'SELECT rowid FROM "{self.table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1', (start,)
            ).fetchone()
            return True
        except sqlite3.DatabaseError:
            return False

    def _first_readable_after(self, start: int) -> int | None:
        """The smallest rowid above ``start`` (where reading fails) from which reading works again."""
        failing, step = start, 1
        while True:
            probe = start + step
            if probe > _MAX_ROWID:
                return None
            if self._seek(probe):
                break
            failing, step = probe, step * 2
        low, high = failing, probe  # low fails, high works: narrow down to the first that works
        while high - low > 1:
            middle = (low + high) // 2
            if self._seek(middle):
                high = middle
            else:
                low = middle
        return high


def _mend_references(new: sqlite3.Connection, report: SalvageReport) -> None:
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    missing = [
        row[0]
        for row in new.execute(
            "SELECT DISTINCT dataset_id FROM model_versions WHERE dataset_id NOT IN (SELECT id FROM datasets)"
        )
    ]
    for dataset_id in missing:
        new.execute(
            "INSERT INTO datasets (id, data_hash, source, format, units, rows, time_kind, created) "
            "VALUES (?, ?, ?, 'unknown', 0, 0, 'step', ?)",
            (dataset_id, f"lost-{dataset_id}", LOST_SOURCE, now),
        )
    report.placeholder_datasets = len(missing)
    if "run_id" in _columns(new, "model_versions"):  # schema 2 on
        new.execute(
            "UPDATE model_versions SET run_id = NULL "
            "WHERE run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM training_runs)"
        )
    new.execute(
        "UPDATE training_runs SET dataset_id = NULL "
        "WHERE dataset_id IS NOT NULL AND dataset_id NOT IN (SELECT id FROM datasets)"
    )
    for table in ("feedback_labels", "metric_history", "training_provenance"):
        if "version_id" not in _columns(new, table):  # an older schema without that table
            continue
        cursor = new.execute(f'DELETE FROM "{table}" WHERE version_id NOT IN (SELECT id FROM model_versions)')
        report.dropped[table] = cursor.rowcount
