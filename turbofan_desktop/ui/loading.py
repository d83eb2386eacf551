"""Loading data files off the GUI thread.

:func:`pair_files` turns dropped/opened paths into load requests (a C-MAPSS ``RUL_*`` file rides with
its ``test_*`` file). :class:`DataLoader` runs :func:`turbofan_desktop.services.data.load_dataset` in a
worker object moved to a :class:`QThread` (DESIGN.md section 6) and hands back plain results through
queued signals; the window only starts it and receives them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from turbofan_desktop.errors import DataFormatError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadRequest:
    path: Path
    rul_path: Path | None = None
    error: str | None = None  # set when the request cannot be loaded as given (e.g. an orphan RUL file)


@dataclass
class LoadedData:
    """A dataset plus what the data panel shows, all computed on the worker thread."""

    request: LoadRequest
    dataset: Any  # turbofan_desktop.data.dataset.Dataset
    data_hash: str
    sensor_flags: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def pair_files(paths: Iterable[str | Path]) -> list[LoadRequest]:
    """One request per data file; each RUL file is attached to the test file it belongs to (the data
    layer's pairing rule, through :func:`turbofan_desktop.services.data.pair_rul_files`).

    A RUL file with no test file becomes a request carrying the reason it cannot be opened alone.
    """
    from turbofan_desktop.services.data import pair_rul_files

    pairing = pair_rul_files(paths)
    requests = [LoadRequest(path, rul) for path, rul in pairing.data_files]
    for rul in pairing.orphan_rul_files:
        reason = DataFormatError(
            rul,
            "is a remaining-useful-life file and cannot be opened on its own",
            expected="it opened together with its test file, e.g. test_FD001.txt with RUL_FD001.txt",
        )
        requests.append(LoadRequest(rul, None, error=str(reason)))
    return requests


def sensor_flags(dataset: Any) -> dict[str, list[str]]:
    """Per sensor: "constant", "regime-normalised", "N missing" as they apply."""
    constant = set(getattr(dataset, "constant_sensors", []) or [])
    normalised: set[str] = set()
    for step in getattr(dataset, "preprocessing", []) or []:
        name = str(step.get("step", "")).lower()
        if "regime" in name:
            normalised.update(step.get("sensors") or dataset.sensors)
    missing = dataset.frame[list(dataset.sensors)].isna().sum() if dataset.sensors else {}
    flags = {}
    for sensor in dataset.sensors:
        items = []
        if sensor in constant:
            items.append("constant")
        if sensor in normalised:
            items.append("regime-normalised")
        count = int(missing[sensor]) if sensor in missing else 0
        if count:
            items.append(f"{count} missing")
        flags[sensor] = items
    return flags


def default_load_function(workspace: Any, path: Path, rul_path: Path | None) -> Any:
    from turbofan_desktop.services.data import load_dataset

    return load_dataset(workspace, path, rul_path=rul_path)


class _LoadTask(QObject):
    """Lives on a worker thread; loads its requests one after the other."""

    loaded = Signal(object)  # LoadedData
    failed = Signal(object, object)  # LoadRequest, exception or sentence
    done = Signal()

    def __init__(self, workspace: Any, requests: Sequence[LoadRequest], load_function: Callable):
        super().__init__()
        self._workspace = workspace
        self._requests = list(requests)
        self._load = load_function

    @Slot()
    def run(self) -> None:
        for request in self._requests:
            if request.error:
                self.failed.emit(request, request.error)
                continue
            started = time.perf_counter()
            try:
                dataset = self._load(self._workspace, request.path, request.rul_path)
                result = LoadedData(request, dataset, dataset.data_hash, sensor_flags(dataset))
            except Exception as exc:  # noqa: BLE001 - reported to the GUI thread, which decides how to show it
                self.failed.emit(request, exc)
                continue
            result.seconds = time.perf_counter() - started
            self.loaded.emit(result)
        self.done.emit()


class DataLoader(QObject):
    """Starts load tasks on their own QThreads and keeps them alive until they finish."""

    loaded = Signal(object)
    failed = Signal(object, object)
    idle = Signal()

    def __init__(self, workspace: Any, parent: QObject | None = None, load_function: Callable | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._load_function = load_function or default_load_function
        self._running: dict[QThread, _LoadTask] = {}

    def load(self, requests: Sequence[LoadRequest]) -> None:
        if not requests:
            return
        thread = QThread()
        thread.setObjectName("turbofan-loader")
        task = _LoadTask(self._workspace, requests, self._load_function)
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.loaded.connect(self.loaded)
        task.failed.connect(self.failed)
        # direct: quit() is thread-safe, and a queued call would wait for the GUI thread, which may be
        # blocked in wait() on quit
        task.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(lambda: self._finished(thread))
        self._running[thread] = task
        thread.start()

    def _finished(self, thread: QThread) -> None:
        thread.wait()
        self._running.pop(thread, None)
        if not self._running:
            self.idle.emit()

    def is_busy(self) -> bool:
        return bool(self._running)

    def running_threads(self) -> int:
        return sum(1 for thread in self._running if thread.isRunning())

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until every load thread has ended (used on quit); True when all ended in time."""
        deadline = time.monotonic() + timeout_ms / 1000
        for thread in list(self._running):
            remaining = max(0, int((deadline - time.monotonic()) * 1000))
            if not thread.wait(remaining):
                return False
        return True
