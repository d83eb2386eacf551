"""Plain, immutable views of registry rows handed to services, the CLI and the UI."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turbofan_desktop.registry.schema import ModelVersion

# Columns read for a VersionRecord, in the order of the raw rows passed to ``from_columns``.
RECORD_COLUMNS = (
    ModelVersion.id,
    ModelVersion.plugin,
    ModelVersion.target,
    ModelVersion.version,
    ModelVersion.stage,
    ModelVersion.status,
    ModelVersion.created,
    ModelVersion.artifact_path,
    ModelVersion.artifact_sha256,
    ModelVersion.config,
    ModelVersion.history,
    ModelVersion.metrics,
    ModelVersion.validation_performed,
    ModelVersion.validation_metrics,
    ModelVersion.validation_data_hash,
    ModelVersion.training_seconds,
    ModelVersion.library_versions,
    ModelVersion.dataset,
    ModelVersion.run,
    ModelVersion.extra,
)
RECORD_COLUMN_NAMES = tuple(
    {"dataset": "dataset_id", "run": "run_id"}.get(field.name, field.name) for field in RECORD_COLUMNS
)
JSON_COLUMNS = ("config", "history", "metrics", "validation_metrics", "library_versions", "extra")


@dataclass(frozen=True)
class VersionRecord:
    """One model version with its dataset lineage; detached from the database (safe across threads)."""

    id: int
    plugin: str
    target: str
    version: int
    stage: str
    status: str
    created: str  # ISO-8601, UTC
    artifact_path: str | None  # absolute folder; None when no artifact was stored
    artifact_sha256: str | None
    config: dict
    history: list
    metrics: dict
    validation_performed: bool
    validation_metrics: dict | None
    validation_data_hash: str | None
    training_seconds: float
    library_versions: dict
    dataset_id: int
    lineage: dict
    run_id: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How a user names this version in a sentence: ``telemanom/sensor_11 v3 (id 17)``."""
        return f"{self.plugin}/{self.target} v{self.version} (id {self.id})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plugin": self.plugin,
            "target": self.target,
            "version": self.version,
            "stage": self.stage,
            "status": self.status,
            "created": self.created,
            "artifact_path": self.artifact_path,
            "artifact_sha256": self.artifact_sha256,
            "config": self.config,
            "history": self.history,
            "metrics": self.metrics,
            "validation_performed": self.validation_performed,
            "validation_metrics": self.validation_metrics,
            "validation_data_hash": self.validation_data_hash,
            "training_seconds": self.training_seconds,
            "library_versions": self.library_versions,
            "dataset_id": self.dataset_id,
            "run_id": self.run_id,
            "lineage": dict(self.lineage),
            "extra": self.extra,
        }

    @classmethod
    def from_columns(cls, values: tuple, lineage: dict, artifact_root: Path) -> VersionRecord:
        """Build from one raw row of :data:`RECORD_COLUMNS` (JSON still encoded) and its lineage.

        Listing decodes rows by hand instead of through peewee model instances: a page of 100
        versions with their training histories is dominated by per-row object overhead otherwise.
        """
        row = dict(zip(RECORD_COLUMN_NAMES, values, strict=True))
        for name in JSON_COLUMNS:
            raw = row[name]
            row[name] = json.loads(raw) if raw is not None else None
        path = row.pop("artifact_path")
        row["validation_performed"] = bool(row["validation_performed"])
        row["training_seconds"] = float(row["training_seconds"] or 0.0)
        return cls(
            **row,
            artifact_path=str(artifact_root / path) if path else None,
            lineage=dict(lineage),
        )


@dataclass
class CheckReport:
    """What ``registry check`` found. Each problem is a dict with ``kind``, ``message``, ``repairable``,
    ``repaired`` and, where it applies, ``version_id`` / ``run_id`` / ``path``.
    """

    problems: list[dict] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    checked_versions: int = 0
    checked_runs: int = 0
    quarantine: str | None = None

    @property
    def remaining(self) -> list[dict]:
        return [p for p in self.problems if not p.get("repaired")]

    @property
    def ok(self) -> bool:
        """True when nothing is (or after repair, remains) wrong."""
        return not self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [dict(p) for p in self.problems],
            "repaired": [dict(p) for p in self.repaired],
            "remaining": len(self.remaining),
            "checked_versions": self.checked_versions,
            "checked_runs": self.checked_runs,
            "quarantine": self.quarantine,
        }
