"""Loading data files for the use cases: built-in readers plus the readers plugins contribute."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data import detect_regimes, missing_report, read_dataset
from turbofan_desktop.data.dataset import DataLineage, Dataset
from turbofan_desktop.data.preprocess import RegimeNormalizer
from turbofan_desktop.data.readers import RulPairing, pair_rul_files
from turbofan_desktop.errors import DataFormatError, TurbofanError

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)


def load_dataset(
    ws: Workspace,
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


def _plugin_readers(ws: Workspace) -> list[Any]:
    """Readers contributed by plugins; a broken plugin setup must not stop a plain inspect."""
    try:
        return list(ws.plugins.readers())
    except Exception:  # noqa: BLE001 - built-in readers still work; the failure is logged
        log.warning("plugin readers unavailable", exc_info=True)
        return []


def summarise_file(
    ws: Workspace,
    path: Path | str,
    *,
    rul_path: Path | str | None = None,
    unit_col: str | None = None,
    time_col: str | None = None,
) -> dict[str, Any]:
    """What a data file holds, as plain data (``turbofan-desktop inspect``): format, units, rows,
    time range, sensors, settings, constant sensors, regimes, missing values, hashes, the paired RUL
    file. Bad files raise DataFormatError naming the file (and line)."""
    ds = read_dataset(
        path,
        rul_path=rul_path,
        unit_col=unit_col,
        time_col=time_col,
        extra_readers=_plugin_readers(ws),
        max_file_mb=ws.settings.max_file_mb,
    )
    lineage = ds.lineage
    missing = missing_report(ds)
    report: dict[str, Any] = {
        "file": str(ds.source),
        "format": ds.format,
        "units": lineage.units,
        "rows": lineage.rows,
        "time_column": ds.time_col,
        "time_kind": lineage.time_kind,
        "time_start": lineage.time_start,
        "time_end": lineage.time_end,
        "sensors": list(ds.sensors),
        "settings": list(ds.settings),
        "constant_sensors": list(ds.constant_sensors),
        "regimes": detect_regimes(ds).n_regimes,
        "missing_values": missing["total"],
        "missing_by_column": missing["by_column"],
        "data_hash": lineage.data_hash,
        "file_sha256": lineage.file_sha256,
    }
    if ds.rul is not None:
        report["rul_file"] = str(ds.rul_source)
        report["rul_rows"] = len(ds.rul)
    if "shape" in ds.metadata:
        report["shape"] = ds.metadata["shape"]
    return report


SAMPLE_FILES = ("train_FD001.txt", "test_FD001.txt", "RUL_FD001.txt")


class RegimeView:
    """A file seen per operating regime (FD002/FD004 fly six): the regime of every row and, for a
    file of several regimes, the sensors z-scored within each regime — the flight condition taken
    out, so the wear trend shows (the models see their data the same way). The normalised copy is
    computed on first use (a second or so for FD002's 54,000 rows on a busy machine)."""

    def __init__(self, dataset: Dataset, n_regimes: int, labels: Any, regimes: Any = None):
        self.dataset = dataset
        self.n_regimes = n_regimes
        self.labels = labels  # numpy int array: regime id (0..n-1) of each row of the dataset's frame
        self._regimes = regimes
        self._normalised: Dataset | None = None

    @property
    def normalised(self) -> Dataset | None:
        """The sensors z-scored per regime (statistics of the file itself); None for one regime."""
        if self.n_regimes < 2 or self._regimes is None or not self.dataset.sensors:
            return None
        if self._normalised is None:
            normaliser = RegimeNormalizer(list(self.dataset.sensors), regimes=self._regimes)
            try:
                self._normalised = normaliser.fit_transform(self.dataset)
            except TurbofanError:  # data the normaliser cannot place: the raw view stays
                log.warning("per-regime normalisation of %s failed", self.dataset.name, exc_info=True)
                self.n_regimes = 1
                return None
        return self._normalised


def regime_view(dataset: Dataset) -> RegimeView:
    """The :class:`RegimeView` of ``dataset`` (a file whose regimes cannot be found reads as one)."""
    import numpy as np

    try:
        regimes = detect_regimes(dataset)
        labels = regimes.assign(dataset.frame)
    except TurbofanError:
        return RegimeView(dataset, 1, np.zeros(len(dataset.frame), dtype=np.int64))
    return RegimeView(dataset, regimes.n_regimes, labels, regimes)


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


__all__ = [
    "SAMPLE_FILES",
    "DataLineage",
    "Dataset",
    "RegimeView",
    "RulPairing",
    "bundled_sample_dir",
    "bundled_sample_files",
    "load_dataset",
    "pair_rul_files",
    "regime_view",
    "resources_dir",
    "summarise_file",
]
