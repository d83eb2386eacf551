"""The in-process executor: each job on a thread of the calling process.

What tests and ``--executor inprocess`` use. Cancellation is cooperative only (a thread cannot be
stopped by force): the model stops at its next ``should_stop`` check, normally within a batch.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services.executors.jobs import FitJob, FitResult, drain, run_fit_job, worker_identity


class ThreadJob:
    """A job running on its own thread; implements ``RunningJob``."""

    def __init__(self, job: FitJob, worker: str, slots: threading.Semaphore) -> None:
        self.job = job
        self._events: deque[ProgressEvent] = deque()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._result: FitResult | None = None
        self._worker = worker
        self._slots = slots
        self._thread = threading.Thread(target=self._run, name=f"turbofan-job-{job.job_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._slots:  # at most ``workers`` jobs train at once
            if self._stop.is_set():
                self._result = FitResult.failed(self.job, "cancelled", cancelled=True)
            else:
                where = worker_identity("inprocess", self._worker)
                self._result = run_fit_job(self.job, self._events.append, self._stop.is_set, where=where)
        self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def events(self) -> list[ProgressEvent]:
        return drain(self._events)

    def result(self) -> FitResult:
        self._done.wait()
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        self._stop.set()


class InProcessExecutor:
    """Runs :func:`run_fit_job` on threads of this process, ``workers`` at a time."""

    kind = "inprocess"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self.description = f"in this process ({self.workers} at a time)"
        self._slots = threading.Semaphore(self.workers)
        self._numbers = itertools.count(1)

    def submit(self, job: FitJob) -> ThreadJob:
        return ThreadJob(job, f"thread {next(self._numbers)}", self._slots)

    def close(self) -> None:
        """Nothing to release: job threads end with their jobs."""


__all__ = ["InProcessExecutor", "ThreadJob"]
