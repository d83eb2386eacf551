"""Helpers shared by the registry tests (a module of its own: test folders have no __init__.py)."""

from __future__ import annotations

import json
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
