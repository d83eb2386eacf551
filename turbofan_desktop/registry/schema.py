"""The registry's tables as peewee models, built afresh for each database by :func:`bind_tables`.

Each :class:`~turbofan_desktop.registry.store.Registry` owns its own set of model classes bound to its
own database object, so two registries open in one process (two folders, or later two backends) never
share a binding: no global proxy is re-pointed, and a thread working on one registry cannot send a
query to another.

The tables themselves are created by the ordered SQL migrations in :mod:`.migrations` (so a fresh
registry and a migrated old one get the same schema); these classes must name the same columns, which
``tests/registry/test_registry_migrations.py`` checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import peewee

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


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


class JSONField(peewee.TextField):
    """A JSON document in a TEXT column (portable: SQLite and PostgreSQL both store it as text)."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else dumps(value)

    def python_value(self, value: str | None) -> Any:
        return loads(value)


@dataclass(frozen=True)
class Tables:
    """One registry's model classes, all bound to ``db``."""

    db: peewee.Database | None
    DatasetRow: type[peewee.Model]
    TrainingRun: type[peewee.Model]
    ModelVersion: type[peewee.Model]
    ProvenanceRow: type[peewee.Model]
    FeedbackLabel: type[peewee.Model]
    MetricRecord: type[peewee.Model]

    @property
    def models(self) -> tuple[type[peewee.Model], ...]:
        return (
            self.DatasetRow,
            self.TrainingRun,
            self.ModelVersion,
            self.ProvenanceRow,
            self.FeedbackLabel,
            self.MetricRecord,
        )


def bind_tables(db: peewee.Database | None) -> Tables:
    """Fresh model classes bound to ``db`` (None: unbound, for introspection only).

    Building the six classes costs well under a millisecond, paid once per ``Registry.open``.
    """

    class BaseModel(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class DatasetRow(BaseModel):
        """The lineage of the data a version was trained on (DESIGN.md section 4), deduplicated.

        The lineage columns carry the names of :class:`~turbofan_desktop.data.dataset.DataLineage`'s
        fields (a test checks it), so the store copies them by name and the key set lives in ``data``.
        """

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

    class TrainingRun(BaseModel):
        """One training attempt; ``pid``/``host`` let ``registry check`` tell a crashed run from a live one."""

        plugin = peewee.TextField()
        target = peewee.TextField()
        config = JSONField(default=dict)
        dataset = peewee.ForeignKeyField(
            DatasetRow, null=True, column_name="dataset_id", on_delete="SET NULL"
        )
        status = peewee.TextField()
        message = peewee.TextField(default="")
        epochs_done = peewee.IntegerField(default=0)
        started = peewee.TextField()
        finished = peewee.TextField(null=True)
        pid = peewee.IntegerField(null=True)
        host = peewee.TextField(null=True)
        os_user = peewee.TextField(null=True)

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
        os_user = peewee.TextField(null=True)  # who and where registered it (schema 5)
        host = peewee.TextField(null=True)

        class Meta:
            table_name = "model_versions"

    class ProvenanceRow(BaseModel):
        """How a version was trained (split, source, fit): one row per version, see
        :class:`~turbofan_desktop.registry.records.TrainingProvenance` for the meaning of each column."""

        version = peewee.ForeignKeyField(
            ModelVersion, primary_key=True, column_name="version_id", on_delete="CASCADE"
        )
        split_units = JSONField(null=True)
        split_seed = peewee.IntegerField(null=True)
        val_fraction = peewee.FloatField(null=True)
        test_fraction = peewee.FloatField(null=True)
        source_path = peewee.TextField(null=True)
        source_rul_path = peewee.TextField(null=True)
        source_unit_col = peewee.TextField(null=True)
        source_time_col = peewee.TextField(null=True)
        source_format = peewee.TextField(null=True)
        source_data_hash = peewee.TextField(null=True)
        source_units = peewee.IntegerField(null=True)
        validation_split = peewee.TextField(null=True)
        validation_units = peewee.IntegerField(null=True)
        validation_data_hash = peewee.TextField(null=True)
        held_out_split = peewee.TextField(null=True)
        held_out_frame_hash = peewee.TextField(null=True)
        fit_epochs_run = peewee.IntegerField(null=True)
        fit_best_epoch = peewee.IntegerField(null=True)
        fit_stopped_early = peewee.BooleanField(null=True)
        fit_seed = peewee.IntegerField(null=True)
        fit_notes = JSONField(null=True)
        model_version = peewee.TextField(null=True)
        training_stats = JSONField(null=True)
        legacy = JSONField(default=dict)
        trained_executor = peewee.TextField(null=True)
        trained_host = peewee.TextField(null=True)
        trained_worker = peewee.TextField(null=True)

        class Meta:
            table_name = "training_provenance"

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

    return Tables(
        db=db,
        DatasetRow=DatasetRow,
        TrainingRun=TrainingRun,
        ModelVersion=ModelVersion,
        ProvenanceRow=ProvenanceRow,
        FeedbackLabel=FeedbackLabel,
        MetricRecord=MetricRecord,
    )
