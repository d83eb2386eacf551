"""Where model jobs run: the executor seam.

A job (:class:`~turbofan_desktop.services.executors.jobs.FitJob`) is plain picklable data; an
:class:`Executor` runs it somewhere and hands back a :class:`RunningJob` to stream progress from, to
cancel and to wait on. The process that owns the registry registers what comes back — workers never
touch it. Three kinds, chosen by the ``executor`` setting or ``--executor``:

* ``"local"`` (the default): spawn-started worker processes on this machine
  (:class:`~turbofan_desktop.services.executors.local.LocalProcessExecutor`), ``workers`` of them
  (0 = from the core count), ``torch_threads`` torch threads each; the calling process never imports
  torch, a worker that dies fails only its own job;
* ``"inprocess"``: a thread of the calling process (tests, debugging);
* ``"tcp://host:port"`` (or ``"tls://host:port"``): a Dask scheduler (the ``[cluster]`` extra), imported only when asked for:
  ``turbofan_desktop.services.executors.dask_cluster.DaskExecutor``, an :class:`Executor` of kind
  "dask" whose tasks run :func:`run_fit_job` with ``where`` naming the Dask worker.

No Qt and no torch here at import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from turbofan_desktop.config import executor_value
from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services.executors.jobs import (
    DataPayload,
    FitJob,
    FitResult,
    run_fit_job,
)

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

INPROCESS = "inprocess"
LOCAL = "local"
MAX_AUTO_WORKERS = 8


@runtime_checkable
class RunningJob(Protocol):
    """A submitted job, seen from the process that submitted it."""

    def done(self) -> bool:
        """Whether the result is ready (succeeded, failed or cancelled)."""

    def events(self) -> list[ProgressEvent]:
        """The progress events that arrived since the last call (drained)."""

    def result(self) -> FitResult:
        """The job's result; blocks until it is there. Never raises for a failed job."""

    def cancel(self) -> None:
        """Ask the job to stop: cooperatively first; an executor that can stops it by force within
        a second. The result then says ``cancelled``."""


@runtime_checkable
class Executor(Protocol):
    """Runs jobs. ``kind`` is "inprocess", "local" or "dask"; ``description`` one line for the user;
    ``workers`` how many jobs run at once."""

    kind: str
    description: str
    workers: int

    def submit(self, job: FitJob) -> RunningJob: ...

    def close(self) -> None: ...


def auto_workers(cores: int | None = None) -> int:
    """Workers when the setting is 0: one per two usable cores (each worker's torch threads get the
    other), at least one, at most :data:`MAX_AUTO_WORKERS`."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cores // 2))


def check_executor_spec(spec: str, source: str = "--executor") -> str:
    """``spec`` normalised ("inprocess", "local", "tcp://host:port" or "tls://host:port"), or one ConfigError sentence."""
    return executor_value(spec, source)


def executor_for(ws: Workspace, spec: str | None = None, *, workers: int | None = None) -> Executor:
    """A new executor for ``spec`` (default: the ``executor`` setting); the caller closes it.
    ``workers`` overrides the ``workers`` setting (0 = from the core count)."""
    chosen = check_executor_spec(spec) if spec is not None else ws.settings.executor
    count = ws.settings.workers if workers is None else int(workers)
    if count < 0:
        raise ConfigError(f"The number of workers is {count}; expected 0 (automatic) or more.")
    threads = int(ws.settings.torch_threads)
    if chosen == INPROCESS:
        from turbofan_desktop.services.executors.inprocess import InProcessExecutor

        return InProcessExecutor(workers=count or 1)
    if chosen == LOCAL:
        from turbofan_desktop.services.executors.local import LocalProcessExecutor

        return LocalProcessExecutor(workers=count or auto_workers(), threads=threads)
    return _dask_executor(chosen, count, threads, int(ws.settings.retries))


def _dask_executor(address: str, workers: int, threads: int, retries: int) -> Executor:
    """The Dask executor (its module imports ``distributed`` only when one is made, and says what to
    install when the ``[cluster]`` extra is missing)."""
    from turbofan_desktop.services.executors.dask_cluster import DaskExecutor

    return DaskExecutor(address, workers=workers, threads=threads, retries=retries)


__all__ = [
    "INPROCESS",
    "LOCAL",
    "DataPayload",
    "Executor",
    "FitJob",
    "FitResult",
    "RunningJob",
    "auto_workers",
    "check_executor_spec",
    "executor_for",
    "run_fit_job",
]
