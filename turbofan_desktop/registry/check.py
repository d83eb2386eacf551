"""``registry check``: find what a crash, a full disk or a curious user left inconsistent.

Found: database damage, rows whose artifact is missing or modified (never repaired automatically:
the user must restore or delete them), artifact folders without a row, half-written artifacts,
runs and versions left ``running``/``training`` by a process that no longer exists. Repair only
does what loses nothing: it ends dead runs (``succeeded`` when their version committed before the
process died, else ``failed``) and moves orphans to ``quarantine/``. A damaged database file is
rebuilt from the rows that can still be read (:mod:`.salvage`), the damaged file kept in quarantine.

Work in progress is not a problem: staging entries carry their writer's process id, and the
inventory is taken before the rows are read (see :mod:`.artifacts`), so a registration committing
while the check runs is never mistaken for an orphan.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.errors import DamagedRegistryError, RegistryError
from turbofan_desktop.registry.records import CheckReport
from turbofan_desktop.registry.salvage import salvage_database
from turbofan_desktop.registry.storage import damage_detail, integrity_problems

if TYPE_CHECKING:
    from turbofan_desktop.registry.store import Registry

# A run owned by another machine (shared folder), or recorded without a process id, is presumed
# dead only after this long: we cannot ask that machine whether it is still training.
FOREIGN_RUN_STALE_AFTER = timedelta(hours=24)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than(iso: str | None, age: timedelta) -> bool:
    try:
        then = datetime.fromisoformat(iso or "")
    except ValueError:
        return True
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return datetime.now(UTC) - then > age


def run_is_dead(run: Any, host: str) -> bool:
    """Whether a ``training_runs`` row's process is gone (or, owned elsewhere, stale)."""
    if run.pid is not None and run.host == host:
        return not pid_alive(run.pid)
    return _older_than(run.started, FOREIGN_RUN_STALE_AFTER)


def _problem(kind: str, message: str, *, repairable: bool, **where: object) -> dict:
    return {"kind": kind, "message": message, "repairable": repairable, "repaired": False, **where}


def check_registry(registry: Registry, *, repair: bool = False, verify_hashes: bool = True) -> CheckReport:
    from turbofan_desktop.registry.store import utc_now

    store = registry.artifacts
    ModelVersion, TrainingRun = registry.tables.ModelVersion, registry.tables.TrainingRun  # noqa: N806
    report = CheckReport(quarantine=str(store.quarantine))
    host = socket.gethostname()

    # 1. inventory first (staging, then folders), rows after: see the module docstring
    staging = list(store.staging_entries())
    live_tokens = {e.token for e in staging if e.kind in ("tmp", "pending") and pid_alive(e.pid)}
    folders = set(store.artifact_names())

    # PostgreSQL checks its own pages; SQLite's file is asked
    damage = [] if registry.is_server else integrity_problems(registry.db)
    if damage:
        # The rows cannot be trusted (reading them may fail half-way): report, or rebuild first.
        return _damaged_database(registry, report, "; ".join(damage), repair=repair, verify=verify_hashes)

    versions = list(
        ModelVersion.select(
            ModelVersion.id,
            ModelVersion.plugin,
            ModelVersion.target,
            ModelVersion.version,
            ModelVersion.status,
            ModelVersion.artifact_path,
            ModelVersion.artifact_sha256,
            ModelVersion.run,
        )
    )
    runs = {run.id: run for run in TrainingRun.select()}
    report.checked_versions, report.checked_runs = len(versions), len(runs)
    referenced = {v.artifact_path for v in versions if v.artifact_path}

    # 2. rows and their artifacts
    for v in versions:
        label = f"{v.plugin}/{v.target} v{v.version} (id {v.id})"
        if v.status == "training":
            run = runs.get(v.run_id) if v.run_id is not None else None
            if run is None or run.status != "running" or run_is_dead(run, host):
                report.problems.append(
                    _problem(
                        "stuck_version",
                        f"Model version {label} is still marked 'training' but no process is training it.",
                        repairable=True,
                        version_id=v.id,
                    )
                )
            continue
        if v.status != "trained":
            continue
        if not v.artifact_path or not v.artifact_sha256:
            report.problems.append(
                _problem(
                    "missing_artifact",
                    f"Model version {label} has no artifact recorded.",
                    repairable=False,
                    version_id=v.id,
                )
            )
            continue
        try:
            present = store.has(v.artifact_path)
        except RegistryError as exc:
            report.problems.append(_problem("bad_artifact_path", str(exc), repairable=False, version_id=v.id))
            continue
        where = store.describe(v.artifact_path)
        if not present:
            report.problems.append(
                _problem(
                    "missing_artifact",
                    f"The artifact of model version {label} is missing ({where}); restore it from a backup "
                    f"or delete the version (models delete {v.id} --force).",
                    repairable=False,
                    version_id=v.id,
                    path=where,
                )
            )
        elif verify_hashes:
            ok, _ = store.verify(v.artifact_path, v.artifact_sha256)
            if not ok:
                report.problems.append(
                    _problem(
                        "sha_mismatch",
                        f"The artifact of model version {label} was modified or damaged (sha256 mismatch in "
                        f"{where}); restore it or delete the version.",
                        repairable=False,
                        version_id=v.id,
                        path=where,
                    )
                )

    # 3. folders nobody owns
    for name in sorted(folders - referenced - live_tokens):
        if not store.has(name, any_entry=True):  # deleted meanwhile by a `models delete` that just committed
            continue
        report.problems.append(
            _problem(
                "orphan_artifact",
                f"{store.describe(name)} belongs to no model version (left by an interrupted registration "
                "or deletion).",
                repairable=True,
                path=store.describe(name),
                artifact=name,
            )
        )
    for entry in staging:
        if entry.token in live_tokens or not entry.path.exists():
            continue
        kind, message = {
            "tmp": (
                "incomplete_artifact",
                f"{entry.path} is an artifact whose writer (process {entry.pid}) died.",
            ),
            "pending": ("stale_marker", f"{entry.path} is a leftover marker of process {entry.pid}."),
        }.get(entry.kind, ("unknown_staging_entry", f"{entry.path} is not something the registry writes."))
        report.problems.append(_problem(kind, message, repairable=True, path=str(entry.path)))

    # 4. runs a crash left running; one whose version committed before the crash succeeded
    committed = {v.run_id: v for v in versions if v.run_id is not None and v.status == "trained"}
    for run in runs.values():
        if run.status == "running" and run_is_dead(run, host):
            owner = f"process {run.pid} on {run.host}" if run.pid is not None else "an unknown process"
            version = committed.get(run.id)
            outcome = (
                f"; its model version v{version.version} (id {version.id}) was committed, so it succeeded"
                if version is not None
                else ""
            )
            report.problems.append(
                _problem(
                    "stuck_run",
                    f"Training run {run.id} ({run.plugin}/{run.target}) is still marked running, but {owner} "
                    f"is gone{outcome}.",
                    repairable=True,
                    run_id=run.id,
                    version_id=version.id if version is not None else None,
                )
            )

    if repair:
        for problem in report.problems:
            if problem["repairable"]:
                _repair(registry, problem, utc_now())
                if problem["repaired"]:
                    report.repaired.append(problem)
    return report


def check_folder(
    home: Path | str,
    *,
    repair: bool = False,
    create: bool = True,
    cache_root: Path | None = None,
    artifacts: str | Path | None = None,
) -> CheckReport:
    """``registry check`` of a folder, even one whose database is so damaged that it cannot be
    opened: then only the damage is reported, or with ``repair`` the database is rebuilt from
    whatever can be read before the usual check runs. ``home`` may also be a ``sqlite:///`` URL
    (its folder is checked) or a server URL (checked as it opens; ``cache_root`` as in ``Registry.open``)."""
    from turbofan_desktop.registry import db as dbmod
    from turbofan_desktop.registry.store import DB_FILE, Registry

    if dbmod.is_server_url(home):
        with Registry.open(home, create=create, cache_root=cache_root, artifacts=artifacts) as registry:
            return registry.check(repair=repair)
    if dbmod.is_url(home):
        if not str(home).lower().startswith("sqlite://"):
            dbmod.open_database(str(home))  # the unknown-scheme sentence
        home = dbmod.sqlite_file(home).expanduser().parent

    try:
        registry = Registry.open(home, create=create)
    except DamagedRegistryError as exc:
        folder = Path(home).expanduser()
        registry = Registry(folder, dbmod.open_database(folder / DB_FILE))  # connects on first use
        report = CheckReport(quarantine=str(registry.artifacts.quarantine))
        with registry:
            return _damaged_database(registry, report, damage_detail(exc), repair=repair, verify=True)
    with registry:
        return registry.check(repair=repair)


def _damaged_database(
    registry: Registry, report: CheckReport, detail: str, *, repair: bool, verify: bool
) -> CheckReport:
    """Report the damage; with ``repair``, rebuild the database from its readable rows (keeping the
    damaged file in quarantine), say what was lost, then check the rebuilt registry as usual."""
    problem = _problem(
        "database_damaged",
        f"The registry database {registry.path} is damaged ({detail}).",
        repairable=True,
        path=str(registry.path),
    )
    report.problems.append(problem)
    if not repair:
        return report
    registry.close()
    try:
        salvage = salvage_database(registry.path, registry.artifacts.quarantine)
    except (OSError, sqlite3.DatabaseError, RuntimeError) as exc:
        problem["action"] = f"repair failed, the database was left as it was: {exc}"
        return report
    problem["repaired"] = True
    problem["action"] = salvage.summary()
    report.repaired.append(problem)
    losses = salvage.losses()
    if losses:  # said once, by this run: the rebuilt database no longer knows what it lacks
        report.problems.append(
            _problem("rows_lost", losses, repairable=False, path=str(salvage.damaged_copy))
        )
    after = check_registry(registry, repair=True, verify_hashes=verify)
    report.problems.extend(after.problems)
    report.repaired.extend(after.repaired)
    report.checked_versions, report.checked_runs = after.checked_versions, after.checked_runs
    return report


def _repair(registry: Registry, problem: dict, now: str) -> None:
    kind = problem["kind"]
    ModelVersion, TrainingRun = registry.tables.ModelVersion, registry.tables.TrainingRun  # noqa: N806
    try:
        if kind == "stuck_run":
            # A run agrees with its version: the crash came after the version's commit, so the
            # training succeeded and only its bookkeeping was lost.
            if problem.get("version_id") is not None:
                status, action = "succeeded", "marked succeeded"
                message = "finished by registry check: the version committed before the process ended"
            else:
                status, action = "failed", "marked failed"
                message = "interrupted: the training process ended without finishing the run"

            def end_run() -> None:
                TrainingRun.update(status=status, message=message, finished=now).where(
                    (TrainingRun.id == problem["run_id"]) & (TrainingRun.status == "running")
                ).execute()

            registry._write(end_run)
            problem["action"] = action
        elif kind == "stuck_version":

            def fail_version() -> None:
                ModelVersion.update(status="failed").where(
                    (ModelVersion.id == problem["version_id"]) & (ModelVersion.status == "training")
                ).execute()

            registry._write(fail_version)
            problem["action"] = "marked failed"
        elif kind == "orphan_artifact":
            target = registry.artifacts.quarantine_artifact(problem["artifact"])
            problem["action"] = f"moved to {target}"
        elif kind == "stale_marker":
            os.unlink(problem["path"])
            problem["action"] = "removed"
        else:  # incomplete_artifact, unknown_staging_entry
            from pathlib import Path

            target = registry.artifacts.move_to_quarantine(Path(problem["path"]))
            problem["action"] = f"moved to {target}"
        problem["repaired"] = True
    except (OSError, RegistryError) as exc:
        problem["action"] = f"repair failed: {exc}"
