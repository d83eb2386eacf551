"""Data layer: readers, validation, preprocessing, splits and lineage. Free of Qt and torch."""

from turbofan_desktop.data.dataset import UNIT, DataLineage, Dataset, canonical_hash, file_sha256

__all__ = ["UNIT", "DataLineage", "Dataset", "canonical_hash", "file_sha256"]
