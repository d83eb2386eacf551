"""The Dask executor: model jobs on a Dask cluster (the ``[cluster]`` extra).

``--executor tcp://host:8786`` (or ``tls://``, with Dask's TLS settings) or the ``executor`` setting
names the scheduler; the cluster behind it may be a ``dask scheduler`` / ``dask worker`` pair,
dask-jobqueue on SLURM or dask-kubernetes (docs/cluster.md). Its workers need the app and the model
plugins installed (docs/worker.Dockerfile), never the registry: results come back as data and are
registered by the process that owns it. docs/cluster.md ("Worker settings") says how to start
workers that train as fast as local ones; each job also corrects the allocator setting that Dask's
nanny gives its workers (:mod:`~turbofan_desktop.services.executors.malloc`).

How a job travels:

* **data** — the two splits are sent once per executor and content hash, as the result of a small
  task that the jobs depend on: workers fetch them from each other as they need them, and the
  scheduler computes them again when the worker holding them is lost (a scattered value would be
  lost with it: Dask's active memory manager keeps a single replica). On arrival the task hashes them
  again
  (:meth:`~turbofan_desktop.services.executors.jobs.DataPayload.verify`).
* **progress** — the task publishes its events on the executor's topic with Dask's structured
  events (``Worker.log_event`` → ``Client.subscribe_topic``), at most 20 a second per job.
* **cancel** — a ``distributed.Event`` per job that the task polls (every :data:`CANCEL_POLL_S` at
  most); if the job has not ended :data:`FORCE_AFTER_S` later its future is cancelled
  (``Client.cancel``), so the job reads "cancelled" within a second. Dask cannot stop a running
  thread: a model that never checks keeps its worker thread busy until its fit ends.
* **a lost worker** — the scheduler runs the task again on another worker. Each attempt records its
  worker in a ``distributed.Variable``; an attempt that finds more than ``retries`` earlier ones
  returns a failed result naming the lost workers instead of training. The scheduler's own limit
  (``distributed.scheduler.allowed-failures``, default 3) can end it earlier with ``KilledWorker``,
  which becomes a sentence too.
* **the result** — the ``FitResult`` is the future's value; ``where`` names the executor ("dask"),
  the worker's host and its address.

``distributed`` is imported only inside functions: the app, and its frozen build, import this module
without the extra and say what to install when a ``tcp://`` executor is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import numbers
import os
import socket
import ssl
import threading
import time
import uuid
import warnings
from collections import deque
from typing import Any

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services.executors.jobs import (
    DataPayload,
    FitJob,
    FitResult,
    drain,
    exception_line,
    run_fit_job,
)
from turbofan_desktop.services.executors.malloc import roomy_thresholds

log = logging.getLogger(__name__)

KIND = "dask"
# How long connecting to the scheduler may take before the executor gives up with a sentence.
CONNECT_TIMEOUT_S = 10.0
# A cancelled job still running this long after the request has its future cancelled.
FORCE_AFTER_S = 0.5
# The task asks the scheduler whether its job was cancelled at most this often.
CANCEL_POLL_S = 0.2
# How long a task waits for its attempts record (set before it was submitted).
ATTEMPTS_WAIT_S = 30.0
# The Dask settings of the LocalCluster that ``DaskExecutor.local`` starts (docs/cluster.md recommends
# the same for any cluster): no statistical profiler (it samples the worker's threads every 10 ms
# under the interpreter lock: 0.7 s of the worker's event-loop thread per model against 0.2 s
# without) and no fixed MALLOC_TRIM_THRESHOLD_ in the workers' environment (see executors.malloc).
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


def _distributed() -> Any:
    """The ``distributed`` package, or one ConfigError sentence saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "A Dask executor (tcp://host:port) needs the cluster extra, which is not installed: "
            f"pip install 'turbofan-desktop[cluster]' ({exc})."
        ) from None
    return distributed


# -- what a Dask worker runs ------------------------------------------------------------------------
def plain_event(event: ProgressEvent) -> dict[str, Any]:
    """A progress event as msgpack-able data (numpy numbers become Python ones)."""
    row: dict[str, Any] = {}
    for name, value in dataclasses.asdict(event).items():
        if value is None or isinstance(value, str | bool):
            row[name] = value
        elif isinstance(value, numbers.Integral):
            row[name] = int(value)
        elif isinstance(value, numbers.Real):
            row[name] = float(value)
        else:
            row[name] = str(value)
    return row


def lost_sentence(lost: list[str], retries: int) -> str:
    """Why a job gave up after its workers were lost."""
    workers = ", ".join(lost)
    noun = "worker" if len(lost) == 1 else "workers"
    allowed = f"{retries} retr{'y' if retries == 1 else 'ies'}"
    return (
        f"the Dask {noun} {workers} running it {'was' if len(lost) == 1 else 'were'} lost "
        f"({len(lost)} attempt{'s' if len(lost) != 1 else ''}; the retries setting allows {allowed})"
    )


def run_on_worker(
    job: FitJob,
    train: DataPayload,
    val: DataPayload | None,
    *,
    topic: str,
    job_key: str,
    allowed_retries: int,
) -> FitResult:
    """The Dask task of one job: check the attempts, train with progress and cancel, return data."""
    from distributed import Event, Variable, get_worker

    key = job_key
    worker = get_worker()
    roomy_thresholds()  # a nanny's MALLOC_TRIM_THRESHOLD_ costs ~35 % more CPU per model (executors.malloc)
    where = {"executor": KIND, "host": socket.gethostname(), "worker": str(worker.address)}
    attempts = Variable(f"{key}-attempts")
    earlier = list(attempts.get(timeout=ATTEMPTS_WAIT_S) or [])
    if len(earlier) > allowed_retries:
        return FitResult.failed(job, lost_sentence(earlier, allowed_retries), where=where)
    attempts.set([*earlier, str(worker.address)])

    cancel = Event(f"{key}-cancel")
    checked = [0.0, False]  # when the scheduler was last asked, and its answer

    def should_stop() -> bool:
        now = time.monotonic()
        if not checked[1] and now - checked[0] >= CANCEL_POLL_S:
            checked[0] = now
            with contextlib.suppress(Exception):  # an unreachable scheduler: go on, cancel comes later
                checked[1] = bool(cancel.is_set())
        return checked[1]

    def emit(event: ProgressEvent) -> None:
        worker.log_event(topic, {"key": key, "event": plain_event(event)})

    threads = job.threads or _share_of_cores(int(getattr(worker, "nthreads", 1) or 1))
    job = dataclasses.replace(job, train=train, val=val, threads=threads)
    return run_fit_job(job, emit, should_stop, where=where)


def payload_of(payload: DataPayload) -> DataPayload:
    """The task whose result is a job's data on the cluster (see ``DaskExecutor._shipped``)."""
    return payload


def _share_of_cores(tasks_at_once: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, tasks_at_once))


# -- the submitting process's side --------------------------------------------------------------------
class DaskJob:
    """A job submitted to the cluster; implements ``RunningJob``."""

    def __init__(self, executor: DaskExecutor, job: FitJob, key: str) -> None:
        self.job = job
        self.key = key
        self.future: Any = None
        self.cancel_requested: float | None = None
        self._executor = executor
        self._events: deque[ProgressEvent] = deque()
        self._result: FitResult | None = None
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._result is not None or self.future.done()

    def events(self) -> list[ProgressEvent]:
        return drain(self._events)

    def result(self) -> FitResult:
        with self._lock:
            if self._result is None:
                self._result = self._executor._collect(self)
            return self._result

    def cancel(self) -> None:
        if self.done() or self.cancel_requested is not None:
            return
        self.cancel_requested = time.monotonic()
        self._executor._cancel(self)


class DaskExecutor:
    """Jobs as tasks on the Dask scheduler at ``address``.

    ``workers`` caps how many jobs the training loop keeps submitted at once (0: every thread of
    every worker the cluster has when asked); ``threads`` is the torch threads per job (0: the
    worker's cores shared among its threads); ``retries`` how often a job whose worker was lost is
    run again. ``cluster`` is a cluster object this executor started and therefore closes.
    """

    kind = KIND

    def __init__(
        self,
        address: str,
        *,
        workers: int = 0,
        threads: int = 0,
        retries: int = 1,
        cluster: Any = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        distributed = _distributed()
        self.address = address
        self.threads = max(0, int(threads))
        self.retries = max(0, int(retries))
        self._workers_setting = max(0, int(workers))
        self._cluster = cluster
        if address.lower().startswith("tls://") and not tls_configured():
            raise ConfigError(tls_sentence(address))
        try:
            self.client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except ssl.SSLError as exc:  # a certificate or key that does not load or is not trusted
            raise ConfigError(tls_sentence(address, _reason(exc))) from None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"No Dask scheduler answers at {address} ({_reason(exc)}); start one (dask scheduler) "
                "or check the executor setting."
            ) from None
        except (TypeError, ValueError) as exc:  # distributed's words for TLS settings that do not fit
            if not address.lower().startswith("tls://"):
                raise
            raise ConfigError(tls_sentence(address, _reason(exc))) from None
        self.topic = f"turbofan-progress-{self.client.id}"
        self._jobs: dict[str, DaskJob] = {}
        self._data: dict[str, Any] = {}  # data hash -> the future holding that payload on the cluster
        self._lock = threading.RLock()
        self._closed = False
        self.client.subscribe_topic(self.topic, self._on_event)

    @classmethod
    def local(cls, n_workers: int = 2, threads_per_worker: int = 1, **kwargs: Any) -> DaskExecutor:
        """An executor on a ``LocalCluster`` of ``n_workers`` worker processes that it starts and
        closes (the benchmarks use it; a desktop names a running scheduler instead), with
        :data:`LOCAL_CLUSTER_CONFIG`."""
        distributed = _distributed()
        import dask

        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=None,
            )
        try:
            return cls(cluster.scheduler_address, cluster=cluster, **kwargs)
        except BaseException:
            cluster.close()
            raise

    # -- what the training loop reads -------------------------------------------------------------
    @property
    def workers(self) -> int:
        if self._workers_setting:
            return self._workers_setting
        return max(1, self.threads_in_cluster())

    @property
    def description(self) -> str:
        info = self._workers_info()
        threads = sum(int(w.get("nthreads", 1)) for w in info.values())
        return f"Dask cluster at {self.address} ({len(info)} workers, {threads} threads)"

    def threads_in_cluster(self) -> int:
        return sum(int(w.get("nthreads", 1)) for w in self._workers_info().values())

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> process id (tests kill one)."""
        return dict(self.client.run(os.getpid))

    def _workers_info(self) -> dict[str, dict]:
        try:
            return dict(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        except Exception:  # noqa: BLE001 - a description must not fail; the next submit will say why
            return {}

    # -- jobs --------------------------------------------------------------------------------------
    def submit(self, job: FitJob) -> DaskJob:
        distributed = _distributed()
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in job.job_id)
        key = f"turbofan-fit-{safe}-{uuid.uuid4().hex[:12]}"
        running = DaskJob(self, job, key)
        with self._lock:
            if self._closed:
                running._result = FitResult.failed(job, "cancelled: the executor was closed", cancelled=True)
                return running
            self._jobs[key] = running
        try:
            train = self._shipped(job.train)
            val = self._shipped(job.val) if job.val is not None else None
            distributed.Variable(f"{key}-attempts", client=self.client).set([])
            # the data travel as futures (_shipped); threads 0: this executor's, else the worker's share
            bare = dataclasses.replace(job, train=None, val=None, threads=job.threads or self.threads)
            running.future = self.client.submit(
                run_on_worker,
                bare,
                train,
                val,
                topic=self.topic,
                job_key=key,
                allowed_retries=self.retries,
                key=key,
                pure=False,
            )
        except Exception as exc:  # noqa: BLE001 - a lost scheduler fails this job, not the caller
            running._result = FitResult.failed(
                job,
                f"the job could not be sent to the Dask scheduler at {self.address} ({_reason(exc)})",
            )
            self._forget(running)
        return running

    def _shipped(self, payload: DataPayload) -> Any:
        """The cluster's copy of ``payload``, sent once per content hash as the result of a task
        (not ``Client.scatter``): the active memory manager keeps one replica of a scattered value,
        which dies with its worker, while a task's result is computed again wherever it was lost.
        Workers fetch it from each other as their jobs need it; a cluster without workers yet keeps
        it queued with the jobs."""
        with self._lock:
            future = self._data.get(payload.data_hash)
            if future is None or future.status in ("cancelled", "error", "lost"):
                with warnings.catch_warnings():  # "large object in the task graph": it is the data, sent once
                    warnings.simplefilter("ignore", UserWarning)
                    future = self.client.submit(
                        payload_of,
                        payload,
                        key=f"turbofan-data-{payload.data_hash[:16]}-{uuid.uuid4().hex[:8]}",
                        pure=False,
                    )
                self._data[payload.data_hash] = future
            return future

    def _on_event(self, event: tuple[float, Any]) -> None:
        """A progress message from a task (on the client's event loop): queue it for its job."""
        _, message = event
        try:
            running = self._jobs.get(message["key"])
            if running is not None:
                running._events.append(ProgressEvent(**message["event"]))
        except Exception:  # noqa: BLE001 - a malformed message must not stop the client's loop
            log.debug("unreadable progress message %r", message, exc_info=True)

    def _cancel(self, running: DaskJob) -> None:
        """Ask the task to stop; cancel its future if it has not ended :data:`FORCE_AFTER_S` later."""
        distributed = _distributed()
        with contextlib.suppress(Exception):  # a gone scheduler: the future ends anyway
            distributed.Event(f"{running.key}-cancel", client=self.client).set()
        timer = threading.Timer(FORCE_AFTER_S, self._force_cancel, args=(running,))
        timer.daemon = True
        timer.start()

    def _force_cancel(self, running: DaskJob) -> None:
        if running.future is not None and not running.future.done():
            log.info("job %s did not stop in time: cancelling its Dask task", running.job.job_id)
            with contextlib.suppress(Exception):
                self.client.cancel([running.future], force=True)

    def _collect(self, running: DaskJob) -> FitResult:
        """The job's result from its future, every way a task can end turned into a FitResult."""
        distributed = _distributed()
        future, job = running.future, running.job
        try:
            result = future.result()
        except distributed.KilledWorker as exc:
            result = FitResult.failed(
                job,
                f"the Dask workers running it kept dying; the scheduler gave up ({_reason(exc)})",
                where={"executor": KIND, "host": "", "worker": ""},
            )
        except (Exception, asyncio.CancelledError) as exc:  # a cancelled future raises CancelledError
            if running.cancel_requested is not None:
                result = FitResult.failed(job, "cancelled", cancelled=True)
            elif future.status == "cancelled":
                result = FitResult.failed(
                    job,
                    f"the Dask scheduler at {self.address} dropped the job (the connection or the "
                    f"data were lost: {_reason(exc)})",
                )
            else:
                result = FitResult.failed(job, f"the Dask task failed: {_reason(exc)}")
        if running.cancel_requested is not None and not result.ok:
            result.cancelled, result.error = True, "cancelled"
        self._forget(running)
        return result

    def _forget(self, running: DaskJob) -> None:
        """Drop what the scheduler keeps for a finished job (its attempts record, its cancel flag)."""
        distributed = _distributed()
        with self._lock:
            self._jobs.pop(running.key, None)
        with contextlib.suppress(Exception):
            distributed.Variable(f"{running.key}-attempts", client=self.client).delete()
        if running.cancel_requested is not None:
            with contextlib.suppress(Exception):
                distributed.Event(f"{running.key}-cancel", client=self.client).clear()
        if running.future is not None:
            with contextlib.suppress(Exception):
                running.future.release()

    def close(self) -> None:
        """Cancel what still runs, release the data sent, close the client (and the cluster
        when this executor started it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = list(self._jobs.values())
            data, self._data = list(self._data.values()), {}  # the payload futures
        for job in running:
            job.cancel()
        for job in running:
            with contextlib.suppress(Exception):
                self.client.cancel([job.future], force=True)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.client.cancel(data)
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def tls_configured() -> bool:
    """Whether Dask's settings give this process a TLS certificate and authority to trust (what a
    tls:// scheduler needs: ``distributed.comm.tls.ca-file`` and ``...tls.client.cert``)."""
    import dask

    return bool(dask.config.get("distributed.comm.tls.ca-file", None)) and bool(
        dask.config.get("distributed.comm.tls.client.cert", None)
    )


def tls_sentence(address: str, reason: str = "") -> str:
    """What a tls:// scheduler address needs on this computer (``reason``: what distributed said)."""
    said = f" ({reason})" if reason else ""
    return (
        f"The Dask scheduler {address} speaks TLS: set Dask's TLS settings on this computer "
        "(distributed.comm.tls.ca-file and distributed.comm.tls.client.cert and .key in a Dask config "
        "file such as ~/.config/dask/distributed.yaml, or DASK_DISTRIBUTED__COMM__TLS__CA_FILE and "
        f"the like; docs/cluster.md){said}."
    )


def _reason(exc: BaseException) -> str:
    """The first line of an exception (a task's error may carry the worker's whole traceback)."""
    return exception_line(exc, first_line=True)


__all__ = [
    "FORCE_AFTER_S",
    "KIND",
    "LOCAL_CLUSTER_CONFIG",
    "DaskExecutor",
    "DaskJob",
    "lost_sentence",
    "plain_event",
    "run_on_worker",
]
