"""Data layer: readers, validation, preprocessing, splits and lineage. Free of Qt and torch.

The names below load their module on first use (PEP 562), so importing one light module of the
package — the registry reads :mod:`.lineage` and :mod:`.split` — does not load pandas and the readers.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "UNIT": "dataset",
    "DataLineage": "lineage",
    "Dataset": "dataset",
    "canonical_hash": "dataset",
    "file_sha256": "dataset",
    "add_features": "features",
    "RegimeModel": "preprocess",
    "RegimeNormalizer": "preprocess",
    "SensorScaler": "preprocess",
    "detect_constant_sensors": "preprocess",
    "detect_regimes": "preprocess",
    "fill_missing": "preprocess",
    "missing_report": "preprocess",
    "BUILTIN_READERS": "readers",
    "ReaderSpec": "readers",
    "choose_reader": "readers",
    "read_dataset": "readers",
    "UnitSplit": "split",
    "split_units": "split",
    "require_window": "validation",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
