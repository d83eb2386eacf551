"""The QThread bridge: plain service functions run as queued jobs on worker threads.

A job is a plain function (Orange's style: long work receives a state, here ``progress`` and
``should_stop`` callables) run by a :class:`_Worker` QObject moved to its own :class:`QThread` — never
a QThread subclass with slots. The worker only emits plain data through queued signals, throttled so
a chatty training loop cannot flood the GUI thread; the :class:`JobManager` (a GUI-thread object)
keeps the :class:`Job` records widgets read, queues jobs beyond ``max_concurrent`` and cleans each
thread up (quit, wait, deleteLater) only after it has stopped, so no QThread is destroyed running.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QObject, Qt, QThread, Signal, Slot

from turbofan_desktop.errors import Cancelled, TurbofanError

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
CANCELLING = "cancelling"
FINISHED = "finished"
FAILED = "failed"
CANCELLED = "cancelled"
DONE_STATES = (FINISHED, FAILED, CANCELLED)

#: at most this many progress signals per second per job (the final event is always delivered)
MAX_EMIT_HZ = 20.0
MAX_LOG_LINES = 500


@dataclass
class LossPoint:
    """One per-epoch loss pair; ``series`` names the target when a job trains several."""

    series: str
    epoch: int
    train_loss: float | None
    val_loss: float | None


@dataclass
class Job:
    """What the GUI knows about one job; only ever changed on the GUI thread."""

    id: int
    title: str
    state: str = QUEUED
    fraction: float = 0.0
    epoch: int | None = None
    epochs: int | None = None
    stage: str = ""
    series: str = ""  # the target being trained now (multi-target jobs)
    eta: float | None = None  # seconds left, estimated from elapsed time and fraction
    losses: list[LossPoint] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    last_progress: Any = None

    @property
    def log_lines(self) -> list[str]:
        return list(self.log)

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at


# -- reading progress objects (services JobProgress wraps a contract ProgressEvent) ----------------
def _inner_event(progress: Any) -> Any:
    return getattr(progress, "event", None) or progress


def progress_fraction(progress: Any) -> float:
    """The job-wide fraction: ``overall`` of a services JobProgress, else the event's ``fraction``."""
    value = getattr(progress, "overall", None)
    if value is None:
        value = getattr(_inner_event(progress), "fraction", None)
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


def progress_series(progress: Any) -> str:
    return str(getattr(progress, "target", "") or "")


def _progress_message(progress: Any) -> str:
    message = str(getattr(_inner_event(progress), "message", "") or "")
    series = progress_series(progress)
    if message and series:
        return f"{series}: {message}"
    return message


def _loss_point(progress: Any) -> LossPoint | None:
    event = _inner_event(progress)
    epoch = getattr(event, "epoch", None)
    train_loss = getattr(event, "train_loss", None)
    val_loss = getattr(event, "val_loss", None)
    if epoch is None or (train_loss is None and val_loss is None):
        return None
    return LossPoint(progress_series(progress), int(epoch), train_loss, val_loss)


def _accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` takes keyword ``name`` (services.reports.export_report has no ``should_stop``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class ProgressThrottle:
    """Decides which progress events cross to the GUI thread.

    An event is sent when something a user sees changed (the rounded percentage, the epoch, the
    stage, the target or the message) and at most ``max_hz`` times a second; a held-back event is
    kept as pending so :meth:`flush` can always deliver the last one. Loss points and log lines are
    collected from *every* event, so throttling never loses a point of the loss curve.
    """

    def __init__(self, max_hz: float = MAX_EMIT_HZ, clock: Callable[[], float] = time.monotonic):
        self.min_interval = 1.0 / max_hz
        self.clock = clock
        self._last_key: tuple | None = None
        self._last_time = -1e9
        self._pending: Any = None
        self._has_pending = False
        self._losses: list[LossPoint] = []
        self._lines: list[str] = []
        self._last_line = ""
        self._seen_epochs: set[tuple[str, int]] = set()

    def _key(self, progress: Any) -> tuple:
        event = _inner_event(progress)
        return (
            round(progress_fraction(progress) * 100),
            getattr(event, "epoch", None),
            getattr(event, "stage", None),
            progress_series(progress),
            _progress_message(progress),
        )

    def offer(self, progress: Any) -> tuple[Any, list[LossPoint], list[str]] | None:
        """Record ``progress``; return (event, new loss points, new log lines) when it should be sent."""
        point = _loss_point(progress)
        if point is not None and (point.series, point.epoch) not in self._seen_epochs:
            self._seen_epochs.add((point.series, point.epoch))
            self._losses.append(point)
        line = _progress_message(progress)
        if line and line != self._last_line:
            self._lines.append(line)
            self._last_line = line
        key = self._key(progress)
        now = self.clock()
        if key != self._last_key and now - self._last_time >= self.min_interval:
            self._last_key, self._last_time = key, now
            self._pending, self._has_pending = None, False
            return self._take(progress)
        self._pending, self._has_pending = progress, True
        return None

    def flush(self) -> tuple[Any, list[LossPoint], list[str]] | None:
        """The held-back final event (and any unsent points), if there is one."""
        if not self._has_pending and not self._losses and not self._lines:
            return None
        progress = self._pending
        self._pending, self._has_pending = None, False
        return self._take(progress)

    def _take(self, progress: Any) -> tuple[Any, list[LossPoint], list[str]]:
        losses, lines = self._losses, self._lines
        self._losses, self._lines = [], []
        return progress, losses, lines


class _Worker(QObject):
    """Runs one job function on its QThread and reports plain data back through queued signals."""

    progressed = Signal(int, object, object, object)  # job id, progress (or None), loss points, log lines
    succeeded = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int, object)  # job id, the function's result when it returned a cancelled summary

    def __init__(
        self, job_id: int, fn: Callable, args: tuple, kwargs: dict, stop: threading.Event, log_file: str
    ):
        super().__init__()
        self.job_id = job_id
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.stop = stop
        self.log_file = log_file
        self.throttle = ProgressThrottle()

    def _on_progress(self, progress: Any) -> None:
        sent = self.throttle.offer(progress)
        if sent is not None:
            self.progressed.emit(self.job_id, *sent)

    def _flush(self) -> None:
        sent = self.throttle.flush()
        if sent is not None:
            self.progressed.emit(self.job_id, *sent)

    @Slot()
    def run(self) -> None:
        kwargs = dict(self.kwargs)
        if _accepts(self.fn, "progress"):
            kwargs["progress"] = self._on_progress
        if _accepts(self.fn, "should_stop"):
            kwargs["should_stop"] = self.stop.is_set
        try:
            result = self.fn(*self.args, **kwargs)
        except Cancelled:
            self._flush()
            self.cancelled.emit(self.job_id, None)
        except TurbofanError as exc:
            self._flush()
            self.failed.emit(self.job_id, str(exc))
        except BaseException as exc:  # noqa: BLE001 - a bug in a job must not kill the app
            log.error("job %s failed with an internal error", self.job_id, exc_info=exc)
            self._flush()
            self.failed.emit(self.job_id, f"internal error, see {self.log_file}")
        else:
            self._flush()
            if self.stop.is_set() and _reports_cancelled(result):
                self.cancelled.emit(self.job_id, result)
            else:
                self.succeeded.emit(self.job_id, result)
        finally:
            # quit from inside: JobManager.shutdown() blocks in wait() and cannot run a quit slot
            QThread.currentThread().quit()


def _reports_cancelled(result: Any) -> bool:
    """Services return a summary with ``cancelled=True`` instead of raising when stopped between targets."""
    if isinstance(result, dict):
        return bool(result.get("cancelled"))
    return bool(getattr(result, "cancelled", False))


@dataclass
class _Running:
    thread: QThread
    worker: _Worker
    stop: threading.Event


class JobManager(QObject):
    """Queues jobs and runs at most ``max_concurrent`` of them at a time, each on its own QThread.

    ``submit(title, fn, *args, **kwargs)`` calls ``fn(*args, progress=cb, should_stop=stop, **kwargs)``
    on a worker thread (``progress``/``should_stop`` are passed only when ``fn`` accepts them). Every
    signal is emitted on the GUI thread.
    """

    job_added = Signal(int)
    job_started = Signal(int)
    job_progress = Signal(int, object)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)
    job_changed = Signal(int)  # any change to a Job record (state, progress, log): panels repaint on it

    _ids = itertools.count(1)

    def __init__(self, workspace: Any = None, parent: QObject | None = None, max_concurrent: int = 1):
        super().__init__(parent)
        self.workspace = workspace
        self._max_concurrent = max(1, int(max_concurrent))
        self._jobs: dict[int, Job] = {}
        self._calls: dict[int, tuple[Callable, tuple, dict]] = {}
        self._queue: list[int] = []
        self._running: dict[int, _Running] = {}
        self._accepting = True

    # -- public API --------------------------------------------------------------------------
    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @max_concurrent.setter
    def max_concurrent(self, value: int) -> None:
        self._max_concurrent = max(1, int(value))
        self._start_next()

    def submit(self, title: str, fn: Callable, *args: Any, **kwargs: Any) -> int:
        """Queue ``fn``; it starts as soon as fewer than ``max_concurrent`` jobs run. Returns the job id."""
        job_id = next(self._ids)
        job = Job(job_id, title)
        self._jobs[job_id] = job
        if not self._accepting:
            job.state, job.error = FAILED, "the application is shutting down"
            self.job_added.emit(job_id)
            self.job_failed.emit(job_id, job.error)
            return job_id
        self._calls[job_id] = (fn, args, kwargs)
        self._queue.append(job_id)
        self.job_added.emit(job_id)
        self.job_changed.emit(job_id)
        self._start_next()
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a running job to stop (its ``should_stop()`` turns true); a queued one is just removed."""
        job = self._jobs.get(job_id)
        if job is None or job.done:
            return
        if job_id in self._queue:
            self._queue.remove(job_id)
            self._calls.pop(job_id, None)
            job.state = CANCELLED
            job.finished_at = time.monotonic()
            self._log(job, "cancelled before it started")
            self.job_cancelled.emit(job_id)
            self.job_changed.emit(job_id)
            return
        running = self._running.get(job_id)
        if running is not None and not running.stop.is_set():
            running.stop.set()
            job.state = CANCELLING
            self._log(job, "cancelling…")
            self.job_changed.emit(job_id)

    def running_count(self) -> int:
        return len(self._running)

    def queued_count(self) -> int:
        return len(self._queue)

    def job(self, job_id: int) -> Job:
        return self._jobs[job_id]

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def remove(self, job_id: int) -> None:
        """Forget a finished job (the panel's "clear finished")."""
        job = self._jobs.get(job_id)
        if job is not None and job.done:
            del self._jobs[job_id]

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Stop accepting jobs, drop the queue, ask running jobs to stop and wait for their threads.

        Returns True when every thread stopped within ``timeout_ms``; the final signals (cancelled,
        finished) are delivered before returning.
        """
        self._accepting = False
        for job_id in list(self._queue):
            self.cancel(job_id)
        for running in self._running.values():
            running.stop.set()
        deadline = QDeadlineTimer(max(0, int(timeout_ms)))
        all_stopped = True
        for running in list(self._running.values()):
            if not running.thread.wait(deadline):
                all_stopped = False
        # deliver the queued result signals and let each finished thread be cleaned up
        QCoreApplication.sendPostedEvents(None, 0)
        QCoreApplication.processEvents()
        self._reap()
        if not all_stopped:
            log.warning("%d job(s) still running after %d ms", len(self._running), timeout_ms)
        return all_stopped and not self._running

    # -- running -----------------------------------------------------------------------------
    def _log_file(self) -> str:
        settings = getattr(self.workspace, "settings", None)
        log_file = getattr(settings, "log_file", None)
        return str(log_file) if log_file else "the log file"

    def _start_next(self) -> None:
        while self._accepting and self._queue and len(self._running) < self._max_concurrent:
            self._start(self._queue.pop(0))

    def _start(self, job_id: int) -> None:
        fn, args, kwargs = self._calls.pop(job_id)
        job = self._jobs[job_id]
        stop = threading.Event()
        thread = QThread(self)
        thread.setObjectName(f"turbofan-job-{job_id}")
        worker = _Worker(job_id, fn, args, kwargs, stop, self._log_file())
        worker.moveToThread(thread)
        queued = Qt.ConnectionType.QueuedConnection
        worker.progressed.connect(self._on_progress, queued)
        worker.succeeded.connect(self._on_succeeded, queued)
        worker.failed.connect(self._on_failed, queued)
        worker.cancelled.connect(self._on_cancelled, queued)
        thread.started.connect(worker.run)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(self._reap, queued)
        self._running[job_id] = _Running(thread, worker, stop)
        job.state = RUNNING
        job.started_at = time.monotonic()
        self._log(job, "started")
        thread.start()
        self.job_started.emit(job_id)
        self.job_changed.emit(job_id)

    @Slot()
    def _reap(self) -> None:
        """Release threads that have stopped (wait() returns at once), then start queued jobs."""
        for job_id, running in list(self._running.items()):
            if running.thread.isFinished():
                running.thread.wait()
                del self._running[job_id]
                running.thread.deleteLater()
        self._start_next()

    def _log(self, job: Job, line: str) -> None:
        job.log.append(line)
        if len(job.log) > MAX_LOG_LINES:
            del job.log[: len(job.log) - MAX_LOG_LINES]

    @Slot(int, object, object, object)
    def _on_progress(self, job_id: int, progress: Any, losses: list[LossPoint], lines: list[str]) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.losses.extend(losses)
        for line in lines:
            self._log(job, line)
        if progress is not None:
            event = _inner_event(progress)
            job.last_progress = progress
            job.fraction = progress_fraction(progress)
            job.epoch = getattr(event, "epoch", None)
            job.epochs = getattr(event, "epochs", None)
            job.stage = str(getattr(event, "stage", "") or "")
            job.series = progress_series(progress)
            if job.fraction >= 0.01 and job.started_at is not None:
                job.eta = job.elapsed * (1.0 - job.fraction) / job.fraction
            self.job_progress.emit(job_id, progress)
        self.job_changed.emit(job_id)

    def _finish(self, job: Job, state: str) -> None:
        job.state = state
        job.finished_at = time.monotonic()
        job.eta = 0.0 if state == FINISHED else None
        if state == FINISHED:
            job.fraction = 1.0

    @Slot(int, object)
    def _on_succeeded(self, job_id: int, result: Any) -> None:
        job = self._jobs[job_id]
        job.result = result
        self._finish(job, FINISHED)
        self._log(job, f"finished in {job.elapsed:.1f} s")
        self.job_finished.emit(job_id, result)
        self.job_changed.emit(job_id)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._jobs[job_id]
        job.error = message
        self._finish(job, FAILED)
        self._log(job, f"failed: {message}")
        self.job_failed.emit(job_id, message)
        self.job_changed.emit(job_id)

    @Slot(int, object)
    def _on_cancelled(self, job_id: int, result: Any) -> None:
        job = self._jobs[job_id]
        job.result = result
        self._finish(job, CANCELLED)
        self._log(job, "cancelled")
        self.job_cancelled.emit(job_id)
        self.job_changed.emit(job_id)


__all__ = [
    "Job",
    "JobManager",
    "LossPoint",
    "ProgressThrottle",
    "progress_fraction",
]
