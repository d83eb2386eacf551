"""The in-memory dataset: units (engines) with their own time axis, sensors and operating settings.

A :class:`Dataset` holds one long frame sorted by ``(unit, time)``. Per-unit frames are views into it.
Its :class:`DataLineage` is computed from the parsed values, never from the clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.lineage import LINEAGE_FIELDS, REQUIRED_LINEAGE_FIELDS, DataLineage, jsonable

UNIT = "unit"

# The lineage lives in .lineage (no pandas there); it is re-exported here for the data layer's users.
__all__ = [
    "LINEAGE_FIELDS",
    "REQUIRED_LINEAGE_FIELDS",
    "UNIT",
    "DataLineage",
    "Dataset",
    "canonical_hash",
    "file_sha256",
    "jsonable",
]


def canonical_hash(frame: pd.DataFrame, preprocessing: Iterable[dict] = ()) -> str:
    """SHA-256 of the values: column names, then each column as little-endian float64/int64 bytes.

    Whitespace, number formatting (``1.0`` vs ``1.00``) and file format do not change it; one changed
    value does. Timestamps hash as int64 nanoseconds; text columns as UTF-8 joined by NUL.
    """
    digest = hashlib.sha256()
    digest.update(b"turbofan-desktop/canonical-v1\0")
    for name in frame.columns:
        digest.update(str(name).encode("utf-8") + b"\0")
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            data = column.astype("datetime64[ns]").to_numpy().view("<i8")
        elif pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
            data = column.to_numpy(dtype="<i8")
        elif pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype="<f8")
            # -0.0 and 0.0 are the same number; every NaN is the same missing value
            values = np.where(values == 0.0, 0.0, values)
            data = np.where(np.isnan(values), np.nan, values).astype("<f8")
        else:
            data = np.frombuffer("\0".join(map(str, column.tolist())).encode("utf-8"), dtype=np.uint8)
        digest.update(np.ascontiguousarray(data).tobytes())
    for step in preprocessing:
        digest.update(repr(sorted(step.items())).encode("utf-8"))
    return digest.hexdigest()


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Dataset:
    """Units with their own time axis.

    ``frame`` columns: ``unit``, the time column (``time_col``), the operating settings, the sensors;
    sorted by (unit, time). ``rul`` holds the true remaining useful life at each unit's last row when a
    C-MAPSS test file is paired with its RUL file (indexed by unit).
    """

    frame: pd.DataFrame
    time_col: str
    sensors: list[str]
    settings: list[str]
    format: str
    source: Path | None = None
    name: str = ""
    file_sha256: str | None = None
    rul: pd.Series | None = None
    rul_source: Path | None = None
    constant_sensors: list[str] = field(default_factory=list)
    preprocessing: list[dict] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # The reader's own statement of the time axis ("cycle" | "timestamp" | "step"); None = infer.
    time_axis: str | None = None

    # -- shape ---------------------------------------------------------------------------------
    @property
    def time_kind(self) -> str:
        if self.time_axis:
            return self.time_axis
        if pd.api.types.is_datetime64_any_dtype(self.frame[self.time_col]):
            return "timestamp"
        return "cycle" if self.time_col == "cycle" else "step"

    @property
    def units(self) -> list[Any]:
        return list(pd.unique(self.frame[UNIT]))

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def informative_sensors(self) -> list[str]:
        constant = set(self.constant_sensors)
        return [s for s in self.sensors if s not in constant]

    def unit_frame(self, unit: Any) -> pd.DataFrame:
        return self.frame[self.frame[UNIT] == unit]

    def unit_frame_by_time(self, unit: Any) -> pd.DataFrame:
        """One unit's settings and sensors indexed by its own time axis (cycle, timestamp or step)."""
        return self.unit_frame(unit).set_index(self.time_col)[[*self.settings, *self.sensors]]

    def iter_units(self) -> Iterator[tuple[Any, pd.DataFrame]]:
        yield from self.frame.groupby(UNIT, sort=False)

    def unit_lengths(self) -> pd.Series:
        return self.frame.groupby(UNIT, sort=False).size()

    # -- derived datasets ---------------------------------------------------------------------
    def subset(self, units: Iterable[Any], note: str | None = None) -> Dataset:
        """The same dataset restricted to ``units`` (lineage recomputed from the kept values)."""
        keep = list(units)
        frame = self.frame[self.frame[UNIT].isin(keep)].reset_index(drop=True)
        rul = self.rul[self.rul.index.isin(keep)] if self.rul is not None else None
        steps = list(self.preprocessing)
        if note:
            steps.append({"step": "subset", "note": note, "units": len(keep)})
        return replace(self, frame=frame, rul=rul, preprocessing=steps)

    def with_frame(self, frame: pd.DataFrame, step: dict, **changes: Any) -> Dataset:
        """A copy with a transformed frame and one more recorded preprocessing step."""
        return replace(self, frame=frame, preprocessing=[*self.preprocessing, step], **changes)

    # -- lineage --------------------------------------------------------------------------------
    @property
    def data_hash(self) -> str:
        return canonical_hash(self.frame, self.preprocessing)

    @property
    def lineage(self) -> DataLineage:
        times = self.frame[self.time_col]
        start, end = (times.min(), times.max()) if len(times) else (None, None)
        return DataLineage(
            data_hash=self.data_hash,
            source=str(self.source) if self.source else self.name,
            file_sha256=self.file_sha256,
            format=self.format,
            units=len(self.units),
            rows=self.n_rows,
            time_kind=self.time_kind,
            time_start=jsonable(start),
            time_end=jsonable(end),
            columns=tuple(self.frame.columns),
            unit_ids=tuple(jsonable(u) for u in self.units),
            preprocessing=tuple(self.preprocessing),
        )
