"""Plain, immutable views of registry rows handed to services, the CLI and the UI.

Every record is a frozen dataclass detached from the database (safe across threads); ``to_dict()``
gives the JSON the CLI prints, with the keys it has always printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turbofan_desktop.data.lineage import DataLineage
from turbofan_desktop.data.split import UnitSplit

# Columns read for a VersionRecord, in the order of the raw rows passed to ``from_columns``.
RECORD_COLUMN_NAMES = (
    "id",
    "plugin",
    "target",
    "version",
    "stage",
    "status",
    "created",
    "artifact_path",
    "artifact_sha256",
    "config",
    "history",
    "metrics",
    "validation_performed",
    "validation_metrics",
    "validation_data_hash",
    "training_seconds",
    "library_versions",
    "dataset_id",
    "run_id",
    "os_user",
    "host",
)
JSON_COLUMNS = ("config", "history", "metrics", "validation_metrics", "library_versions")


def record_columns(model_version: Any) -> tuple[Any, ...]:
    """The ModelVersion fields of :data:`RECORD_COLUMN_NAMES` on one registry's bound table."""
    return tuple(
        getattr(model_version, {"dataset_id": "dataset", "run_id": "run"}.get(n, n))
        for n in RECORD_COLUMN_NAMES
    )


# -- training provenance ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingSource:
    """Where the training data was read from, so validation can read the held-out units again."""

    path: str | None  # absolute; None when the data never came from a file
    rul_path: str | None
    unit_col: str | None
    time_col: str | None
    format: str | None
    data_hash: str | None  # of the whole source, before the split
    units: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rul_path": self.rul_path,
            "unit_col": self.unit_col,
            "time_col": self.time_col,
            "format": self.format,
            "data_hash": self.data_hash,
            "units": self.units,
        }


@dataclass(frozen=True)
class ValidationSet:
    """The split the training run validated on."""

    split: str | None
    units: int | None
    data_hash: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "units": self.units, "data_hash": self.data_hash}


@dataclass(frozen=True)
class HeldOut:
    """The units a version never trained on and the fingerprint of their rows at training time."""

    split: str | None  # "test" when the run kept a test split, else "val"
    frame_hash: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "frame_hash": self.frame_hash}


@dataclass(frozen=True)
class FitSummary:
    """What the plugin's ``fit`` reported about itself."""

    epochs_run: int | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    seed: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seed": self.seed,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TrainedOn:
    """Where a version trained: the executor ("inprocess", "local", "dask"), the host and the worker
    (a local process or a Dask worker's address). Versions trained before schema 6 have none."""

    executor: str | None = None
    host: str | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"executor": self.executor, "host": self.host, "worker": self.worker}

    @classmethod
    def from_where(cls, where: dict[str, Any] | None) -> TrainedOn | None:
        """From a job result's ``where`` (None when it names nothing)."""
        values = {k: (str(v) if v is not None else None) for k, v in dict(where or {}).items()}
        found = cls(values.get("executor"), values.get("host"), values.get("worker"))
        return found if found != cls() else None


@dataclass(frozen=True)
class TrainingProvenance:
    """How a version was trained, beyond its lineage: the unit split, the source to re-read held-out
    units from, the fit summary, the plugin version, and (for versions registered by hand) the
    training statistics drift is measured against. Every part is optional: versions from older
    programs or registered by hand carry only some.
    """

    split: UnitSplit | None = None
    source: TrainingSource | None = None
    validation: ValidationSet | None = None
    held_out: HeldOut | None = None
    fit: FitSummary | None = None
    model_version: str | None = None
    training_stats: dict | None = None
    trained_on: TrainedOn | None = None
    # keys an older program stored in the free-form ``extra`` column that no field above names; kept
    # by the schema-4 migration so converting a registry loses nothing
    legacy: dict = field(default_factory=dict)

    @property
    def seed(self) -> int | None:
        return self.split.seed if self.split is not None else None

    @property
    def val_fraction(self) -> float | None:
        return self.split.val_fraction if self.split is not None else None

    @property
    def test_fraction(self) -> float | None:
        return self.split.test_fraction if self.split is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The document the ``extra`` column held before schema 4 (key for key, in its order)."""
        out: dict[str, Any] = {}
        if self.split is not None:
            out["split"] = self.split.to_dict()
            out["seed"] = self.seed
            out["val_fraction"] = self.val_fraction
            out["test_fraction"] = self.test_fraction
        for name in ("source", "validation", "held_out", "fit", "trained_on"):
            part = getattr(self, name)
            if part is not None:
                out[name] = part.to_dict()
        if self.split is not None or self.model_version is not None:
            out["model_version"] = self.model_version
        if self.training_stats is not None:
            out["training_stats"] = self.training_stats
        out.update({k: v for k, v in self.legacy.items() if k not in out})
        return out

    @classmethod
    def from_legacy(cls, extra: Any) -> TrainingProvenance:
        """Read an ``extra`` document of schema 2-3; whatever does not fit a field goes to ``legacy``."""
        parts: dict[str, Any] = {}
        legacy: dict[str, Any] = {}
        for key, value in (extra if isinstance(extra, dict) else {}).items():
            reader = _LEGACY_READERS.get(key)
            if reader is not None:
                try:
                    parts[key] = reader(value)
                    continue
                except (KeyError, TypeError, ValueError):
                    pass  # a part of the wrong shape is kept below, as it was
            legacy[key] = value
        split = parts.get("split")
        for key in ("seed", "val_fraction", "test_fraction"):  # duplicates of the split's own values
            if split is not None and key in legacy and legacy[key] == getattr(split, key):
                del legacy[key]
        return cls(**parts, legacy=legacy)


def _fields_of(record: type, data: dict) -> dict[str, Any]:
    return {name: data.get(name) for name in record.__dataclass_fields__}


def _str_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("not text")
    return value


def _a_dict(value: Any) -> dict:
    if not isinstance(value, dict):
        raise TypeError("not a mapping")
    return value


def _legacy_fit(data: dict) -> FitSummary:
    return FitSummary(
        epochs_run=data.get("epochs_run"),
        best_epoch=data.get("best_epoch"),
        stopped_early=bool(data.get("stopped_early")),
        seed=data.get("seed"),
        notes=tuple(str(n) for n in data.get("notes") or ()),
    )


_LEGACY_READERS = {
    "split": lambda v: UnitSplit.from_dict(_a_dict(v)),
    "source": lambda v: TrainingSource(**_fields_of(TrainingSource, _a_dict(v))),
    "validation": lambda v: ValidationSet(**_fields_of(ValidationSet, _a_dict(v))),
    "held_out": lambda v: HeldOut(**_fields_of(HeldOut, _a_dict(v))),
    "fit": lambda v: _legacy_fit(_a_dict(v)),
    "trained_on": lambda v: TrainedOn(**_fields_of(TrainedOn, _a_dict(v))),
    "model_version": _str_or_none,
    "training_stats": _a_dict,
}


def provenance_to_row(provenance: TrainingProvenance) -> dict[str, Any]:
    """The ``training_provenance`` columns for a record (JSON columns still as Python values)."""
    split, source, validation = provenance.split, provenance.source, provenance.validation
    held_out, fit = provenance.held_out, provenance.fit
    units = split.to_dict() if split else {}
    return {
        # the three unit lists in one JSON document: one decode per listed version, not three
        "split_units": {name: units[name] for name in ("train", "val", "test")} if split else None,
        "split_seed": split.seed if split else None,
        "val_fraction": split.val_fraction if split else None,
        "test_fraction": split.test_fraction if split else None,
        **{f"source_{k}": v for k, v in (source or _NO_SOURCE).to_dict().items()},
        **{f"validation_{k}": v for k, v in (validation or _NO_VALIDATION).to_dict().items()},
        **{f"held_out_{k}": v for k, v in (held_out or _NO_HELD_OUT).to_dict().items()},
        "fit_epochs_run": fit.epochs_run if fit else None,
        "fit_best_epoch": fit.best_epoch if fit else None,
        "fit_stopped_early": bool(fit.stopped_early) if fit else None,
        "fit_seed": fit.seed if fit else None,
        "fit_notes": list(fit.notes) if fit else None,
        "model_version": provenance.model_version,
        "training_stats": provenance.training_stats,
        "legacy": dict(provenance.legacy),
        **{f"trained_{k}": v for k, v in (provenance.trained_on or TrainedOn()).to_dict().items()},
    }


_NO_SOURCE = TrainingSource(None, None, None, None, None, None, None)
_NO_VALIDATION = ValidationSet(None, None, None)
_NO_HELD_OUT = HeldOut(None, None)
# The ``training_provenance`` columns in the order of :func:`provenance_to_row` (a test checks it).
PROVENANCE_COLUMNS = (
    "split_units",
    "split_seed",
    "val_fraction",
    "test_fraction",
    "source_path",
    "source_rul_path",
    "source_unit_col",
    "source_time_col",
    "source_format",
    "source_data_hash",
    "source_units",
    "validation_split",
    "validation_units",
    "validation_data_hash",
    "held_out_split",
    "held_out_frame_hash",
    "fit_epochs_run",
    "fit_best_epoch",
    "fit_stopped_early",
    "fit_seed",
    "fit_notes",
    "model_version",
    "training_stats",
    "legacy",
    "trained_executor",
    "trained_host",
    "trained_worker",
)
PROVENANCE_JSON_COLUMNS = ("split_units", "fit_notes", "training_stats", "legacy")


def _decoded(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def provenance_from_columns(values: tuple) -> TrainingProvenance:
    """The record for raw :data:`PROVENANCE_COLUMNS` values (JSON still encoded; all NULL when the
    version has no provenance row). A part whose columns are all NULL was not recorded.

    Unpacked by position and decoded only where set: listing calls this for every row of a page.
    """
    (
        units, seed, val_fraction, test_fraction,
        path, rul_path, unit_col, time_col, source_format, source_hash, source_units,
        validation_split, validation_units, validation_hash,
        held_out_split, frame_hash,
        epochs_run, best_epoch, stopped_early, fit_seed, notes,
        model_version, training_stats, legacy,
        trained_executor, trained_host, trained_worker,
    ) = values  # fmt: skip
    trained_on = (trained_executor, trained_host, trained_worker)
    split = None
    if units is not None:
        lists = json.loads(units)
        split = UnitSplit(
            train=tuple(lists.get("train") or ()),
            val=tuple(lists.get("val") or ()),
            test=tuple(lists.get("test") or ()),
            seed=int(seed or 0),
            val_fraction=float(val_fraction or 0.0),
            test_fraction=float(test_fraction or 0.0),
        )
    source = (path, rul_path, unit_col, time_col, source_format, source_hash, source_units)
    validation = (validation_split, validation_units, validation_hash)
    return TrainingProvenance(
        split=split,
        source=TrainingSource(*source) if source != _ALL_NONE[:7] else None,
        validation=ValidationSet(*validation) if validation != _ALL_NONE[:3] else None,
        held_out=HeldOut(held_out_split, frame_hash)
        if (held_out_split, frame_hash) != _ALL_NONE[:2]
        else None,
        fit=(
            FitSummary(epochs_run, best_epoch, bool(stopped_early), fit_seed, tuple(_decoded(notes) or ()))
            if stopped_early is not None
            else None
        ),
        model_version=model_version,
        training_stats=_decoded(training_stats),
        legacy=json.loads(legacy) if legacy not in (None, "{}") else {},
        trained_on=TrainedOn(*trained_on) if trained_on != _ALL_NONE[:3] else None,
    )


_ALL_NONE = (None,) * 7


# -- datasets, runs, labels, KPI history, status ----------------------------------------------------
@dataclass(frozen=True)
class DatasetRecord:
    """A stored dataset lineage with its registry id."""

    id: int
    lineage: DataLineage
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_id": self.id, **self.lineage.to_dict()}


@dataclass(frozen=True)
class RunRecord:
    """One training attempt; ``pid``/``host`` name the process that owned it."""

    id: int
    plugin: str
    target: str
    config: dict
    dataset_id: int | None
    status: str
    message: str
    epochs_done: int
    started: str
    finished: str | None
    pid: int | None
    host: str | None
    os_user: str | None = None  # the OS account that ran it (schema 5; None on older runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plugin": self.plugin,
            "target": self.target,
            "config": self.config,
            "dataset_id": self.dataset_id,
            "status": self.status,
            "message": self.message,
            "epochs_done": self.epochs_done,
            "started": self.started,
            "finished": self.finished,
            "pid": self.pid,
            "host": self.host,
            "os_user": self.os_user,
        }


@dataclass(frozen=True)
class LabelRecord:
    """A user's feedback label on a time range of one unit."""

    id: int
    version_id: int
    unit: Any
    start: Any
    end: Any
    label: str
    note: str
    created: str
    data_key: str | None  # the data the range is on; None on labels from schema 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version_id": self.version_id,
            "unit": self.unit,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "note": self.note,
            "created": self.created,
            "data_key": self.data_key,
        }


@dataclass(frozen=True)
class MetricPoint:
    """One entry of a version's KPI history (``validation``, ``detection``, ``drift``, ...)."""

    id: int
    kind: str
    metrics: dict
    data_hash: str | None
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "metrics": self.metrics,
            "data_hash": self.data_hash,
            "created": self.created,
        }


@dataclass(frozen=True)
class StatusRow:
    """One line of the training-status overview: a (plugin, target) and its newest versions."""

    plugin: str
    target: str
    versions: int
    latest_id: int | None
    latest_version: int | None
    latest_status: str | None
    latest_stage: str | None
    validated: bool
    production_id: int | None
    production_version: int | None
    production_validated: bool | None
    last_trained: str | None
    age_seconds: float | None
    age: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "target": self.target,
            "versions": self.versions,
            "latest_id": self.latest_id,
            "latest_version": self.latest_version,
            "latest_status": self.latest_status,
            "latest_stage": self.latest_stage,
            "validated": self.validated,
            "production_id": self.production_id,
            "production_version": self.production_version,
            "production_validated": self.production_validated,
            "last_trained": self.last_trained,
            "age_seconds": self.age_seconds,
            "age": self.age,
        }


# -- versions ---------------------------------------------------------------------------------------
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
    provenance: TrainingProvenance = field(default_factory=TrainingProvenance)
    os_user: str | None = None  # who registered it (OS account; None on versions before schema 5)
    host: str | None = None  # on which machine

    @property
    def made_by(self) -> str:
        """``user@host`` for tables (``-`` when the version predates schema 5)."""
        if not self.os_user and not self.host:
            return "-"
        return f"{self.os_user or '?'}@{self.host or '?'}"

    @property
    def label(self) -> str:
        """How a user names this version everywhere (CLI, jobs, plots, status bar, reports):
        ``telemanom/s_11 v3 (#17)`` — plugin/target, the version number within them, the registry id."""
        return f"{self.plugin}/{self.target} v{self.version} (#{self.id})"

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
            "os_user": self.os_user,
            "host": self.host,
            "lineage": dict(self.lineage),
            # the provenance keeps the JSON name of the column it replaced, for scripts reading it
            "extra": self.provenance.to_dict(),
        }

    @classmethod
    def from_columns(
        cls, values: tuple, lineage: dict, artifact_root: Path, provenance: TrainingProvenance
    ) -> VersionRecord:
        """Build from one raw row of :data:`RECORD_COLUMN_NAMES` (JSON still encoded) and its lineage.

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
            provenance=provenance,
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
