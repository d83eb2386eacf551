"""Loading data files off the GUI thread.

:func:`pair_files` turns dropped/opened paths into load requests (a C-MAPSS ``RUL_*`` file rides with
its ``test_*`` file). :class:`DataLoader` runs :func:`turbofan_desktop.services.data.load_dataset` as
jobs of its own :class:`~turbofan_desktop.ui.jobs.JobManager` — the same mechanism, handles and quit
behaviour as training, in a lane of its own so opening a file never queues behind a training job —
and hands back plain results; the window only starts it and receives them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from PySide6.QtCore import QObject, Signal

from turbofan_desktop.errors import DataFormatError
from turbofan_desktop.services.session import LoadedData, LoadRequest
from turbofan_desktop.ui.jobs import JobHandle, JobManager, ProgressSink, ShouldStop

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset

log = logging.getLogger(__name__)


#: reads one file (and its RUL file) into a dataset: ``load(workspace, path, rul_path)``
LoadFunction: TypeAlias = Callable[["Workspace", Path, "Path | None"], "Dataset"]


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


def sensor_flags(dataset: Dataset) -> dict[str, list[str]]:
    """Per sensor: "constant", "regime-normalised", "N missing" as they apply."""
    constant = set(dataset.constant_sensors or [])
    normalised: set[str] = set()
    for step in dataset.preprocessing or []:
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


def default_load_function(workspace: Workspace, path: Path, rul_path: Path | None) -> Dataset:
    from turbofan_desktop.services.data import load_dataset

    return load_dataset(workspace, path, rul_path=rul_path)


@dataclass
class LoadOutcome:
    """What one load job returns: the loaded file, or why it could not be loaded.

    The error travels as the exception itself (not a sentence) so the window can tell a user error
    from a bug and log the bug's traceback, as for any error it shows.
    """

    request: LoadRequest
    loaded: LoadedData | None = None
    error: BaseException | str | None = None


def load_one(
    load: LoadFunction,
    workspace: Workspace,
    request: LoadRequest,
    progress: ProgressSink,
    should_stop: ShouldStop,
) -> LoadOutcome:
    """Job body (worker thread): read one file and compute what the data panel shows of it."""
    if request.error:
        return LoadOutcome(request, error=request.error)
    started = time.perf_counter()
    try:
        dataset = load(workspace, request.path, request.rul_path)
        loaded = LoadedData(request, dataset, dataset.data_hash, sensor_flags(dataset))
    except Exception as exc:  # noqa: BLE001 - reported to the GUI thread, which decides how to show it
        return LoadOutcome(request, error=exc)
    loaded.seconds = time.perf_counter() - started
    return LoadOutcome(request, loaded)


class DataLoader(QObject):
    """Loads files as jobs, one after the other in the order asked; says when it has none left."""

    loaded = Signal(object)  # LoadedData
    failed = Signal(object, object)  # LoadRequest, exception or sentence
    idle = Signal()

    def __init__(
        self,
        workspace: Workspace,
        parent: QObject | None = None,
        load_function: LoadFunction | None = None,
        log_file: str | Path | None = None,
    ):
        super().__init__(parent)
        self._workspace = workspace
        self._load_function = load_function or default_load_function
        # one at a time: files appear in the data panel in the order they were asked for
        self.jobs = JobManager(log_file, self, max_concurrent=1)

    def load(self, requests: Sequence[LoadRequest]) -> list[JobHandle]:
        handles = []
        for request in requests:
            job = partial(load_one, self._load_function, self._workspace, request)
            handle = self.jobs.submit(f"Load {request.path.name}", job)
            job_id = handle.id
            handle.finished.connect(lambda outcome, job_id=job_id: self._deliver(job_id, outcome))
            handle.failed.connect(
                lambda message, job_id=job_id, request=request: self._failed(job_id, request, message)
            )
            handle.cancelled.connect(lambda job_id=job_id: self._ended(job_id))
            handles.append(handle)
        return handles

    def _deliver(self, job_id: int, outcome: LoadOutcome) -> None:
        if outcome.loaded is not None:
            self.loaded.emit(outcome.loaded)
        else:
            self.failed.emit(outcome.request, outcome.error)
        self._ended(job_id)

    def _failed(self, job_id: int, request: LoadRequest, message: str) -> None:
        self.failed.emit(request, message)
        self._ended(job_id)

    def _ended(self, job_id: int) -> None:
        self.jobs.remove(job_id)  # a load leaves nothing to show once delivered: keep no record
        if not self.jobs.active_count():
            self.idle.emit()

    def is_busy(self) -> bool:
        return bool(self.jobs.active_count())

    def running_threads(self) -> int:
        return self.jobs.running_count()

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Deliver every requested file (running the event loop meanwhile); True when all were."""
        return self.jobs.wait(timeout_ms)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """On quit: drop the files not started yet and wait for the one being read."""
        return self.jobs.shutdown(timeout_ms)


__all__ = [
    "DataLoader",
    "LoadOutcome",
    "LoadRequest",
    "LoadedData",
    "default_load_function",
    "load_one",
    "pair_files",
    "sensor_flags",
]
