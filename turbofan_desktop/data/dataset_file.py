"""A parsed :class:`Dataset` as one compressed Parquet file that gives back the same data hash.

The registry keeps every dataset a version trained or validated on in this form, and ``datasets
export`` hands out the same file. The table holds the frame's columns as they are; a key-value entry
in the Parquet footer (:data:`METADATA_KEY`) holds the rest of the dataset (sensors, settings, the
time axis, the preprocessing steps the hash covers, the paired RUL values, the column dtypes) and the
data hash itself, so a reader can check that what it rebuilt is what was written. Plain data only:
JSON in the footer, no pickles.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.dataset import Dataset, canonical_hash, jsonable
from turbofan_desktop.data.validation import check_decoded_size
from turbofan_desktop.errors import DataFormatError

METADATA_KEY = "turbofan_desktop.dataset"
FORMAT_VERSION = 1
# zstd (through cramjam, which fastparquet needs anyway): C-MAPSS tables shrink about 5-fold
COMPRESSION = "ZSTD"


def _fastparquet() -> Any:
    with warnings.catch_warnings():
        # fastparquet reads a pandas option that pandas 3 deprecates, once, on import
        warnings.filterwarnings("ignore", message=".*future.infer_string.*")
        import fastparquet
    return fastparquet


def _plain(value: Any) -> Any:
    """JSON for metadata values numpy or pandas may have put there (numbers, timestamps, paths)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, Path):
        return str(value)
    value = jsonable(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def describe(ds: Dataset) -> dict[str, Any]:
    """The footer document for ``ds`` (everything but the frame's values)."""
    rul = None
    if ds.rul is not None:
        rul = {"units": _plain(list(ds.rul.index)), "values": _plain(list(ds.rul.to_numpy()))}
    return {
        "format_version": FORMAT_VERSION,
        "data_hash": ds.data_hash,
        "time_col": ds.time_col,
        "sensors": list(ds.sensors),
        "settings": list(ds.settings),
        "format": ds.format,
        "source": str(ds.source) if ds.source else None,
        "name": ds.name,
        "file_sha256": ds.file_sha256,
        "rul": rul,
        "rul_source": str(ds.rul_source) if ds.rul_source else None,
        "constant_sensors": list(ds.constant_sensors),
        "preprocessing": [_plain(step) for step in ds.preprocessing],
        "metadata": _plain(dict(ds.metadata)),
        "time_axis": ds.time_axis,
        "dtypes": {str(c): str(ds.frame[c].dtype) for c in ds.frame.columns},
        "rows": ds.n_rows,
        "units": len(ds.units),
    }


def write_dataset_file(ds: Dataset, path: Path | str) -> dict[str, Any]:
    """Write ``ds`` to ``path`` (through a temporary file, fsynced, then renamed) and return the footer
    document. Refuses (ValueError) a dataset whose preprocessing steps would not hash the same after
    the JSON round trip, so a stored file always reproduces its hash."""
    path = Path(path)
    document = describe(ds)
    if canonical_hash(ds.frame, document["preprocessing"]) != document["data_hash"]:
        raise ValueError("its preprocessing steps hold values JSON cannot keep (the data hash would change)")
    frame = ds.frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _fastparquet().write(
            str(temporary),
            frame,
            compression=COMPRESSION,
            write_index=False,
            stats=False,
            custom_metadata={METADATA_KEY: json.dumps(document, sort_keys=True)},
        )
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return document


def read_footer(path: Path | str) -> dict[str, Any] | None:
    """The footer document of a file written by :func:`write_dataset_file`; None for any other
    Parquet file. Reads only the footer."""
    try:
        raw = _fastparquet().ParquetFile(str(path)).key_value_metadata.get(METADATA_KEY)
    except Exception as exc:  # noqa: BLE001 - fastparquet raises many types for a corrupt file
        raise DataFormatError(Path(path), f"is not a readable Parquet file ({exc})") from None
    if raw is None:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "data_hash" in document else None


def _restore_dtype(column: pd.Series, dtype: str | None) -> pd.Series:
    if dtype is None or str(column.dtype) == dtype:
        return column
    if dtype == "object":
        return column.astype(object)
    try:
        return column.astype(dtype)
    except (TypeError, ValueError):
        return column


def read_dataset_file(path: Path | str, *, as_file: bool = False) -> Dataset:
    """The dataset written to ``path``, checked against the data hash in its footer.

    ``as_file=True`` describes the result as read from ``path`` (source, format ``parquet``) as a
    reader does; otherwise it keeps the source, name and format it had when it was written.
    """
    path = Path(path)
    document = read_footer(path)
    if document is None:
        raise DataFormatError(path, "has no turbofan-desktop dataset description in its footer")
    try:
        parquet = _fastparquet().ParquetFile(str(path))
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(path, f"is not a readable Parquet file ({exc})") from None
    # the same limit as any Parquet file the app reads: refused before it is decoded
    check_decoded_size(path, parquet.count() * max(1, len(parquet.columns)) * 8)
    try:
        frame = parquet.to_pandas()
    except Exception as exc:  # noqa: BLE001
        raise DataFormatError(path, f"is not a readable Parquet file ({exc})") from None
    dtypes = document.get("dtypes") or {}
    frame = pd.DataFrame({name: _restore_dtype(frame[name], dtypes.get(name)) for name in frame.columns})
    preprocessing = [dict(step) for step in document.get("preprocessing") or []]
    if canonical_hash(frame, preprocessing) != document["data_hash"]:
        raise DataFormatError(
            path,
            "holds values whose data hash differs from the one recorded in it (the file was changed)",
            expected=f"data hash {document['data_hash']}",
        )
    rul = None
    if document.get("rul"):
        rul = pd.Series(document["rul"]["values"], index=document["rul"]["units"], dtype=float)
    source = document.get("source")
    return Dataset(
        frame=frame,
        time_col=document["time_col"],
        sensors=list(document.get("sensors") or []),
        settings=list(document.get("settings") or []),
        format="parquet" if as_file else document.get("format") or "parquet",
        source=path if as_file else (Path(source) if source else None),
        name=path.stem if as_file else document.get("name") or "",
        file_sha256=None if as_file else document.get("file_sha256"),
        rul=rul,
        rul_source=Path(document["rul_source"]) if document.get("rul_source") else None,
        constant_sensors=list(document.get("constant_sensors") or []),
        preprocessing=preprocessing,
        metadata=dict(document.get("metadata") or {}),
        time_axis=document.get("time_axis"),
    )


__all__ = ["METADATA_KEY", "describe", "read_dataset_file", "read_footer", "write_dataset_file"]
