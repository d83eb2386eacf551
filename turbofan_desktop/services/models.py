"""Model management: the use cases behind ``turbofan-desktop models|status|plugins|registry`` and the
GUI's registry browser — list and show versions, promote, archive, delete, clean up, KPI history, the
training status across equipment, the plugin listing and the registry's consistency check.

The CLI and the GUI reach the registry and the plugin manager only through here (DESIGN.md section 2):
what a version is (:class:`VersionRecord`, its :class:`TrainingProvenance`), its KPI points and labels,
a status row, and the stage and status names are re-exported for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.plugins.contract import ALL_TARGETS
from turbofan_desktop.registry import (
    STAGES,
    VERSION_STATUSES,
    CheckReport,
    LabelRecord,
    MetricPoint,
    Registry,
    StatusRow,
    TrainingProvenance,
    VersionRecord,
)
from turbofan_desktop.registry.cache import PruneReport
from turbofan_desktop.registry.transfer import MigrationReport

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from turbofan_desktop.config import Settings
    from turbofan_desktop.data.dataset import Dataset
    from turbofan_desktop.services import Workspace


# -- reading ---------------------------------------------------------------------------------------------
def list_versions(
    ws: Workspace,
    *,
    plugin: str | None = None,
    target: str | None = None,
    stage: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[VersionRecord]:
    """Versions matching every filter given, newest first, one page of ``limit`` after ``offset``."""
    return ws.registry.list_versions(
        plugin=plugin, target=target, stage=stage, status=status, limit=limit, offset=offset
    )


def count_versions(
    ws: Workspace,
    *,
    plugin: str | None = None,
    target: str | None = None,
    stage: str | None = None,
    status: str | None = None,
) -> int:
    """How many versions match the filters (all versions without any)."""
    return ws.registry.count_versions(plugin=plugin, target=target, stage=stage, status=status)


def change_marker(ws: Workspace) -> tuple[int, ...]:
    """A fingerprint of the registry's versions that changes whenever anyone changes them (see
    :meth:`Registry.change_marker`); one cheap query, meant to be polled off the GUI thread."""
    return ws.registry.change_marker()


def registry_display_name(location: str | Path) -> str:
    """A registry folder or URL as a user may see it: any password removed (status bar, recent list)."""
    from turbofan_desktop.registry.db import redact_url

    return redact_url(location)


def get_version(ws: Workspace, version_id: int) -> VersionRecord:
    """One version (NotFoundError with a sentence when there is none)."""
    return ws.registry.get(int(version_id))


@dataclass(frozen=True)
class VersionDetails:
    """Everything stored about one version: its record, its metric history (validations, detections
    judged by labels, drift checks; oldest first) and its feedback labels."""

    record: VersionRecord
    metric_history: list[MetricPoint]
    feedback: list[LabelRecord]


def show_version(ws: Workspace, version_id: int) -> VersionDetails:
    record = get_version(ws, version_id)
    return VersionDetails(record, ws.registry.metric_history(record.id), ws.registry.list_feedback(record.id))


def kpi_history(ws: Workspace, version_id: int) -> list[MetricPoint]:
    """The version's KPI entries (validation, detection with ground truth, ...) without drift checks,
    oldest first (:func:`turbofan_desktop.services.monitoring.kpi_history`)."""
    from turbofan_desktop.services import monitoring  # data and pandas load only when asked

    return monitoring.kpi_history(ws, version_id)


# -- stages -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Promotion:
    """A version moved to a stage; ``archived`` is the production version it replaced, if any."""

    record: VersionRecord
    archived: VersionRecord | None = None


def promote(ws: Workspace, version_id: int, stage: str) -> Promotion:
    """Move a version to ``stage`` (production needs validation and archives the previous one)."""
    before = ws.registry.production_of(int(version_id)) if stage == "production" else None
    record = ws.registry.promote(int(version_id), stage)
    replaced = before if before is not None and before.id != record.id else None
    return Promotion(record, replaced)


def archive(ws: Workspace, version_id: int) -> VersionRecord:
    return promote(ws, version_id, "archived").record


# -- deletion ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deletion:
    """A deleted version and what became of its artifact folder.

    ``artifact_was_there``: the folder existed when the row was deleted (False when it had gone
    already, or the version never had one); ``artifact_left``: it exists still (removal failed;
    ``registry check`` reports it).
    """

    record: VersionRecord
    artifact_was_there: bool
    artifact_left: bool


def _artifact_exists(record: VersionRecord) -> bool:
    return bool(record.artifact_path) and Path(str(record.artifact_path)).exists()


def delete_version(ws: Workspace, version_id: int, *, force: bool = False) -> Deletion:
    """Delete a version (its row, labels and KPI history, then its artifact) and drop the loaded model
    the workspace keeps for it. A production version needs ``force``."""
    record = get_version(ws, version_id)
    was_there = _artifact_exists(record)
    ws.registry.delete(record.id, force=force)
    ws.forget_model(record.id)
    return Deletion(record, was_there, _artifact_exists(record))


@dataclass(frozen=True)
class Cleanup:
    """What a cleanup deleted (or, in a dry run, would delete) and how many versions remain."""

    keep: int
    dry_run: bool
    versions: list[VersionRecord] = field(default_factory=list)
    remaining: int = 0

    @property
    def ids(self) -> list[int]:
        return sorted(record.id for record in self.versions)


def cleanup(ws: Workspace, *, keep: int, dry_run: bool = False) -> Cleanup:
    """Keep the newest ``keep`` versions per (plugin, target) — production, staging and versions still
    training always stay (the registry's rule) — and delete the rest; ``dry_run`` deletes nothing and
    lists what would go, for a confirmation."""
    # records are read first: after the deletion they are gone, and the caller names them
    before = {record.id: record for record in _all_versions(ws)}
    ids = ws.registry.cleanup(keep=keep, dry_run=dry_run)
    for version_id in ids if not dry_run else ():
        ws.forget_model(version_id)
    versions = [before[i] for i in ids if i in before]
    return Cleanup(keep, dry_run, versions, count_versions(ws))


def _all_versions(ws: Workspace, page: int = 1000) -> list[VersionRecord]:
    records: list[VersionRecord] = []
    while True:
        chunk = ws.registry.list_versions(limit=page, offset=len(records))
        records.extend(chunk)
        if len(chunk) < page:
            return records


# -- overview ---------------------------------------------------------------------------------------------
def _untrained_row(plugin: str, target: str) -> StatusRow:
    return StatusRow(
        plugin=plugin,
        target=target,
        versions=0,
        latest_id=None,
        latest_version=None,
        latest_status=None,
        latest_stage=None,
        validated=False,
        production_id=None,
        production_version=None,
        production_validated=None,
        last_trained=None,
        age_seconds=None,
        age="-",
    )


def training_status(ws: Workspace, dataset: Dataset | None = None) -> list[StatusRow]:
    """One row per (target, plugin) that has versions, as the registry reports it (latest and production
    version, validated, last trained, age) — plus, when ``dataset`` is given, an empty row for every
    target a loaded model could still be trained on, so the GUI shows the gaps too.
    Sorted by target (the all-sensor target ``*`` last), then plugin.
    """
    rows = list(ws.registry.status())
    if dataset is not None:
        present = {(row.plugin, row.target) for row in rows}
        for name, spec in ws.plugins.models().items():
            targets = dataset.informative_sensors if spec.per_target else [ALL_TARGETS]
            rows.extend(_untrained_row(name, t) for t in targets if (name, t) not in present)
    rows.sort(key=lambda row: (row.target == ALL_TARGETS, str(row.target), str(row.plugin)))
    return rows


def describe_plugins(ws: Workspace) -> list[dict[str, Any]]:
    """One row per loaded plugin (name, version, source, module, tasks, load error), each model with
    its tasks, description, version and config schema attached."""
    registry = ws.plugins
    models = registry.models()
    rows = []
    for row in registry.plugins():
        row = dict(row)
        row["models"] = [
            {
                "name": name,
                "tasks": list(models[name].tasks),
                "description": models[name].description,
                "version": models[name].version,
                "per_target": models[name].per_target,
                "config": models[name].schema(),
            }
            for name in row["models"]
        ]
        rows.append(row)
    return rows


def check_registry(ws: Workspace, *, repair: bool = False) -> CheckReport:
    """Rows without artifacts, artifacts without rows, sha256 mismatches, runs left by a crash; with
    ``repair`` dead runs are ended (succeeded when their version committed, else failed) and orphaned
    artifacts quarantined."""
    return ws.registry.check(repair=repair)


def check_registry_folder(
    registry_dir: Path | str | None = None,
    *,
    repair: bool = False,
    create: bool = True,
    artifacts: str | None = None,
) -> CheckReport:
    """:func:`check_registry` of a folder or URL (default: the settings' registry, else home) without
    a workspace, so a database too damaged to open is still reported, and with ``repair`` rebuilt
    from its readable rows (the damaged file kept in quarantine) before the usual check."""
    from turbofan_desktop.config import load_settings
    from turbofan_desktop.registry import check_folder

    settings = load_settings()
    location = registry_dir if registry_dir is not None else settings.registry_location
    if "://" not in str(location):
        location = Path(location).expanduser()
    return check_folder(
        location,
        repair=repair,
        create=create,
        cache_root=settings.home / "cache",
        artifacts=artifacts or settings.artifacts or None,
    )


def prune_artifact_cache(
    settings: Settings | None = None,
    *,
    max_mb: float | None = None,
    max_days: float | None = None,
    quiet: bool = False,
) -> PruneReport:
    """Keep the local cache of server registries' artifacts within the settings' ``cache_max_mb`` and
    ``cache_max_days`` (or the limits given): least recently used first, nothing used in the last
    minutes (:mod:`turbofan_desktop.registry.cache`). ``quiet`` (when a registry opens): a failure
    is a log line, never an error."""
    from turbofan_desktop.config import load_settings
    from turbofan_desktop.registry.cache import prune_artifact_cache as prune

    settings = settings or load_settings()
    limits = {
        "max_mb": settings.cache_max_mb if max_mb is None else max_mb,
        "max_days": settings.cache_max_days if max_days is None else max_days,
    }
    if not quiet:
        return prune(settings.home / "cache", **limits)
    try:
        report = prune(settings.home / "cache", **limits)
    except OSError as exc:
        log.info("artifact cache not pruned: %s", exc)
        return PruneReport(root=str(settings.home / "cache"), failed=[str(exc)])
    if report.removed:
        log.info("artifact cache: removed %d unused folder(s)", len(report.removed))
    return report


def migrate_registry(
    source: str | Path,
    destination: str | Path,
    *,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
    source_artifacts: str | None = None,
    destination_artifacts: str | None = None,
) -> MigrationReport:
    """Copy the registry at ``source`` (a folder or URL, which must exist) into ``destination`` (created
    or migrated to the current schema); running it again copies nothing twice
    (:mod:`turbofan_desktop.registry.transfer`)."""
    from turbofan_desktop.config import load_settings
    from turbofan_desktop.registry.transfer import migrate_registry as copy_all

    settings = settings or load_settings()
    cache = settings.home / "cache"
    with (
        Registry.open(
            source, create=False, cache_root=cache, artifacts=source_artifacts or settings.artifacts or None
        ) as src,
        Registry.open(
            destination, cache_root=cache, artifacts=destination_artifacts or settings.artifacts or None
        ) as dst,
    ):
        return copy_all(src, dst, progress)


__all__ = [
    "STAGES",
    "VERSION_STATUSES",
    "CheckReport",
    "Cleanup",
    "Deletion",
    "MigrationReport",
    "PruneReport",
    "LabelRecord",
    "MetricPoint",
    "Promotion",
    "StatusRow",
    "TrainingProvenance",
    "VersionDetails",
    "VersionRecord",
    "archive",
    "change_marker",
    "check_registry",
    "check_registry_folder",
    "cleanup",
    "count_versions",
    "delete_version",
    "describe_plugins",
    "get_version",
    "kpi_history",
    "list_versions",
    "promote",
    "prune_artifact_cache",
    "registry_display_name",
    "show_version",
    "training_status",
]
