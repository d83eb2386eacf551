"""Loading data files for the use cases: built-in readers plus the readers plugins contribute."""

from __future__ import annotations

import sys
from pathlib import Path

from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import DataFormatError


def load_dataset(
    ws,
    path: Path | str,
    *,
    rul_path: Path | str | None = None,
    unit_col: str | None = None,
    time_col: str | None = None,
) -> Dataset:
    """Read and validate ``path`` (a C-MAPSS test file is paired with its RUL file when beside it).

    Plugin readers are tried before the built-in ones; the file-size limit comes from the settings.
    Bad files raise :class:`~turbofan_desktop.errors.DataFormatError` (or another TurbofanError)
    naming the file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFormatError(path, "the file does not exist")
    return read_dataset(
        path,
        rul_path=Path(rul_path).expanduser() if rul_path is not None else None,
        unit_col=unit_col,
        time_col=time_col,
        extra_readers=tuple(ws.plugins.readers()),
        max_file_mb=ws.settings.max_file_mb,
    )


SAMPLE_FILES = ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt")


def bundled_sample_dir() -> Path:
    """The bundled C-MAPSS FD001 sample: ``resources/sample`` beside the package in a source or
    editable install, or under ``sys._MEIPASS`` in a PyInstaller build."""
    package = Path(__file__).resolve().parents[1]
    candidates = [package.parent / "resources" / "sample", package / "resources" / "sample"]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates[:0] = [Path(frozen) / "resources" / "sample", Path(frozen) / "sample"]
    for folder in candidates:
        if (folder / SAMPLE_FILES[0]).is_file():
            return folder
    raise DataFormatError(
        candidates[0] / SAMPLE_FILES[0],
        "the bundled sample data is missing",
        expected="resources/sample/train_FD001.txt from the installation",
    )


__all__ = ["bundled_sample_dir", "load_dataset"]
