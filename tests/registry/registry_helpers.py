"""Helpers shared by the registry tests (a module of its own: test folders have no __init__.py)."""

from __future__ import annotations

import json
from pathlib import Path

from turbofan_desktop.data.dataset import DataLineage


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
