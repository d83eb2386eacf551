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


def resources_dir() -> Path | None:
    """The app's ``resources`` folder: beside the package in a source or editable install, or under
    ``sys._MEIPASS`` in a PyInstaller build. None when it is not there (a plain wheel install)."""
    package = Path(__file__).resolve().parents[1]
    candidates = [package.parent / "resources", package / "resources"]
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.insert(0, Path(frozen) / "resources")
    return next((folder for folder in candidates if folder.is_dir()), None)


def bundled_sample_dir() -> Path:
    """The bundled C-MAPSS FD001 sample (``resources/sample``)."""
    resources = resources_dir()
    folder = resources / "sample" if resources else Path("resources") / "sample"
    if not (folder / SAMPLE_FILES[0]).is_file():
        raise DataFormatError(
            folder / SAMPLE_FILES[0],
            "the bundled sample data is missing",
            expected="resources/sample/train_FD001.txt from the installation",
        )
    return folder


def bundled_sample_files() -> list[Path]:
    """Train, test and RUL files of the bundled sample; empty when the sample is not installed."""
    try:
        folder = bundled_sample_dir()
    except DataFormatError:
        return []
    return [folder / name for name in SAMPLE_FILES if (folder / name).is_file()]
