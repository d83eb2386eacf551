"""The local process executor: a pool of spawn-started worker processes on this machine.

Each worker is a fresh interpreter (multiprocessing's "spawn" start method: no copy of the calling
process, its threads or its Qt state) joined to the pool by a duplex pipe of its own. The pool sends
a worker one job at a time; the worker streams the job's progress events back on its pipe and then
its result. One dispatcher thread in the calling process waits on every pipe and every worker's
process sentinel at once, so:

* a worker that dies (SIGKILL, the kernel's OOM killer, a segfault in native code) is noticed at
  once: its job's result says "the worker process died (signal SIGKILL)" and a fresh worker takes its
  place when there is work for it; the other jobs carry on;
* cancelling a running job first asks its worker to stop (the model sees ``should_stop()`` turn
  true); if the job has not ended :data:`FORCE_AFTER_S` later, the worker is killed and replaced —
  the job is cancelled within a second either way. A queued job is cancelled at once.

Workers stay warm between jobs (torch and the plugins are imported once per worker). The calling
process never imports torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services.executors.jobs import (
    FitJob,
    FitResult,
    drain,
    exception_line,
    run_fit_job,
    worker_identity,
)
from turbofan_desktop.services.executors.malloc import roomy_thresholds

log = logging.getLogger(__name__)

# A cancelled job still running this long after the request is stopped by killing its worker.
FORCE_AFTER_S = 0.5
# The dispatcher wakes at least this often (cancel deadlines are checked then).
TICK_S = 0.05
# How long close() lets idle workers quit before killing them.
QUIT_WAIT_S = 1.0
# Workers run at this lower CPU priority (POSIX nice increment): when the cores are contended the
# window's process is scheduled first, so training never makes the GUI stutter.
WORKER_NICENESS = 5


# -- what runs in a worker process -------------------------------------------------------------------
def _runner_for(job: Any):
    """The function that runs ``job`` in a worker: ``fn(job, emit, should_stop, *, where)``."""
    if isinstance(job, FitJob):
        return run_fit_job
    from turbofan_desktop.services.executors import predict

    return predict.runner_for(job)


def _failed_result(job: Any, error: str, *, cancelled: bool = False, where: dict | None = None) -> Any:
    if isinstance(job, FitJob):
        return FitResult.failed(job, error, cancelled=cancelled, where=where)
    from turbofan_desktop.services.executors import predict

    return predict.failed_result(job, error, cancelled=cancelled, where=where)


def worker_main(conn: Connection, name: str, threads: int) -> None:
    """The body of a worker process: run jobs sent on ``conn`` until told to quit or the pool goes.

    A listener thread reads the pipe, so a "cancel" reaches the stop flag while the main thread
    trains; the main thread runs one job at a time and sends its events and result back.
    """
    _limit_native_threads(threads)
    _lower_priority()
    roomy_thresholds()  # where the app's environment fixed a malloc threshold (executors.malloc)
    # Ctrl-C in a terminal reaches the whole process group: the pool cancels its jobs, the worker
    # does not die of it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    inbox: queue.Queue[Any] = queue.Queue()
    send_lock = threading.Lock()
    current: list[str | None] = [None]

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    def listen() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the pool is gone: finish nothing more
                stop.set()
                inbox.put(None)
                return
            if message[0] == "run":
                current[0] = message[1]
                stop.clear()
                inbox.put(message)
            elif message[0] == "cancel" and message[1] == current[0]:
                stop.set()
            elif message[0] == "quit":
                inbox.put(None)
                return

    threading.Thread(target=listen, name="turbofan-worker-listener", daemon=True).start()
    where_name = f"{name} (pid {os.getpid()})"
    try:
        send(("ready", name))  # the pool tells a failed start from a death while working by it
    except (OSError, EOFError):
        return
    while True:
        message = inbox.get()
        if message is None:
            return
        _, job_id, job = message
        if getattr(job, "threads", None) == 0:  # "as many as usable": this worker's share of the cores
            job = dataclasses.replace(job, threads=threads)
        where = worker_identity("local", where_name)
        try:
            result = _runner_for(job)(
                job, lambda e, i=job_id: send(("event", i, e)), stop.is_set, where=where
            )
        except Exception as exc:  # noqa: BLE001 - runners return errors; this is the last guard
            log.exception("job %s failed in %s", job_id, where_name)
            result = _failed_result(
                job, f"internal error in {where_name}: {type(exc).__name__}: {exc}", where=where
            )
        current[0] = None
        try:
            send(("result", job_id, result))
        except (OSError, EOFError):
            return


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not on this platform, or not allowed
        os.nice(WORKER_NICENESS)


def _limit_native_threads(threads: int) -> None:
    """Before anything imports numpy or torch: at most ``threads`` OpenMP/BLAS threads (0 = theirs)."""
    if threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(threads)


# -- the calling process's side ------------------------------------------------------------------------
class ProcessJob:
    """A job submitted to the pool; implements ``RunningJob``."""

    def __init__(self, job: Any, pool: LocalProcessExecutor) -> None:
        self.job = job
        self._pool = pool
        self._events: deque[ProgressEvent] = deque()
        self._done = threading.Event()
        self._result: Any = None
        self.cancel_requested: float | None = None  # monotonic time of the request

    def done(self) -> bool:
        return self._done.is_set()

    def events(self) -> list[ProgressEvent]:
        return drain(self._events)

    def result(self) -> Any:
        self._done.wait()
        return self._result

    def cancel(self) -> None:
        self._pool.cancel(self)

    def _finish(self, result: Any) -> None:
        if not self._done.is_set():
            self._result = result
            self._done.set()


class _Worker:
    """One worker process as the pool sees it."""

    def __init__(self, process: Any, conn: Connection, name: str) -> None:
        self.process = process
        self.conn = conn
        self.name = name
        self.job: ProcessJob | None = None
        self.send_lock = threading.Lock()
        self.ready = False  # worker_main said so: the process got past its start

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.process.pid})"

    def send(self, message: tuple) -> bool:
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, EOFError, ValueError):
            return False


def death_sentence(exitcode: int | None) -> str:
    """Why a worker ended, as the failed job's error."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"the worker process died (signal {name})"
    return f"the worker process died (exit code {exitcode})"


def start_failure_sentence(exitcode: int | None) -> str:
    """Why a worker that ended before it was ready (it never reached :func:`worker_main`) failed
    its job. The usual cause: a script without a main guard, whose top-level code every
    spawn-started worker runs again while importing it (and cannot start workers of its own then)."""
    return (
        f"the worker process ended while starting (exit code {exitcode}), before it could run the job; "
        "its error output says why. When the calling program is a Python script, its top-level code "
        'must be under `if __name__ == "__main__":`, because each worker process imports the script'
    )


class LocalProcessExecutor:
    """``workers`` spawn-started processes running jobs; ``threads`` torch threads each (0 = the
    usable cores shared out between the workers)."""

    kind = "local"

    def __init__(self, workers: int = 1, threads: int = 0) -> None:
        self.workers = max(1, int(workers))
        self.threads = int(threads) if threads > 0 else _share_of_cores(self.workers)
        self.description = (
            f"{self.workers} local worker process{'es' if self.workers != 1 else ''}, "
            f"{self.threads} torch thread{'s' if self.threads != 1 else ''} each"
        )
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()
        self._pending: deque[ProcessJob] = deque()
        self._pool: list[_Worker] = []
        self._numbers = itertools.count(1)
        self._wake_reader, self._wake_writer = self._context.Pipe(duplex=False)
        self._closed = False
        self._dispatcher: threading.Thread | None = None
        self.deaths = 0  # workers that died (tests and benchmarks read it)

    # -- public ---------------------------------------------------------------------------------
    def submit(self, job: Any) -> ProcessJob:
        running = ProcessJob(job, self)
        with self._lock:
            if self._closed:
                running._finish(_failed_result(job, "the executor was closed", cancelled=True))
                return running
            self._pending.append(running)
            self._start_dispatcher()
        self._wake()
        return running

    def start(self) -> None:
        """Start every worker now (they import their libraries while the caller does other work)."""
        with self._lock:
            self._start_dispatcher()
            while len(self._pool) < self.workers:
                self._spawn()
        self._wake()

    def cancel(self, running: ProcessJob) -> None:
        with self._lock:
            if running.done():
                return
            if running in self._pending:
                self._pending.remove(running)
                running._finish(_failed_result(running.job, "cancelled", cancelled=True))
                return
            if running.cancel_requested is None:
                running.cancel_requested = time.monotonic()
            worker = self._worker_of(running)
        if worker is not None:
            worker.send(("cancel", getattr(running.job, "job_id", "")))
        self._wake()

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (tests kill one)."""
        with self._lock:
            return [w.process.pid for w in self._pool if w.process.pid is not None]

    def busy_worker_pid(self, running: ProcessJob) -> int | None:
        """The pid of the worker running ``running`` (None while it is queued)."""
        with self._lock:
            worker = self._worker_of(running)
            return worker.process.pid if worker is not None else None

    def close(self) -> None:
        """Cancel what is queued, stop every worker (killing those that do not quit in time)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            workers = list(self._pool)
        for running in pending:
            running._finish(_failed_result(running.job, "cancelled: the executor was closed", cancelled=True))
        self._wake()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=5)
        for worker in workers:
            worker.send(("quit",))
        deadline = time.monotonic() + QUIT_WAIT_S
        for worker in workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=1)
            if worker.job is not None:
                worker.job._finish(
                    _failed_result(worker.job.job, "cancelled: the executor was closed", cancelled=True)
                )
            worker.conn.close()
        with self._lock:
            self._pool.clear()

    # -- the dispatcher ---------------------------------------------------------------------------
    def _start_dispatcher(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(
                target=self._loop, name="turbofan-local-executor", daemon=True
            )
            self._dispatcher.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed: nobody is waiting any more
            self._wake_writer.send_bytes(b"")

    def _loop(self) -> None:
        """The dispatcher thread. It must never end while jobs wait on it (nobody else would finish
        them): an unexpected error fails the jobs it holds, with the error, and the loop goes on."""
        while True:
            try:
                if not self._step():
                    return
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.exception("the local executor's dispatcher failed")
                self._fail_everything(f"internal error in the local executor: {type(exc).__name__}: {exc}")

    def _step(self) -> bool:
        """One round: hand out work, then wait for a message, a worker's end or a wake-up (False: closed)."""
        with self._lock:
            if self._closed:
                return False
            self._assign()
            self._enforce_cancel_deadlines()
            watched: dict[Any, tuple[str, _Worker | None]] = {self._wake_reader: ("wake", None)}
            for worker in self._pool:
                watched[worker.conn] = ("message", worker)
                watched[worker.process.sentinel] = ("ended", worker)
        for ready in wait(list(watched), timeout=TICK_S):
            what, worker = watched[ready]
            if what == "wake":
                self._drain_wakeups()
            elif what == "message":
                self._receive(worker)
            else:
                self._reap(worker)
        return True

    def _fail_everything(self, sentence: str) -> None:
        """Fail every queued and running job with ``sentence`` (their workers are killed: a worker
        whose job is abandoned must not send its result to the next one)."""
        with self._lock:
            self._fail_pending(sentence)
            busy = [w for w in self._pool if w.job is not None]
        for worker in busy:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                worker.process.kill()
            if worker.job is not None:
                worker.job._finish(_failed_result(worker.job.job, sentence))

    def _drain_wakeups(self) -> None:
        while self._wake_reader.poll():
            self._wake_reader.recv_bytes()

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        name = f"local-{next(self._numbers)}"
        process = self._context.Process(
            target=worker_main, args=(theirs, name, self.threads), name=f"turbofan-{name}", daemon=True
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours, name)
        self._pool.append(worker)
        log.info("started worker %s", worker.label)
        return worker

    def _assign(self) -> None:
        """Hand queued jobs to idle workers, starting workers up to the pool size. A worker that
        cannot be started fails the queued jobs with the reason (it is not retried in a loop)."""
        while self._pending:
            idle = next((w for w in self._pool if w.job is None), None)
            if idle is None:
                if len(self._pool) >= self.workers:
                    return
                try:
                    idle = self._spawn()
                except Exception as exc:  # noqa: BLE001 - e.g. multiprocessing refusing to start one
                    self._fail_pending(f"no worker process could be started: {exception_line(exc)}")
                    return
            running = self._pending.popleft()
            idle.job = running
            try:
                sent = idle.send(("run", running.job.job_id, running.job))
            except Exception as exc:  # noqa: BLE001 - the job cannot be pickled: it fails, not the pool
                idle.job = None
                running._finish(
                    _failed_result(
                        running.job, f"the job could not be sent to a worker: {exception_line(exc)}"
                    )
                )
                continue
            if not sent:
                # the worker has gone: the job stays its own, and fails with its death (_reap),
                # rather than being sent to a replacement that may end the same way, forever
                return

    def _fail_pending(self, sentence: str) -> None:
        pending, self._pending = list(self._pending), deque()
        for running in pending:
            running._finish(_failed_result(running.job, sentence))

    def _enforce_cancel_deadlines(self) -> None:
        now = time.monotonic()
        for worker in self._pool:
            running = worker.job
            asked = running.cancel_requested if running is not None else None
            if asked is not None and now - asked >= FORCE_AFTER_S and worker.process.is_alive():
                log.info("job %s did not stop in time: killing %s", running.job.job_id, worker.label)
                worker.process.kill()

    def _worker_of(self, running: ProcessJob) -> _Worker | None:
        return next((w for w in self._pool if w.job is running), None)

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            pass  # the sentinel reports the end of the process
        except Exception:  # noqa: BLE001 - an unreadable message must not stop the dispatcher
            log.exception("unreadable message from %s", worker.label)

    def _handle(self, worker: _Worker, message: tuple) -> None:
        kind, job_id = message[0], message[1]
        if kind == "ready":
            worker.ready = True
            return
        running = worker.job
        if running is None or running.job.job_id != job_id:
            return
        if kind == "event":
            running._events.append(message[2])
        elif kind == "result":
            with self._lock:
                worker.job = None
            running._finish(message[2])
            self._wake()

    def _reap(self, worker: _Worker) -> None:
        """A worker process ended: read what it still sent, fail its job if it had one, replace it."""
        worker.process.join(timeout=1)
        self._receive(worker)
        with self._lock:
            if worker in self._pool:
                self._pool.remove(worker)
            running, worker.job = worker.job, None
        worker.conn.close()
        if running is not None and not running.done():
            where = worker_identity("local", worker.label)
            if running.cancel_requested is not None:
                running._finish(_failed_result(running.job, "cancelled", cancelled=True, where=where))
            else:
                self.deaths += 1
                exitcode = worker.process.exitcode
                started = worker.ready or (exitcode is not None and exitcode < 0)
                sentence = death_sentence(exitcode) if started else start_failure_sentence(exitcode)
                log.warning("%s: %s while running job %s", worker.label, sentence, running.job.job_id)
                running._finish(_failed_result(running.job, sentence, where=where))
        # a replacement starts when there is work for it (_assign), so a worker that cannot even
        # start (a broken installation) is not restarted in a loop


def _share_of_cores(workers: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


__all__ = [
    "FORCE_AFTER_S",
    "LocalProcessExecutor",
    "ProcessJob",
    "death_sentence",
    "start_failure_sentence",
    "worker_main",
]
