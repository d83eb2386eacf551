"""What one desktop session has open and has seen: files, their drift checks, the last plotted result.

The main window and its controllers (drift, KPI, feedback) share one :class:`Session` instead of
setting attributes on the window; it holds plain data only — no Qt — so it can be read and tested
without a display (the import-linter contract "Core stays free of Qt" covers this module).

Each open file is a :class:`LoadedData` (the dataset plus what the data panel shows, computed off the
GUI thread); opening a path again replaces its entry and drops the drift checks made of the old data.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# The data types ui/ annotates with come from here, for annotations only: importing this module stays
# as cheap as the window's start needs, and ui/ never names the data layer itself.
if TYPE_CHECKING:
    from turbofan_desktop.data.dataset import Dataset
    from turbofan_desktop.data.drift import DriftReport, SensorDrift  # noqa: F401 - for ui/
    from turbofan_desktop.plugins.contract import DetectionResult
    from turbofan_desktop.registry import LabelRecord, MetricPoint, VersionRecord  # noqa: F401 - for ui/

#: a unit (engine) id as the dataset names it: an int for C-MAPSS, a string for telemetry channels
Unit = Hashable


@dataclass(frozen=True)
class LoadRequest:
    """One file to open; ``rul_path`` is the remaining-useful-life file that rides with a test file."""

    path: Path
    rul_path: Path | None = None
    error: str | None = None  # set when the request cannot be loaded as given (e.g. an orphan RUL file)


@dataclass
class LoadedData:
    """A dataset plus what the data panel shows, all computed on the worker thread."""

    request: LoadRequest
    dataset: Dataset
    data_hash: str
    sensor_flags: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class DriftCheck:
    """One version's drift report on one dataset."""

    version_id: int
    label: str
    report: DriftReport


@dataclass(frozen=True)
class ShownResult:
    """The model result last drawn on the plot: which version, on which unit of which dataset.

    ``detection`` is None when the version serves no anomaly task (nothing to label then).
    """

    version_id: int
    unit: Unit
    detection: DetectionResult | None = None
    dataset: Dataset | None = None


class Session:
    """Open files (in the order the data panel lists them), drift checks and the last plotted result."""

    def __init__(self) -> None:
        self._files: list[LoadedData] = []
        self._drift: dict[int, list[DriftCheck]] = {}
        #: the checks of the file that was checked last (None until a background check ended)
        self.drift_checks: list[DriftCheck] | None = None
        #: (version id, report) of the first of those checks, for the status bar and callers
        self.last_drift: tuple[int, DriftReport] | None = None
        self.last_shown: ShownResult | None = None

    # -- open files ------------------------------------------------------------------------------
    @property
    def files(self) -> list[LoadedData]:
        return list(self._files)

    def file(self, index: int) -> LoadedData:
        return self._files[index]

    def add_file(self, loaded: LoadedData) -> tuple[int, bool]:
        """Open ``loaded`` (replacing an earlier load of the same path); returns (index, replaced)."""
        path = str(loaded.request.path)
        for index, existing in enumerate(self._files):
            if str(existing.request.path) == path:
                self._files[index] = loaded
                self._drift.pop(index, None)  # the checks were of the replaced data
                return index, True
        self._files.append(loaded)
        return len(self._files) - 1, False

    def index_of(self, dataset: Dataset) -> int | None:
        """The index of the open file holding this very dataset object (None once it was replaced)."""
        return next((i for i, loaded in enumerate(self._files) if loaded.dataset is dataset), None)

    # -- drift -----------------------------------------------------------------------------------
    def set_file_drift(self, index: int, checks: list[DriftCheck]) -> bool:
        """Keep the drift checks of open file ``index``; False when there is no such file."""
        if not 0 <= index < len(self._files):
            return False
        self._drift[index] = list(checks)
        return True

    def file_drift(self, index: int) -> list[DriftCheck]:
        return list(self._drift.get(index, []))

    def has_drift(self, index: int) -> bool:
        return index in self._drift

    def record_drift(self, checks: list[DriftCheck]) -> None:
        """A background check ended (whether or not its file is still open)."""
        self.drift_checks = list(checks)
        if checks:
            self.last_drift = (checks[0].version_id, checks[0].report)


__all__ = ["DriftCheck", "LoadRequest", "LoadedData", "Session", "ShownResult", "Unit"]
