"""The model registry (DESIGN.md section 5): versions, stages, lineage and safe artifacts.

``Registry.open(home)`` is the entry point; see :class:`Registry` for the operations. Peewee only:
no Qt, no torch, and nothing here ever unpickles an artifact.
"""

from turbofan_desktop.registry.artifacts import ArtifactStore, artifact_sha256
from turbofan_desktop.registry.check import check_folder, pid_alive
from turbofan_desktop.registry.db import open_database
from turbofan_desktop.registry.migrations import LATEST_VERSION, migrate, schema_version
from turbofan_desktop.registry.overview import human_age
from turbofan_desktop.registry.records import (
    CheckReport,
    DatasetRecord,
    FitSummary,
    HeldOut,
    LabelRecord,
    MetricPoint,
    RunRecord,
    StatusRow,
    TrainedOn,
    TrainingProvenance,
    TrainingSource,
    ValidationSet,
    VersionRecord,
)
from turbofan_desktop.registry.schema import FINAL_RUN_STATUSES, RUN_STATUSES, STAGES, VERSION_STATUSES
from turbofan_desktop.registry.store import Registry

__all__ = [
    "FINAL_RUN_STATUSES",
    "LATEST_VERSION",
    "RUN_STATUSES",
    "STAGES",
    "VERSION_STATUSES",
    "ArtifactStore",
    "CheckReport",
    "DatasetRecord",
    "FitSummary",
    "HeldOut",
    "LabelRecord",
    "MetricPoint",
    "Registry",
    "RunRecord",
    "StatusRow",
    "TrainedOn",
    "TrainingProvenance",
    "TrainingSource",
    "ValidationSet",
    "VersionRecord",
    "artifact_sha256",
    "check_folder",
    "human_age",
    "migrate",
    "open_database",
    "pid_alive",
    "schema_version",
]
