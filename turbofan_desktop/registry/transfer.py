"""Copy one registry into another (``registry migrate``): a desk's SQLite folder into the team's
PostgreSQL database, or back.

Everything is copied: datasets, training runs, versions with their provenance, stages and
artifacts, feedback labels and KPI history. Each item is recognised in the destination by what it
is, never by its id (ids differ between registries): a dataset by (data hash, source), a run by
(plugin, target, start time, process, host), a version by (plugin, target, creation time, artifact
sha256), a label by (version, time, label, unit, range), a KPI entry by (version, kind, time). So a
second run copies nothing twice, and a run that stopped half-way resumes where it stopped.

Each version is one write transaction of the destination (its artifact stored first, as in
``register_version``); its number is kept when free in the destination, else it gets the next one.
A copied production version stays production only when the destination has none for its (plugin,
target) yet; otherwise it arrives archived (the database allows one production per pair).
After copying, every source item is looked up again in the destination and every copied artifact is
verified against its sha256: the report's counts and hash check come from that, not from the copy loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry import db as dbmod
from turbofan_desktop.registry.artifacts import artifact_files
from turbofan_desktop.registry.store import Registry

KINDS = ("datasets", "runs", "versions", "provenance", "labels", "metrics", "artifacts")


@dataclass
class MigrationReport:
    source: str
    destination: str
    copied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    already_there: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    in_source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    found_in_destination: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    hashes_verified: int = 0
    renumbered: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.in_source == self.found_in_destination

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "ok": self.ok,
            "copied": dict(self.copied),
            "already_there": dict(self.already_there),
            "in_source": dict(self.in_source),
            "found_in_destination": dict(self.found_in_destination),
            "hashes_verified": self.hashes_verified,
            "renumbered": list(self.renumbered),
            "archived": list(self.archived),
            "problems": list(self.problems),
        }


def _same(column: Any, value: Any) -> Any:
    """``column = value`` that also matches NULL (SQL's ``= NULL`` never does)."""
    return column.is_null() if value is None else column == value


def _values(row: peewee.Model) -> dict[str, Any]:
    """A row's stored values by field name (foreign keys as ids), without its id."""
    data = dict(row.__data__)
    data.pop("id", None)
    return data


def _copy_folder(source: Path) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        for relative, path in artifact_files(source):
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    return write


class _Copier:
    def __init__(self, source: Registry, dest: Registry, progress: Callable[[str], None] | None):
        self.src, self.dst = source, dest
        self.s, self.d = source.tables, dest.tables
        self.say = progress or (lambda _message: None)
        self.report = MigrationReport(source=source.location, destination=dest.location)
        self.datasets: dict[int, int] = {}
        self.runs: dict[int, int] = {}
        self.versions: dict[int, int] = {}

    # -- lookups by identity ---------------------------------------------------------------------
    def _dataset_in_dest(self, row: Any) -> Any:
        d = self.d.DatasetRow
        return d.get_or_none((d.data_hash == row.data_hash) & (d.source == row.source))

    def _run_in_dest(self, row: Any) -> Any:
        d = self.d.TrainingRun
        return d.get_or_none(
            (d.plugin == row.plugin)
            & (d.target == row.target)
            & (d.started == row.started)
            & _same(d.pid, row.pid)
            & _same(d.host, row.host)
        )

    def _version_in_dest(self, row: Any) -> Any:
        d = self.d.ModelVersion
        sha = (
            d.artifact_sha256.is_null()
            if row.artifact_sha256 is None
            else d.artifact_sha256 == row.artifact_sha256
        )
        return d.get_or_none(
            (d.plugin == row.plugin) & (d.target == row.target) & (d.created == row.created) & sha
        )

    def _label_in_dest(self, row: Any, version_id: int) -> Any:
        d = self.d.FeedbackLabel
        return (
            d.select()
            .where(
                (d.version == version_id)
                & (d.created == row.created)
                & (d.label == row.label)
                & (d.unit == row.unit)
                & _same(d.start, row.start)
                & _same(d.end, row.end)
            )
            .first()
        )

    def _metric_in_dest(self, row: Any, version_id: int) -> Any:
        d = self.d.MetricRecord
        return (
            d.select()
            .where((d.version == version_id) & (d.kind == row.kind) & (d.created == row.created))
            .first()
        )

    # -- copying ---------------------------------------------------------------------------------
    def _count(self, kind: str, copied: bool) -> None:
        (self.report.copied if copied else self.report.already_there)[kind] += 1

    def run(self) -> MigrationReport:
        s = self.s
        self.say("copying datasets")
        for row in s.DatasetRow.select().order_by(s.DatasetRow.id):
            found = self._dataset_in_dest(row)
            self._count("datasets", found is None)
            if found is None:
                found = self.dst._write(lambda row=row: self.d.DatasetRow.create(**_values(row)))
            self.datasets[row.id] = found.id
        self.say("copying training runs")
        for row in s.TrainingRun.select().order_by(s.TrainingRun.id):
            found = self._run_in_dest(row)
            self._count("runs", found is None)
            if found is None:
                values = _values(row)
                values["dataset"] = self.datasets.get(values.get("dataset"))
                found = self.dst._write(lambda values=values: self.d.TrainingRun.create(**values))
            self.runs[row.id] = found.id
        self.say("copying versions and artifacts")
        for row in s.ModelVersion.select().order_by(s.ModelVersion.id):
            self._version(row)
        self.say("copying labels and KPI history")
        for row in s.FeedbackLabel.select().order_by(s.FeedbackLabel.id):
            version_id = self.versions.get(row.version_id)
            if version_id is None:
                continue
            found = self._label_in_dest(row, version_id)
            self._count("labels", found is None)
            if found is None:
                self.dst._write(
                    lambda row=row, v=version_id: self.d.FeedbackLabel.create(
                        **{**_values(row), "version": v}
                    )
                )
        for row in s.MetricRecord.select().order_by(s.MetricRecord.id):
            version_id = self.versions.get(row.version_id)
            if version_id is None:
                continue
            found = self._metric_in_dest(row, version_id)
            self._count("metrics", found is None)
            if found is None:
                self.dst._write(
                    lambda row=row, v=version_id: self.d.MetricRecord.create(**{**_values(row), "version": v})
                )
        self.say("verifying counts and artifact hashes")
        self._verify()
        return self.report

    def _source_artifact(self, row: Any) -> Path | None:
        """The source's artifact folder of a version (any status), checked against its sha256; None
        (and a problem in the report) when it is missing or damaged: such a version is not copied."""
        label = f"{row.plugin}/{row.target} v{row.version} (id {row.id})"
        try:
            ok, actual = self.src.artifacts.verify(row.artifact_path, row.artifact_sha256)
        except RegistryError as exc:
            ok, actual = False, str(exc)
        if not ok:
            what = "is missing" if actual is None else "does not match its sha256"
            self.report.problems.append(f"not copied: the artifact of model version {label} {what}.")
            return None
        return self.src.artifacts.path_of(row.artifact_path)

    def _version(self, row: Any) -> None:
        found = self._version_in_dest(row)
        if found is not None:
            self._count("versions", False)
            self.versions[row.id] = found.id
            if row.artifact_path:
                self._count("artifacts", False)
            if self.s.ProvenanceRow.get_or_none(self.s.ProvenanceRow.version == row.id) is not None:
                self._count("provenance", False)
            return
        staged = None
        if row.artifact_path and row.artifact_sha256:
            folder = self._source_artifact(row)
            if folder is None:
                return
            staged = self.dst.artifacts.stage(_copy_folder(folder))
            if staged.sha256 != row.artifact_sha256:
                self.dst.artifacts.discard(staged)
                self.report.problems.append(
                    f"not copied: the artifact of {row.plugin}/{row.target} v{row.version} changed while "
                    "it was copied (sha256 differs)."
                )
                return
        provenance = self.s.ProvenanceRow.get_or_none(self.s.ProvenanceRow.version == row.id)
        d = self.d.ModelVersion
        label = f"{row.plugin}/{row.target} v{row.version}"

        def work() -> int:
            dbmod.lock_key(self.dst.db, "version", row.plugin, row.target)
            values = _values(row)
            if staged is not None:
                self.dst.artifacts.commit(staged)
                values["artifact_path"] = staged.name
            else:
                values["artifact_path"] = None
            pair = (d.plugin == row.plugin) & (d.target == row.target)
            if d.select().where(pair & (d.version == row.version)).exists():
                last = d.select(peewee.fn.MAX(d.version)).where(pair).scalar() or 0
                values["version"] = last + 1
                self.report.renumbered.append(f"{label} -> v{last + 1}")
            if row.stage == "production" and d.select().where(pair & (d.stage == "production")).exists():
                values["stage"] = "archived"
                self.report.archived.append(label)
            values["dataset"] = self.datasets[row.dataset_id]
            values["run"] = self.runs.get(row.run_id) if row.run_id is not None else None
            new = d.create(**values)
            if provenance is not None:
                self.d.ProvenanceRow.insert(**{**_values(provenance), "version": new.id}).execute()
            return new.id

        try:
            new_id = self.dst._write(work)
        except BaseException:
            if staged is not None:
                self.dst.artifacts.discard(staged)
            raise
        if staged is not None:
            self.dst.artifacts.release(staged)
            self._count("artifacts", True)
        if provenance is not None:
            self._count("provenance", True)
        self._count("versions", True)
        self.versions[row.id] = new_id

    def _verify(self) -> None:
        """Count every source item again in the destination and check every artifact's sha256 there."""
        r, s = self.report, self.s
        for row in s.DatasetRow.select():
            r.in_source["datasets"] += 1
            r.found_in_destination["datasets"] += self._dataset_in_dest(row) is not None
        for row in s.TrainingRun.select():
            r.in_source["runs"] += 1
            r.found_in_destination["runs"] += self._run_in_dest(row) is not None
        provenance_ids = {row.version_id for row in s.ProvenanceRow.select(s.ProvenanceRow.version)}
        for row in s.ModelVersion.select():
            r.in_source["versions"] += 1
            found = self._version_in_dest(row)
            if found is None:
                continue
            r.found_in_destination["versions"] += 1
            if row.id in provenance_ids:
                r.in_source["provenance"] += 1
                dp = self.d.ProvenanceRow
                r.found_in_destination["provenance"] += dp.get_or_none(dp.version == found.id) is not None
            if row.artifact_path:
                r.in_source["artifacts"] += 1
                ok, _ = self.dst.artifacts.verify(found.artifact_path, found.artifact_sha256)
                if not ok:
                    r.problems.append(
                        f"The copied artifact of {row.plugin}/{row.target} v{found.version} does not verify."
                    )
                    continue
                r.found_in_destination["artifacts"] += 1
                r.hashes_verified += found.artifact_sha256 == row.artifact_sha256
        for row in s.FeedbackLabel.select():
            r.in_source["labels"] += 1
            version_id = self.versions.get(row.version_id)
            r.found_in_destination["labels"] += (
                version_id is not None and self._label_in_dest(row, version_id) is not None
            )
        for row in s.MetricRecord.select():
            r.in_source["metrics"] += 1
            version_id = self.versions.get(row.version_id)
            r.found_in_destination["metrics"] += (
                version_id is not None and self._metric_in_dest(row, version_id) is not None
            )
        # versions a problem kept from being copied are missing from "found"; artifacts of versions not
        # copied are not counted as in the source twice
        for key in KINDS:
            r.found_in_destination[key] = int(r.found_in_destination[key])


def migrate_registry(
    source: Registry, destination: Registry, progress: Callable[[str], None] | None = None
) -> MigrationReport:
    """Copy everything of ``source`` into ``destination`` (see the module docstring); idempotent.
    Refuses to copy a registry into itself (however the two were named) and to run while another
    migration into the same destination runs (:func:`migration_lock`)."""
    if source.location == destination.location or source.identity() == destination.identity():
        raise RegistryError(
            f"The source {source.location} and the destination {destination.location} are the same "
            "registry; name another destination."
        )
    with migration_lock(destination):
        return _Copier(source, destination, progress).run()


MIGRATION_LOCK_FILE = ".migrate.lock"


@contextlib.contextmanager
def migration_lock(destination: Registry) -> Iterator[None]:
    """Hold the destination's migration lock for the copy, or refuse at once with one sentence: on
    PostgreSQL a session advisory lock, on SQLite an OS lock on ``.migrate.lock`` in the registry
    folder (both vanish with the process, so a killed migration never leaves a stale lock)."""
    busy = RegistryError(
        f"Another migration into {destination.location} is running; wait for it to finish and run "
        "this one again (it copies only what is still missing)."
    )
    if destination.is_server:
        key = ("turbofan-migrate", "destination")
        got = destination.db.execute_sql(
            "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", key
        ).fetchone()[0]
        if not got:
            raise busy
        try:
            yield
        finally:
            destination.db.execute_sql("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", key)
        return
    path = destination.home / MIGRATION_LOCK_FILE
    handle = open(path, "a+b")  # noqa: SIM115 - held open for the whole copy
    try:
        if not _try_lock_file(handle):
            raise busy
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
            yield
        finally:
            _unlock_file(handle)
    finally:
        handle.close()


def _try_lock_file(handle: Any) -> bool:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock_file(handle: Any) -> None:
    if os.name == "nt":  # pragma: no cover
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
