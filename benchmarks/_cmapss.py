"""Read NASA C-MAPSS text files for the benchmarks (the data layer's reader when it is available)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from turbofan_desktop.data.dataset import Dataset, file_sha256

SETTINGS = [f"setting_{i}" for i in range(1, 4)]
SENSORS = [f"s_{i}" for i in range(1, 22)]
COLUMNS = ["unit", "cycle", *SETTINGS, *SENSORS]


def read_cmapss(path: Path, rul_path: Path | None = None) -> Dataset:
    """A C-MAPSS train/test file as a Dataset; ``rul_path`` pairs a test file with its true RUL."""
    try:
        from turbofan_desktop.data import read_dataset  # type: ignore[attr-defined]
    except ImportError:
        read_dataset = None
    if read_dataset is not None:
        data = read_dataset(path)
        if rul_path is not None and data.rul is None:
            data.rul = _read_rul(rul_path, data.units)
        return data
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=COLUMNS, engine="c")
    frame = frame.sort_values(["unit", "cycle"]).reset_index(drop=True)
    data = Dataset(
        frame=frame,
        time_col="cycle",
        sensors=list(SENSORS),
        settings=list(SETTINGS),
        format="cmapss",
        source=Path(path),
        name=Path(path).name,
        file_sha256=file_sha256(path),
    )
    if rul_path is not None:
        data.rul = _read_rul(rul_path, data.units)
        data.rul_source = Path(rul_path)
    return data


def _read_rul(path: Path, units: list) -> pd.Series:
    values = pd.read_csv(path, sep=r"\s+", header=None)[0].to_numpy()
    return pd.Series(values, index=units[: len(values)], name="rul")
