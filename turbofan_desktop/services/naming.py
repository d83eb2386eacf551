"""How a user reads a version and its numbers: one name, what it was trained on, what each metric
was computed on.

* :func:`version_name` — ``transformer/* v2 (#5)``: plugin/target, the version number within them and
  the registry id, the same in the CLI, jobs, plots, the status bar and reports.
* :func:`trained_on` — the training file's name and a short hash (of the file, else of the values).
* :func:`data_description` — what a stored metric was computed on: the version's own held-out units
  of its training file, or a named file with its short hash (validation records the lineage of the
  data it scored, so the hash leads back to the file).
* :func:`key_figure` — the metric a user compares versions by, with the data it was computed on.

Pure Python: no Qt, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

SHORT_HASH = 8
HELD_OUT, FILE, UNKNOWN = "held_out", "file", "unknown"
#: preferred "key metric" names, best first; the first present in a version's metrics is shown
KEY_METRICS = ("rul_rmse", "f1", "f0_5", "prediction_mse", "forecast_mase_h20", "rmse", "val_loss", "mae")


def natural_key(text: Any) -> tuple:
    """Sort key that orders numbers inside names by value: s_2 before s_11, h5 before h20."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text)))


def version_name(record: Any) -> str:
    """``plugin/target vN (#id)`` for a registry record (the record's own ``label``)."""
    return str(record.label)


def version_name_of(ws: Workspace, version_id: int) -> str:
    """:func:`version_name` of a registry id; ``version N`` when there is no such version (the
    sentence that says so comes from wherever the id is used)."""
    try:
        return version_name(ws.registry.get(int(version_id)))
    except Exception:  # noqa: BLE001 - a name for a message must never raise
        return f"version {version_id}"


def _extra(record: Any) -> dict[str, Any]:
    provenance = getattr(record, "provenance", None)  # typed provenance, where the registry has it
    if provenance is not None and hasattr(provenance, "to_dict"):
        return dict(provenance.to_dict())
    return dict(getattr(record, "extra", None) or {})


def _lineage(record: Any) -> dict[str, Any]:
    lineage = getattr(record, "lineage", None) or {}
    return dict(lineage.to_dict()) if hasattr(lineage, "to_dict") else dict(lineage)


def _short(value: str | None) -> str:
    return str(value or "")[:SHORT_HASH]


@dataclass(frozen=True)
class DataDescription:
    """What some numbers were computed on: ``kind`` (held_out / file / unknown), a short ``text``
    for a table cell, the file name and short hash when known, and the content hash."""

    kind: str
    text: str
    file: str | None = None
    short_hash: str | None = None
    data_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "file": self.file,
            "short_hash": self.short_hash,
            "data_hash": self.data_hash,
        }


def trained_on(record: Any) -> DataDescription:
    """The training file's name and short hash (of the file's bytes when read from a file)."""
    extra, lineage = _extra(record), _lineage(record)
    source = dict(extra.get("source") or {})
    path = source.get("path") or lineage.get("source") or ""
    name = Path(str(path)).name if path else "data in memory"
    short = _short(lineage.get("file_sha256") or source.get("data_hash") or lineage.get("data_hash"))
    text = f"{name} ({short})" if short else name
    return DataDescription(FILE, text, name, short or None, lineage.get("data_hash"))


def _held_out_hashes(record: Any) -> set[str]:
    extra = _extra(record)
    hashes = {dict(extra.get("validation") or {}).get("data_hash")}
    return {h for h in hashes if h}


def _is_held_out_part(lineage: dict[str, Any], training_source: str | None) -> bool:
    """Data cut from the version's training file by its split (or as its held-out units)."""
    if training_source and str(lineage.get("source")) != str(training_source):
        return False
    for step in lineage.get("preprocessing") or ():
        note = str(dict(step).get("note") or "")
        if dict(step).get("step") == "subset" and (
            "val split" in note or "test split" in note or "held-out" in note
        ):
            return True
    return False


def data_description(
    ws: Workspace, record: Any, data_hash: str | None, *, found: dict | None = None
) -> DataDescription:
    """What a metric of ``record`` stored with ``data_hash`` was computed on (``found`` caches the
    registry's lineage lookups across calls: a table of many versions asks once per data)."""
    if not data_hash:
        return DataDescription(UNKNOWN, "data not recorded")
    training = trained_on(record)
    extra = _extra(record)
    source_path = dict(extra.get("source") or {}).get("path") or _lineage(record).get("source")
    if data_hash in _held_out_hashes(record):
        return DataDescription(
            HELD_OUT, f"held-out units of {training.file}", training.file, training.short_hash, data_hash
        )
    cache = found if found is not None else {}
    if data_hash not in cache:
        finder = getattr(ws.registry, "find_dataset", None)
        cache[data_hash] = finder(data_hash) if callable(finder) else None
    found = cache[data_hash]
    if found is None:
        return DataDescription(UNKNOWN, f"data {_short(data_hash)}", None, _short(data_hash), data_hash)
    found = dict(found.to_dict() if hasattr(found, "to_dict") else found)
    if _is_held_out_part(found, source_path):
        return DataDescription(
            HELD_OUT, f"held-out units of {training.file}", training.file, training.short_hash, data_hash
        )
    name = Path(str(found.get("source") or "")).name or "data in memory"
    short = _short(found.get("file_sha256") or data_hash)
    return DataDescription(FILE, f"{name} ({short})", name, short, data_hash)


def key_metric_of(metrics: Mapping[str, object] | None) -> tuple[str, float] | None:
    """The key metric among ``metrics``: a preferred name first, then an RMSE/F1, then any number."""
    if not metrics:
        return None
    numeric = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    for name in KEY_METRICS:
        if name in numeric:
            return name, float(numeric[name])
    for name in sorted(numeric):
        if name.endswith(("_rmse", "_f1", "rmse")):
            return name, float(numeric[name])
    if numeric:
        name = sorted(numeric)[0]
        return name, float(numeric[name])
    return None


def key_metric(record: Any) -> tuple[str, float] | None:
    """The metric a user compares versions by: of the latest validation first, then of training."""
    for metrics in (getattr(record, "validation_metrics", None), getattr(record, "metrics", None)):
        found = key_metric_of(metrics)
        if found is not None:
            return found
    return None


def key_figure(ws: Workspace, record: Any, *, found: dict | None = None) -> dict[str, Any] | None:
    """``{"name", "value", "data"}``: the key metric and what it was computed on (the latest
    validation's data; training metrics were computed on the held-out units)."""
    metric = key_metric(record)
    if metric is None:
        return None
    name, value = metric
    from_validation = name in dict(getattr(record, "validation_metrics", None) or {})
    data_hash = getattr(record, "validation_data_hash", None) if from_validation else None
    if data_hash:
        data = data_description(ws, record, data_hash, found=found)
    else:
        data = DataDescription(HELD_OUT, f"held-out units of {trained_on(record).file}")
    return {"name": name, "value": value, "data": data}


def overview(ws: Workspace, record: Any) -> dict[str, Any]:
    """What a versions table shows beside the record: its name, what it was trained on and its key
    metric with the data that metric was computed on (JSON-able)."""
    figure = key_figure(ws, record)
    if figure is not None:
        figure = {**figure, "data": figure["data"].to_dict()}
    return {"name": version_name(record), "trained_on": trained_on(record).to_dict(), "key_metric": figure}


def history_data(ws: Workspace, record: Any, entries: list[Any]) -> list[str]:
    """For each KPI / drift entry of ``record``, what it was computed on (same order)."""
    described: dict[str | None, str] = {}
    out = []
    for entry in entries:
        data_hash = entry.get("data_hash") if isinstance(entry, dict) else getattr(entry, "data_hash", None)
        if data_hash not in described:
            described[data_hash] = data_description(ws, record, data_hash).text
        out.append(described[data_hash])
    return out


def rul_model_for(ws: Workspace, dataset: Any) -> dict[str, Any] | None:
    """Which version answers remaining-useful-life questions about ``dataset`` by default (the one
    the fleet view uses: the production version trained on this file's fleet, else the newest) and
    why, as ``{"version_id", "name", "production_match", "text"}``; None when no model offers RUL."""
    from turbofan_desktop.errors import TurbofanError
    from turbofan_desktop.services import fleet

    try:
        version_id = fleet.default_rul_version(ws, dataset)
        record = ws.registry.get(version_id)
    except TurbofanError:
        return None
    lineage = _lineage(record)
    key = fleet._pairing_key(getattr(dataset, "source", None) or getattr(dataset, "name", None))
    same_fleet = lineage.get("data_hash") == getattr(dataset, "data_hash", None) or (
        key is not None and fleet._pairing_key(lineage.get("source")) == key
    )
    match = record.stage == "production" and same_fleet
    name = version_name(record)
    trained = trained_on(record).file
    if match:
        text = f"RUL by {name}: production, trained on {trained}"
    else:
        text = f"RUL by {name} (newest; no production version is trained on this file's fleet)"
    return {"version_id": int(record.id), "name": name, "production_match": match, "text": text}


__all__ = [
    "FILE",
    "HELD_OUT",
    "KEY_METRICS",
    "UNKNOWN",
    "DataDescription",
    "data_description",
    "key_figure",
    "history_data",
    "key_metric",
    "key_metric_of",
    "natural_key",
    "overview",
    "rul_model_for",
    "trained_on",
    "version_name",
    "version_name_of",
]
