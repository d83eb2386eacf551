"""Data layer: readers, validation, preprocessing, splits and lineage. Free of Qt and torch."""

from turbofan_desktop.data.dataset import UNIT, DataLineage, Dataset, canonical_hash, file_sha256
from turbofan_desktop.data.features import add_features
from turbofan_desktop.data.preprocess import (
    RegimeModel,
    RegimeNormalizer,
    SensorScaler,
    detect_constant_sensors,
    detect_regimes,
    fill_missing,
    missing_report,
)
from turbofan_desktop.data.readers import BUILTIN_READERS, ReaderSpec, choose_reader, read_dataset
from turbofan_desktop.data.split import UnitSplit, split_units
from turbofan_desktop.data.validation import require_window

__all__ = [
    "BUILTIN_READERS",
    "UNIT",
    "DataLineage",
    "Dataset",
    "ReaderSpec",
    "RegimeModel",
    "RegimeNormalizer",
    "SensorScaler",
    "UnitSplit",
    "add_features",
    "canonical_hash",
    "choose_reader",
    "detect_constant_sensors",
    "detect_regimes",
    "file_sha256",
    "fill_missing",
    "missing_report",
    "read_dataset",
    "require_window",
    "split_units",
]
