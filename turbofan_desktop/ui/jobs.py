"""The QThread bridge: plain job functions run as queued jobs on worker threads, one handle each.

A job function has one fixed signature, ``fn(progress, should_stop)`` (Orange's style: long work
receives a state), where ``progress`` takes the one progress type the UI reads, :class:`Progress`,
and ``should_stop()`` turns true when the user cancels. The submit site binds the arguments (a
lambda or :func:`functools.partial`) and adapts what the service reports: :func:`event_progress`
for a contract :class:`~turbofan_desktop.plugins.contract.ProgressEvent`, :func:`target_progress`
for a services ``JobProgress`` (one target of a multi-target job).

The function runs in a :class:`_Worker` QObject moved to its own :class:`QThread` — never a QThread
subclass with slots. The worker only emits plain data through queued signals, throttled so a chatty
training loop cannot flood the GUI thread; the :class:`JobManager` (a GUI-thread object) keeps the
:class:`Job` records widgets read, queues jobs beyond ``max_concurrent`` and cleans each thread up
(quit, wait, deleteLater) only after it has stopped, so no QThread is destroyed running.

:meth:`JobManager.submit` returns a :class:`JobHandle` with the job's own ``finished`` /
``failed`` / ``cancelled`` / ``progressed`` signals: whoever started a job listens there. The
manager's own signals (``job_added``, ``job_changed``, ``job_finished``…) are for views of *all*
jobs (the jobs panel, the status bar's count, the models panel's refresh after any job).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from PySide6.QtCore import (
    QCoreApplication,
    QDeadlineTimer,
    QEventLoop,
    QObject,
    Qt,
    QThread,
    QTimer,
    Signal,
    Slot,
)

from turbofan_desktop.errors import Cancelled, TurbofanError

if TYPE_CHECKING:
    from turbofan_desktop.plugins.contract import ProgressEvent
    from turbofan_desktop.services.training import JobProgress

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


@dataclass(frozen=True)
class Progress:
    """The one progress type a job reports to the UI: plain data, safe to send across threads.

    ``fraction`` is the job-wide progress in [0, 1]; ``series`` names the target being worked on
    when a job trains several; the epoch and losses feed the jobs panel's loss curve.
    """

    fraction: float
    stage: str = ""
    message: str = ""
    series: str = ""
    epoch: int | None = None
    epochs: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None

    @classmethod
    def of_event(cls, event: ProgressEvent, *, series: str = "", overall: float | None = None) -> Progress:
        """A contract ``ProgressEvent``; ``overall`` replaces its stage fraction when given."""
        fraction = event.fraction if overall is None else overall
        return cls(
            fraction=_clamp(fraction),
            stage=str(event.stage or ""),
            message=str(event.message or ""),
            series=series,
            epoch=event.epoch,
            epochs=event.epochs,
            train_loss=event.train_loss,
            val_loss=event.val_loss,
        )

    @classmethod
    def of_target(cls, progress: JobProgress) -> Progress:
        """A services ``JobProgress``: one target's event within a multi-target job."""
        return cls.of_event(progress.event, series=str(progress.target or ""), overall=progress.overall)

    @property
    def text(self) -> str:
        """The log line: the message, prefixed by the target when there is one."""
        if self.message and self.series:
            return f"{self.series}: {self.message}"
        return self.message


def _clamp(value: float) -> float:
    try:
        return min(1.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return 0.0


ProgressSink: TypeAlias = Callable[[Progress], None]
ShouldStop: TypeAlias = Callable[[], bool]
#: what :meth:`JobManager.submit` runs: ``fn(progress, should_stop) -> result``
JobFunction: TypeAlias = Callable[[ProgressSink, ShouldStop], object]


def event_progress(progress: ProgressSink, series: str = "") -> Callable[[ProgressEvent], None]:
    """Adapt ``progress`` for a service that reports contract ``ProgressEvent`` s."""
    return lambda event: progress(Progress.of_event(event, series=series))


def target_progress(progress: ProgressSink) -> Callable[[JobProgress], None]:
    """Adapt ``progress`` for a service that reports a services ``JobProgress`` per target."""
    return lambda job_progress: progress(Progress.of_target(job_progress))


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
    result: Any = None  # whatever the job function returned (the caller knows its type)
    error: str | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    finished_at: float | None = None
    last_progress: Progress | None = None
    background: bool = False  # started by the app itself or a quick look (drift check, show on plot)

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


def _loss_point(progress: Progress) -> LossPoint | None:
    if progress.epoch is None or (progress.train_loss is None and progress.val_loss is None):
        return None
    return LossPoint(progress.series, int(progress.epoch), progress.train_loss, progress.val_loss)


#: what the throttle hands over: (the event to show or None, new loss points, new log lines)
Batch: TypeAlias = tuple["Progress | None", list[LossPoint], list[str]]


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
        self._last_key: tuple[object, ...] | None = None
        self._last_time = -1e9
        self._pending: Progress | None = None
        self._has_pending = False
        self._losses: list[LossPoint] = []
        self._lines: list[str] = []
        self._last_line = ""
        self._seen_epochs: set[tuple[str, int]] = set()

    @staticmethod
    def _key(progress: Progress) -> tuple[object, ...]:
        return (
            round(progress.fraction * 100),
            progress.epoch,
            progress.stage,
            progress.series,
            progress.text,
        )

    def offer(self, progress: Progress) -> Batch | None:
        """Record ``progress``; return (event, new loss points, new log lines) when it should be sent."""
        point = _loss_point(progress)
        if point is not None and (point.series, point.epoch) not in self._seen_epochs:
            self._seen_epochs.add((point.series, point.epoch))
            self._losses.append(point)
        line = progress.text
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

    def flush(self) -> Batch | None:
        """The held-back final event (and any unsent points), if there is one."""
        if not self._has_pending and not self._losses and not self._lines:
            return None
        progress = self._pending
        self._pending, self._has_pending = None, False
        return self._take(progress)

    def _take(self, progress: Progress | None) -> Batch:
        losses, lines = self._losses, self._lines
        self._losses, self._lines = [], []
        return progress, losses, lines


@runtime_checkable
class ReportsCancelled(Protocol):
    """A result that says it was cut short (services' TrainSummary / ValidationSummary)."""

    cancelled: bool


def _reports_cancelled(result: object) -> bool:
    """Services return a summary with ``cancelled=True`` instead of raising when stopped between targets."""
    if isinstance(result, dict):
        return bool(result.get("cancelled"))
    return isinstance(result, ReportsCancelled) and bool(result.cancelled)


class _Worker(QObject):
    """Runs one job function on its QThread and reports plain data back through queued signals."""

    progressed = Signal(int, object, object, object)  # job id, Progress (or None), loss points, log lines
    succeeded = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int, object)  # job id, the function's result when it returned a cancelled summary

    def __init__(self, job_id: int, fn: JobFunction, stop: threading.Event, log_file: str):
        super().__init__()
        self.job_id = job_id
        self.fn = fn
        self.stop = stop
        self.log_file = log_file
        self.throttle = ProgressThrottle()
        self.home = self.thread()  # the GUI thread that made it: where it must be destroyed

    def _on_progress(self, progress: Progress) -> None:
        sent = self.throttle.offer(progress)
        if sent is not None:
            self.progressed.emit(self.job_id, *sent)

    def _flush(self) -> None:
        sent = self.throttle.flush()
        if sent is not None:
            self.progressed.emit(self.job_id, *sent)

    @Slot()
    def run(self) -> None:
        try:
            result = self.fn(self._on_progress, self.stop.is_set)
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
            # Back to the GUI thread before the thread ends, so the deleteLater that the thread's
            # ``finished`` triggers destroys this object there. Destroyed on the job's thread,
            # ~QObject holds a Qt connection lock (a pool shared with other objects) while PySide
            # asks for the GIL; the GUI thread, holding the GIL, waiting for that lock in a connect(),
            # deadlocked the window (seen in a UI test: both threads idle for minutes).
            self.moveToThread(self.home)
            # quit from inside: JobManager.shutdown() blocks in wait() and cannot run a quit slot
            QThread.currentThread().quit()


class JobHandle(QObject):
    """One submitted job, as its submitter sees it: its own signals, its record, cancel.

    Every signal is emitted on the GUI thread, exactly one of ``finished`` / ``failed`` /
    ``cancelled`` once per job. A job cannot end before control returns to the event loop, so
    connecting right after :meth:`JobManager.submit` never misses the end.
    """

    started = Signal()
    progressed = Signal(object)  # Progress
    finished = Signal(object)  # the job function's result
    failed = Signal(str)  # the sentence to show (or "internal error, see <log file>")
    cancelled = Signal()  # a cancelled summary, if the function returned one, is in job.result

    def __init__(self, manager: JobManager, job: Job):
        super().__init__()
        self._manager = manager
        self.job = job

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def done(self) -> bool:
        return self.job.done

    def cancel(self) -> None:
        self._manager.cancel(self.job.id)


@dataclass
class _Running:
    thread: QThread
    worker: _Worker
    stop: threading.Event


class JobManager(QObject):
    """Queues jobs and runs at most ``max_concurrent`` of them at a time, each on its own QThread.

    ``submit(title, fn)`` calls ``fn(progress, should_stop)`` on a worker thread and returns the
    job's :class:`JobHandle`. ``log_file`` is named in the "internal error" sentence of a job that
    crashed. Every signal is emitted on the GUI thread.
    """

    # views of all jobs; whoever started a job listens on its JobHandle instead
    job_added = Signal(int)
    job_started = Signal(int)
    job_progress = Signal(int, object)
    job_finished = Signal(int, object)
    job_failed = Signal(int, str)
    job_cancelled = Signal(int)
    job_changed = Signal(int)  # any change to a Job record (state, progress, log): panels repaint on it

    _ids = itertools.count(1)

    def __init__(
        self,
        log_file: str | Path | None = None,
        parent: QObject | None = None,
        max_concurrent: int = 1,
    ):
        super().__init__(parent)
        self.log_file = str(log_file) if log_file else "the log file"
        self._max_concurrent = max(1, int(max_concurrent))
        self._jobs: dict[int, Job] = {}
        self._handles: dict[int, JobHandle] = {}
        self._calls: dict[int, JobFunction] = {}
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

    def submit(self, title: str, fn: JobFunction, *, background: bool = False) -> JobHandle:
        """Queue ``fn``; it starts as soon as fewer than ``max_concurrent`` jobs run. A
        ``background`` job (an automatic check, a quick look) is one the jobs panel may keep out of
        sight and quitting does not ask about."""
        job_id = next(self._ids)
        job = Job(job_id, title, background=background)
        handle = JobHandle(self, job)
        self._jobs[job_id] = job
        self._handles[job_id] = handle
        if not self._accepting:
            job.state, job.error = FAILED, "the application is shutting down"
            self.job_added.emit(job_id)
            # on the next turn of the event loop, so that a caller connecting after submit() hears it
            QTimer.singleShot(0, self, lambda: self._failed(job, "the application is shutting down"))
            return handle
        self._calls[job_id] = fn
        self._queue.append(job_id)
        self.job_added.emit(job_id)
        self.job_changed.emit(job_id)
        self._start_next()
        return handle

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
            self._cancelled(job)
            return
        running = self._running.get(job_id)
        if running is not None and not running.stop.is_set():
            running.stop.set()
            job.state = CANCELLING
            self._log(job, "cancelling…")
            self.job_changed.emit(job_id)

    def running_foreground(self) -> list[Job]:
        """Running or queued jobs the user started and would lose by quitting (not background ones)."""
        return [job for job in self._jobs.values() if not job.done and not job.background]

    def running_count(self) -> int:
        return len(self._running)

    def queued_count(self) -> int:
        return len(self._queue)

    def active_count(self) -> int:
        """Jobs that have not ended yet (queued, running or cancelling)."""
        return sum(1 for job in self._jobs.values() if not job.done)

    def job(self, job_id: int) -> Job:
        return self._jobs[job_id]

    def handle(self, job_id: int) -> JobHandle:
        return self._handles[job_id]

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def remove(self, job_id: int) -> None:
        """Forget a finished job (the panel's "clear finished")."""
        job = self._jobs.get(job_id)
        if job is not None and job.done:
            del self._jobs[job_id]
            self._handles.pop(job_id, None)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Run the event loop until every job has ended and its signals were delivered (or the
        timeout passed); True when none is left."""
        deadline = QDeadlineTimer(max(0, int(timeout_ms)))
        while (self.active_count() or self._running) and not deadline.hasExpired():
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            for running in list(self._running.values()):
                running.thread.wait(20)
            self._reap()
        QCoreApplication.sendPostedEvents(None, 0)
        QCoreApplication.processEvents()
        return not self.active_count() and not self._running

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
    def _start_next(self) -> None:
        while self._accepting and self._queue and len(self._running) < self._max_concurrent:
            self._start(self._queue.pop(0))

    def _start(self, job_id: int) -> None:
        fn = self._calls.pop(job_id)
        job = self._jobs[job_id]
        stop = threading.Event()
        thread = QThread(self)
        thread.setObjectName(f"turbofan-job-{job_id}")
        worker = _Worker(job_id, fn, stop, self.log_file)
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
        self._handles[job_id].started.emit()
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
    def _on_progress(
        self, job_id: int, progress: Progress | None, losses: list[LossPoint], lines: list[str]
    ) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.losses.extend(losses)
        for line in lines:
            self._log(job, line)
        if progress is not None:
            job.last_progress = progress
            job.fraction = progress.fraction
            job.epoch = progress.epoch
            job.epochs = progress.epochs
            job.stage = progress.stage
            job.series = progress.series
            if job.fraction >= 0.01 and job.started_at is not None:
                job.eta = job.elapsed * (1.0 - job.fraction) / job.fraction
            handle = self._handles.get(job_id)
            if handle is not None:
                handle.progressed.emit(progress)
            self.job_progress.emit(job_id, progress)
        self.job_changed.emit(job_id)

    def _finish(self, job: Job, state: str) -> None:
        job.state = state
        job.finished_at = time.monotonic()
        job.eta = 0.0 if state == FINISHED else None
        if state == FINISHED:
            job.fraction = 1.0

    # the handle hears of the end first: its submitter reacts before views of all jobs repaint
    def _failed(self, job: Job, message: str) -> None:
        handle = self._handles.get(job.id)
        if handle is not None:
            handle.failed.emit(message)
        self.job_failed.emit(job.id, message)
        self.job_changed.emit(job.id)

    def _cancelled(self, job: Job) -> None:
        handle = self._handles.get(job.id)
        if handle is not None:
            handle.cancelled.emit()
        self.job_cancelled.emit(job.id)
        self.job_changed.emit(job.id)

    @Slot(int, object)
    def _on_succeeded(self, job_id: int, result: object) -> None:
        job = self._jobs[job_id]
        job.result = result
        self._finish(job, FINISHED)
        self._log(job, f"finished in {job.elapsed:.1f} s")
        handle = self._handles.get(job_id)
        if handle is not None:
            handle.finished.emit(result)
        self.job_finished.emit(job_id, result)
        self.job_changed.emit(job_id)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        job = self._jobs[job_id]
        job.error = message
        self._finish(job, FAILED)
        self._log(job, f"failed: {message}")
        self._failed(job, message)

    @Slot(int, object)
    def _on_cancelled(self, job_id: int, result: object) -> None:
        job = self._jobs[job_id]
        job.result = result
        self._finish(job, CANCELLED)
        self._log(job, "cancelled")
        self._cancelled(job)


__all__ = [
    "Job",
    "JobFunction",
    "JobHandle",
    "JobManager",
    "LossPoint",
    "Progress",
    "ProgressSink",
    "ProgressThrottle",
    "ShouldStop",
    "event_progress",
    "target_progress",
]
