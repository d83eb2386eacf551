"""Comparing versions: metrics on the same data side by side, and how the versions differ.

Metrics are only put side by side when they were computed on the same data (content hash). With a
data file, every version is scored on it — unless it already was (a validation with that file's hash
is in its history), in which case the stored metrics are used — and the file's applicability verdict
is given per version. Without a file, the newest data every version was validated on is used; when
there is none, the comparison says so and shows no metrics rather than numbers of different data.

Besides the metrics: what differs in the config, and in the lineage (training file, its hash, units,
rows, split, plugin and library versions). Pure Python: no Qt; a model is loaded only to score it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.errors import Cancelled, ConfigError, TurbofanError
from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services import naming
from turbofan_desktop.services._common import stop_checker
from turbofan_desktop.services.applicability import check_applicability
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.monitoring import VALIDATION_KIND, kpi_history, metric_direction

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace


@dataclass
class Comparison:
    """Versions side by side. ``metrics`` rows: ``{"metric", "direction", "values": {id: value},
    "best": [ids]}``; difference rows: ``{"key", "values": {id: value}}`` (only keys that differ)."""

    versions: list[dict[str, Any]]
    data: dict[str, Any] | None  # what the metrics were computed on (None: no common data)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    config_differences: list[dict[str, Any]] = field(default_factory=list)
    lineage_differences: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def keyed(values: dict[int, Any]) -> dict[str, Any]:
            return {str(k): v for k, v in values.items()}

        return {
            "versions": self.versions,
            "data": self.data,
            "metrics": [{**row, "values": keyed(row["values"])} for row in self.metrics],
            "config_differences": [
                {**row, "values": keyed(row["values"])} for row in self.config_differences
            ],
            "lineage_differences": [
                {**row, "values": keyed(row["values"])} for row in self.lineage_differences
            ],
            "notes": list(self.notes),
        }


def compare_versions(
    ws: Workspace,
    version_ids: list[int],
    *,
    data_path: Path | str | None = None,
    rul_path: Path | str | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Comparison:
    """Compare two or more versions (see the module docstring); unknown ids raise NotFoundError."""
    ids = list(dict.fromkeys(int(v) for v in version_ids))
    if len(ids) < 2:
        raise ConfigError("Comparing needs two or more different versions.")
    should_stop = stop_checker(should_stop)
    report = progress or (lambda event: None)
    records = [ws.registry.get(v) for v in ids]
    versions = [
        {
            "id": int(r.id),
            "name": naming.version_name(r),
            "plugin": r.plugin,
            "target": r.target,
            "stage": r.stage,
            "trained_on": naming.trained_on(r).to_dict(),
        }
        for r in records
    ]
    comparison = Comparison(versions=versions, data=None)
    if data_path is not None:
        _scored_on_file(ws, records, comparison, data_path, rul_path, report, should_stop)
    else:
        _scored_on_common_data(ws, records, comparison)
    comparison.config_differences = _differences({int(r.id): dict(r.config or {}) for r in records})
    comparison.lineage_differences = _differences({int(r.id): _lineage_facts(r) for r in records})
    return comparison


# -- metrics ---------------------------------------------------------------------------------------------
def _validations(ws: Workspace, version_id: int) -> list[Any]:
    return [e for e in kpi_history(ws, version_id) if _field(e, "kind") == VALIDATION_KIND]


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, dict) else getattr(entry, name, None)


def _stored_on(ws: Workspace, version_id: int, data_hash: str) -> dict[str, float] | None:
    """The newest stored validation metrics of the version on data with this hash, or None."""
    for entry in reversed(_validations(ws, version_id)):
        if _field(entry, "data_hash") == data_hash:
            return dict(_field(entry, "metrics") or {})
    return None


def _scored_on_file(ws, records, comparison, data_path, rul_path, report, should_stop) -> None:
    from turbofan_desktop.services.validation import validate_one

    data = load_dataset(ws, data_path, rul_path=rul_path)
    data_hash = data.data_hash
    name = data.source.name if data.source else (data.name or "the data")
    short = (data.file_sha256 or data_hash)[: naming.SHORT_HASH]
    comparison.data = {"kind": naming.FILE, "text": f"{name} ({short})", "data_hash": data_hash}
    values: dict[int, dict[str, float]] = {}
    for index, record in enumerate(records):
        if should_stop():
            raise Cancelled()
        entry = next(v for v in comparison.versions if v["id"] == int(record.id))
        entry["applicability"] = check_applicability(ws, record, data).to_dict()
        stored = _stored_on(ws, int(record.id), data_hash)
        if stored is not None:
            values[int(record.id)], entry["scored"] = stored, "stored"
            continue

        def step(event: ProgressEvent, index: int = index) -> None:
            fraction = (index + min(max(float(event.fraction), 0.0), 1.0)) / len(records)
            report(ProgressEvent(stage="compare", fraction=fraction, message=event.message))

        try:
            values[int(record.id)], _ = validate_one(ws, record, data, step, should_stop)
            entry["scored"] = "now"
        except TurbofanError as exc:
            entry["scored"] = "failed"
            comparison.notes.append(f"{naming.version_name(record)} could not be scored on {name}: {exc}")
    comparison.metrics = _metric_rows(values)


def _scored_on_common_data(ws: Workspace, records: list[Any], comparison: Comparison) -> None:
    """The newest data every version was validated on, and each version's newest metrics on it."""
    per_version = {int(r.id): _validations(ws, int(r.id)) for r in records}
    hashes = [
        {_field(e, "data_hash") for e in entries if _field(e, "data_hash")}
        for entries in per_version.values()
    ]
    common = set.intersection(*hashes) if hashes else set()
    if not common:
        comparison.notes.append(
            "These versions were never validated on the same data, so their metrics are not put side by "
            "side; compare them on a file (--data FILE) to score them all on it."
        )
        return

    def newest(data_hash: str) -> str:
        return max(
            str(_field(e, "created") or "")
            for entries in per_version.values()
            for e in entries
            if _field(e, "data_hash") == data_hash
        )

    chosen = max(common, key=newest)
    described = naming.data_description(ws, records[0], chosen)
    if described.kind == naming.HELD_OUT:
        described = naming.DataDescription(
            described.kind,
            f"the same held-out units of {described.file}",
            described.file,
            described.short_hash,
            chosen,
        )
    comparison.data = described.to_dict()
    values = {int(r.id): _stored_on(ws, int(r.id), chosen) or {} for r in records}
    comparison.metrics = _metric_rows(values)


def _metric_rows(values: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    names = sorted({name for metrics in values.values() for name in metrics}, key=naming.natural_key)
    rows = []
    for name in names:
        row_values = {vid: metrics.get(name) for vid, metrics in values.items()}
        direction = metric_direction(name)
        numbers = {
            v: x for v, x in row_values.items() if isinstance(x, int | float) and not isinstance(x, bool)
        }
        best: list[int] = []
        if direction and len(numbers) >= 2:
            target = (min if direction < 0 else max)(numbers.values())
            best = [v for v, x in numbers.items() if x == target]
        rows.append({"metric": name, "direction": direction, "values": row_values, "best": best})
    return rows


# -- differences -----------------------------------------------------------------------------------------
def _lineage_facts(record: Any) -> dict[str, Any]:
    lineage = naming._lineage(record)
    extra = naming._extra(record)
    split = dict(extra.get("split") or {})
    facts = {
        "trained on": naming.trained_on(record).text,
        "training data hash": str(lineage.get("data_hash") or "")[:16],
        "training units": lineage.get("units"),
        "training rows": lineage.get("rows"),
        "split seed": split.get("seed", extra.get("seed")),
        "validation share": split.get("val_fraction", extra.get("val_fraction")),
        "model version": extra.get("model_version"),
        "training seconds": round(float(getattr(record, "training_seconds", 0.0) or 0.0), 1),
    }
    for name, version in dict(getattr(record, "library_versions", None) or {}).items():
        facts[f"library {name}"] = version
    return facts


def _differences(per_version: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    keys = sorted({k for values in per_version.values() for k in values}, key=naming.natural_key)
    rows = []
    for key in keys:
        values = {vid: values.get(key) for vid, values in per_version.items()}
        if len({repr(v) for v in values.values()}) > 1:
            rows.append({"key": key, "values": values})
    return rows


__all__ = ["Comparison", "compare_versions"]
