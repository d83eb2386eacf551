"""A dataset's lineage (DESIGN.md section 4): what the registry stores about the data a version used.

Kept apart from :mod:`.dataset` so the registry can read and write lineage without importing pandas:
the window's first paint imports the services and the registry, never the data stack.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from turbofan_desktop.errors import ConfigError


def jsonable(value: Any) -> Any:
    """A plain JSON value for numpy scalars and pandas timestamps; anything else as it is."""
    if isinstance(value, np.generic):
        return value.item()
    pandas = sys.modules.get("pandas")  # a pandas Timestamp can only exist once pandas is loaded
    if pandas is not None and isinstance(value, pandas.Timestamp):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class DataLineage:
    """Where a dataset came from and what it contains, as stored in the registry.

    ``data_hash`` is the SHA-256 of a canonical encoding of the parsed values (see
    :func:`canonical_hash`): the same numbers give the same hash whatever the file's layout.
    """

    data_hash: str
    source: str
    file_sha256: str | None
    format: str
    units: int
    rows: int
    time_kind: str  # "cycle" | "timestamp" | "step"
    time_start: Any  # int for cycles/steps, ISO-8601 string for timestamps
    time_end: Any
    columns: tuple[str, ...] = ()
    unit_ids: tuple[Any, ...] = ()
    preprocessing: tuple[dict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_hash": self.data_hash,
            "source": self.source,
            "file_sha256": self.file_sha256,
            "format": self.format,
            "units": self.units,
            "rows": self.rows,
            "num_samples": self.rows,
            "time_kind": self.time_kind,
            "time_start": self.time_start,
            "time_end": self.time_end,
            "columns": list(self.columns),
            "unit_ids": [jsonable(u) for u in self.unit_ids],
            "preprocessing": [dict(p) for p in self.preprocessing],
        }

    @classmethod
    def from_dict(cls, data: Any) -> DataLineage:
        """A lineage from a mapping with :meth:`to_dict`'s keys (``num_samples`` and unknown keys are
        ignored); the five facts a lineage cannot do without must be there, the rest has defaults."""
        data = dict(data)
        missing = [k for k in REQUIRED_LINEAGE_FIELDS if data.get(k) is None]
        if missing:
            raise ConfigError(f"The dataset lineage lacks {', '.join(missing)}.")
        return cls(
            data_hash=str(data["data_hash"]),
            source=str(data["source"]),
            file_sha256=data.get("file_sha256"),
            format=str(data["format"]),
            units=int(data["units"]),
            rows=int(data["rows"]),
            time_kind=data.get("time_kind") or "step",
            time_start=data.get("time_start"),
            time_end=data.get("time_end"),
            columns=tuple(data.get("columns") or ()),
            unit_ids=tuple(jsonable(u) for u in data.get("unit_ids") or ()),
            preprocessing=tuple(dict(p) for p in data.get("preprocessing") or ()),
        )


# The lineage's key set, written once: the registry's ``datasets`` table has a column of each name.
LINEAGE_FIELDS = tuple(f.name for f in fields(DataLineage))
REQUIRED_LINEAGE_FIELDS = ("data_hash", "source", "format", "units", "rows")
