"""Helpers shared by the registry tests (a module of its own: test folders have no __init__.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from turbofan_desktop.data.dataset import DataLineage
from turbofan_desktop.data.split import UnitSplit
from turbofan_desktop.registry import (
    FitSummary,
    HeldOut,
    TrainingProvenance,
    TrainingSource,
    ValidationSet,
)


def make_lineage(tag: str = "a", source: str = "train_FD001.txt") -> DataLineage:
    return DataLineage(
        data_hash=f"hash-{tag}",
        source=source,
        file_sha256=f"file-{tag}",
        format="cmapss",
        units=3,
        rows=120,
        time_kind="cycle",
        time_start=1,
        time_end=45,
        columns=("unit", "cycle", "sensor_2"),
        unit_ids=(1, 2, 3),
        preprocessing=({"step": "drop_constant", "columns": ["sensor_1"]},),
    )


def artifact_writer(payload: bytes = b"state-dict-bytes"):
    def write(folder: Path) -> None:
        (folder / "weights.pt").write_bytes(payload)
        (folder / "config.json").write_text(json.dumps({"window": 10}), encoding="utf-8")

    return write


def make_provenance() -> TrainingProvenance:
    """A provenance with every part recorded, as training writes it."""
    return TrainingProvenance(
        split=UnitSplit(train=(1, 2), val=(3,), test=(), seed=7, val_fraction=0.2, test_fraction=0.0),
        source=TrainingSource(
            path="/data/train_FD001.txt",
            rul_path=None,
            unit_col=None,
            time_col=None,
            format="cmapss",
            data_hash="hash-src",
            units=3,
        ),
        validation=ValidationSet(split="val", units=1, data_hash="hash-val"),
        held_out=HeldOut(split="val", frame_hash="hash-held"),
        fit=FitSummary(epochs_run=4, best_epoch=3, stopped_early=True, seed=7, notes=("stopped at epoch 4",)),
        model_version="1.2.0",
    )


# -- damaging stored artifacts the same way on both backends ----------------------------------------------
def change_artifact(registry, record, change) -> None:
    """Apply ``change(folder)`` to a version's stored files, as damage would: in place in a folder store;
    in a database store to the blob itself (and the local cache copy is dropped, so loading reads it)."""
    from turbofan_desktop.registry.artifacts import pack_folder, unpack_folder

    if not registry.is_server:
        change(Path(record.artifact_path))
        return
    name = Path(record.artifact_path).name
    blob = registry.db.execute_sql("SELECT data FROM artifact_blobs WHERE sha256 = %s", (name,)).fetchone()[0]
    with tempfile.TemporaryDirectory() as scratch:
        unpack_folder(bytes(blob), Path(scratch))
        change(Path(scratch))
        packed = pack_folder(Path(scratch))
    registry.db.execute_sql("UPDATE artifact_blobs SET data = %s WHERE sha256 = %s", (packed, name))
    shutil.rmtree(record.artifact_path, ignore_errors=True)


def remove_artifact(registry, record) -> None:
    """Lose a version's artifact (folder, or blob and cache copy) behind the registry's back."""
    if registry.is_server:
        name = Path(record.artifact_path).name
        registry.db.execute_sql("DELETE FROM artifact_blobs WHERE sha256 = %s", (name,))
    shutil.rmtree(record.artifact_path, ignore_errors=True)


def plant_orphan(registry, name: str = "0123456789abcdef") -> Path:
    """An artifact no version names (as an interrupted registration leaves); returns where repair puts it."""
    from turbofan_desktop.registry.artifacts import pack_folder

    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "weights.pt").write_bytes(b"left behind")
        if registry.is_server:
            registry.db.execute_sql(
                "INSERT INTO artifact_blobs (sha256, size, data, created) VALUES (%s, 1, %s, 'now')",
                (name, pack_folder(Path(scratch))),
            )
            return registry.artifacts.quarantine / f"{name}.tar"
    orphan = registry.artifacts.root / name
    orphan.mkdir()
    (orphan / "weights.pt").write_bytes(b"left behind")
    return registry.artifacts.quarantine / name / "weights.pt"
