"""The registry's tables as peewee models, bound to :data:`turbofan_desktop.registry.db.database`.

The tables themselves are created by the ordered SQL migrations in :mod:`.migrations` (so a fresh
registry and a migrated old one get the same schema); these classes must name the same columns, which
``tests/registry/test_migrations.py`` checks.
"""

from __future__ import annotations

import json
from typing import Any

import peewee

from turbofan_desktop.registry.db import database

STAGES = ("none", "staging", "production", "archived")
VERSION_STATUSES = ("training", "trained", "failed")
RUN_STATUSES = ("running", "succeeded", "failed", "cancelled")
FINAL_RUN_STATUSES = ("succeeded", "failed", "cancelled")


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays, paths and timestamps reach the registry from plugins; store their values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


class JSONField(peewee.TextField):
    """A JSON document in a TEXT column (portable: SQLite and PostgreSQL both store it as text)."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else dumps(value)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class DatasetRow(BaseModel):
    """The lineage of the data a version was trained on (DESIGN.md section 4), deduplicated."""

    data_hash = peewee.TextField()
    source = peewee.TextField()
    file_sha256 = peewee.TextField(null=True)
    format = peewee.TextField()
    units = peewee.IntegerField()
    rows = peewee.IntegerField()
    time_kind = peewee.TextField()
    time_start = JSONField(null=True)
    time_end = JSONField(null=True)
    columns = JSONField(default=list)
    unit_ids = JSONField(default=list)
    preprocessing = JSONField(default=list)
    created = peewee.TextField()

    class Meta:
        table_name = "datasets"

    def lineage(self) -> dict[str, Any]:
        return {
            "dataset_id": self.id,
            "data_hash": self.data_hash,
            "source": self.source,
            "file_sha256": self.file_sha256,
            "format": self.format,
            "units": self.units,
            "rows": self.rows,
            "num_samples": self.rows,
            "time_kind": self.time_kind,
            "time_start": self.time_start,
            "time_end": self.time_end,
            "columns": self.columns,
            "unit_ids": self.unit_ids,
            "preprocessing": self.preprocessing,
        }


class TrainingRun(BaseModel):
    """One training attempt; ``pid``/``host`` let ``registry check`` tell a crashed run from a live one."""

    plugin = peewee.TextField()
    target = peewee.TextField()
    config = JSONField(default=dict)
    dataset = peewee.ForeignKeyField(DatasetRow, null=True, column_name="dataset_id", on_delete="SET NULL")
    status = peewee.TextField()
    message = peewee.TextField(default="")
    epochs_done = peewee.IntegerField(default=0)
    started = peewee.TextField()
    finished = peewee.TextField(null=True)
    pid = peewee.IntegerField(null=True)
    host = peewee.TextField(null=True)

    class Meta:
        table_name = "training_runs"


class ModelVersion(BaseModel):
    """One registered model version; ``version`` counts per (plugin, target)."""

    plugin = peewee.TextField()
    target = peewee.TextField()
    version = peewee.IntegerField()
    stage = peewee.TextField(default="none")
    status = peewee.TextField()
    created = peewee.TextField()
    artifact_path = peewee.TextField(null=True)
    artifact_sha256 = peewee.TextField(null=True)
    config = JSONField(default=dict)
    history = JSONField(default=list)
    metrics = JSONField(default=dict)
    validation_performed = peewee.BooleanField(default=False)
    validation_metrics = JSONField(null=True)
    validation_data_hash = peewee.TextField(null=True)
    training_seconds = peewee.FloatField(default=0.0)
    library_versions = JSONField(default=dict)
    dataset = peewee.ForeignKeyField(DatasetRow, column_name="dataset_id", on_delete="RESTRICT")
    run = peewee.ForeignKeyField(TrainingRun, null=True, column_name="run_id", on_delete="SET NULL")
    extra = JSONField(default=dict)

    class Meta:
        table_name = "model_versions"


class FeedbackLabel(BaseModel):
    """A user's verdict on a time range of one unit (true/false/missed anomaly), kept for re-training."""

    version = peewee.ForeignKeyField(ModelVersion, column_name="version_id", on_delete="CASCADE")
    unit = JSONField()
    start = JSONField(column_name="range_start", null=True)
    end = JSONField(column_name="range_end", null=True)
    label = peewee.TextField()
    note = peewee.TextField(default="")
    created = peewee.TextField()
    # which data the range is on (file sha256, else content hash); None on labels from schema v2
    data_key = peewee.TextField(null=True)

    class Meta:
        table_name = "feedback_labels"


class MetricRecord(BaseModel):
    """One entry of a version's KPI history: validation, detection with ground truth, ..."""

    version = peewee.ForeignKeyField(ModelVersion, column_name="version_id", on_delete="CASCADE")
    kind = peewee.TextField()
    metrics = JSONField(default=dict)
    data_hash = peewee.TextField(null=True)
    created = peewee.TextField()

    class Meta:
        table_name = "metric_history"


MODELS = (DatasetRow, TrainingRun, ModelVersion, FeedbackLabel, MetricRecord)
