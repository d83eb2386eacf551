"""Training status across equipment: for each (target, plugin), what is trained, validated, in use."""

from __future__ import annotations

from typing import Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.plugins.contract import ALL_TARGETS


def _untrained_row(plugin: str, target: str) -> dict[str, Any]:
    return {
        "plugin": plugin,
        "target": target,
        "versions": 0,
        "latest_id": None,
        "latest_version": None,
        "latest_status": None,
        "latest_stage": None,
        "validated": False,
        "production_id": None,
        "production_version": None,
        "production_validated": None,
        "last_trained": None,
        "age_seconds": None,
        "age": "-",
    }


def training_status(ws, dataset: Dataset | None = None) -> list[dict[str, Any]]:
    """One row per (target, plugin) that has versions, as the registry reports it (latest and production
    version, validated, last trained, age) — plus, when ``dataset`` is given, an empty row for every
    target a loaded model could still be trained on, so the GUI shows the gaps too.
    Sorted by target (the all-sensor target ``*`` last), then plugin.
    """
    rows = [dict(row) for row in ws.registry.status()]
    if dataset is not None:
        present = {(row["plugin"], row["target"]) for row in rows}
        for name, spec in ws.plugins.models().items():
            targets = dataset.informative_sensors if spec.per_target else [ALL_TARGETS]
            rows.extend(_untrained_row(name, t) for t in targets if (name, t) not in present)
    rows.sort(key=lambda row: (row["target"] == ALL_TARGETS, str(row["target"]), str(row["plugin"])))
    return rows


__all__ = ["training_status"]
