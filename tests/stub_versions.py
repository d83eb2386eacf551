"""Model versions registered without training, for tests of what surrounds a model (drift, feedback,
panels): a stand-in artifact, a tiny lineage, and every registry field at a neutral value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turbofan_desktop.data.dataset import DataLineage

STUB_LINEAGE = DataLineage(
    data_hash="h", source="t.txt", file_sha256=None, format="test", units=1, rows=10,
    time_kind="cycle", time_start=1, time_end=10,
)  # fmt: skip


def stub_weights(folder: Path) -> None:
    (folder / "weights.bin").write_bytes(b"stand-in")


def register_stub_version(
    registry: Any,
    *,
    plugin: str = "fake",
    target: str = "s_2",
    lineage: DataLineage = STUB_LINEAGE,
    write_artifact=stub_weights,
    **fields: Any,
) -> Any:
    """Register a version of ``plugin``/``target`` trained on ``lineage``; ``fields`` override the
    other ``register_version`` arguments (``provenance``, ``metrics`` ...). Returns the version record."""
    values: dict[str, Any] = {
        "run_id": None,
        "plugin": plugin,
        "target": target,
        "dataset_id": registry.record_dataset(lineage),
        "config": {},
        "history": [],
        "metrics": {},
        "validation_performed": False,
        "validation_metrics": None,
        "validation_data_hash": None,
        "training_seconds": 0.0,
        "library_versions": {},
        "write_artifact": write_artifact,
    }
    values.update(fields)
    return registry.register_version(**values)
