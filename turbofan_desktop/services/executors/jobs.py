"""Model jobs as plain data, and what any worker runs for them.

A :class:`FitJob` is everything one target's training needs, picklable so it can cross a process or
machine boundary: the model name (and its spec), the target, the config, the thread count and the
two data splits as :class:`DataPayload` (the data with the hash it had when it was sent, checked on
arrival; no validation split means the model holds out its own share of the training data and the
job is not evaluated). :func:`run_fit_job` builds the model, fits, evaluates, saves the artifact into a temporary
folder and returns it packed as a deterministic tar inside a :class:`FitResult`, with the metrics,
the history and the fit summary. The worker never opens the registry: the process that owns it
registers the result (:mod:`turbofan_desktop.services.training`).

Progress reaches ``emit`` as contract ``ProgressEvent``\\ s whose ``fraction`` is the share of the
whole job done (fitting fills the first :data:`FIT_SHARE`, evaluation the rest), at most
:data:`MAX_EVENTS_PER_SECOND` per second besides one per finished epoch (the loss curve's points),
the last one always delivered. A model error never raises: it comes back as the result's ``error``
sentence.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import Cancelled, IncompatibleDataError, TurbofanError
from turbofan_desktop.plugins.contract import ModelSpec, ProgressEvent, build_config
from turbofan_desktop.registry.artifacts import pack_folder

log = logging.getLogger(__name__)

# Share of one target's progress spent fitting; evaluation takes the rest.
FIT_SHARE = 0.9
MAX_EVENTS_PER_SECOND = 20.0

Emit = Callable[[ProgressEvent], None]
ShouldStop = Callable[[], bool]


# -- the data a job carries -------------------------------------------------------------------------
@dataclass
class DataPayload:
    """One data split shipped to a worker: the dataset itself, the hash it had when it was sent, and
    (for the record) the file it was read from. :meth:`verify` recomputes the hash on arrival."""

    dataset: Dataset
    data_hash: str
    path: str | None = None

    @classmethod
    def of(cls, dataset: Dataset) -> DataPayload:
        return cls(dataset=dataset, data_hash=dataset.data_hash, path=_source_of(dataset))

    def verify(self) -> Dataset:
        """The dataset, after checking that its values still hash to what was sent."""
        arrived = self.dataset.data_hash
        if arrived != self.data_hash:
            where = self.path or self.dataset.name or "the training data"
            raise IncompatibleDataError(
                f"The data of {where} arrived changed (hash {arrived[:12]}, sent as "
                f"{self.data_hash[:12]}); the job was not run."
            )
        return self.dataset


def _source_of(dataset: Dataset) -> str | None:
    return str(dataset.source) if dataset.source else None


@dataclass
class FitJob:
    """One target's training, as data. ``plugin`` is the model's name (``ModelSpec.name``); ``spec``
    travels along so a worker needs the plugin's package installed but not its registration.
    ``val`` None: the model is fitted with no validation data (it holds out its own share of the
    training data) and not evaluated, so the result has no metrics."""

    job_id: str
    plugin: str
    target: str
    config: dict[str, Any]
    seed: int
    threads: int
    train: DataPayload
    val: DataPayload | None
    spec: ModelSpec | None = None


@dataclass
class FitResult:
    """What a worker sends back for a :class:`FitJob`. ``artifact`` is the saved model folder as a
    deterministic tar (empty unless the job succeeded); ``error`` a sentence when it failed;
    ``where`` names the executor, host and worker that ran it."""

    job_id: str
    plugin: str
    target: str
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    seed: int | None = None
    notes: tuple[str, ...] = ()
    # the highest epoch progress reported (what a failed or cancelled run records)
    epochs_seen: int = 0
    artifact: bytes = b""
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    where: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled and bool(self.artifact)

    @classmethod
    def failed(
        cls, job: FitJob, error: str, *, cancelled: bool = False, where: dict | None = None
    ) -> FitResult:
        """A result for a job that never produced one (cancelled while queued, its worker died)."""
        return cls(
            job_id=job.job_id,
            plugin=job.plugin,
            target=job.target,
            error=error,
            cancelled=cancelled,
            where=dict(where or {}),
        )


def drain(events: deque[ProgressEvent]) -> list[ProgressEvent]:
    """The events received so far, oldest first, taken out of ``events`` (what ``RunningJob.events`` returns)."""
    drained = []
    while events:
        drained.append(events.popleft())
    return drained


def worker_identity(executor: str, worker: str | None = None) -> dict[str, str]:
    """``where`` of a result: the executor kind, this host, and the worker (default: this process)."""
    return {"executor": executor, "host": socket.gethostname(), "worker": worker or f"pid {os.getpid()}"}


# -- progress throttling -----------------------------------------------------------------------------
class Throttle:
    """Passes at most ``per_second`` events per second to ``emit``; the newest held-back event goes
    out with the next one allowed or at :meth:`flush` (so the last event always arrives). An event
    that closes an epoch (an epoch number with a loss) always passes: it is a point of the loss
    curve, which must not lose points (one per epoch)."""

    def __init__(self, emit: Emit, per_second: float = MAX_EVENTS_PER_SECOND) -> None:
        self._emit = emit
        self._interval = 1.0 / per_second
        self._last = float("-inf")
        self._held: ProgressEvent | None = None
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval and not _closes_an_epoch(event):
                self._held = event
                return
            self._last, self._held = now, None
        self._send(event)

    def flush(self) -> None:
        with self._lock:
            event, self._held = self._held, None
            if event is not None:
                self._last = time.monotonic()
        if event is not None:
            self._send(event)

    def _send(self, event: ProgressEvent) -> None:
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - a broken progress channel must not fail the job
            log.debug("progress event dropped", exc_info=True)


def _closes_an_epoch(event: ProgressEvent) -> bool:
    return event.epoch is not None and (event.train_loss is not None or event.val_loss is not None)


def _scaled(emit: Emit, offset: float, share: float, seen: list[int] | None = None) -> Emit:
    """Events of one phase (fit or evaluate) with ``fraction`` mapped onto the whole job."""

    def report(event: ProgressEvent) -> None:
        if seen is not None and event.epoch is not None:
            seen[0] = max(seen[0], int(event.epoch))
        try:
            within = min(max(float(event.fraction), 0.0), 1.0)
        except (TypeError, ValueError):
            within = 0.0
        emit(dataclasses.replace(event, fraction=offset + share * within))

    return report


# -- the worker side ---------------------------------------------------------------------------------
def spec_named(name: str) -> ModelSpec:
    """The spec of model ``name`` from the installed plugins (for a job sent without its spec)."""
    from turbofan_desktop.plugins.manager import get_plugin_manager

    return get_plugin_manager().model(name)


def run_fit_job(job: FitJob, emit: Emit, should_stop: ShouldStop, *, where: dict | None = None) -> FitResult:
    """Train, evaluate and pack one target. Never raises for a model error: a failure comes back as
    ``error`` (a TurbofanError's own sentence, or "internal error while training …"), a cancellation
    as ``cancelled``. ``where`` is stamped on the result (default: an in-process worker)."""
    started = time.perf_counter()
    result = FitResult(job_id=job.job_id, plugin=job.plugin, target=job.target)
    result.where = dict(where or worker_identity("inprocess"))
    throttle = Throttle(emit)
    seen = [0]
    try:
        _raise_if_stopped(should_stop)
        train = job.train.verify()
        val = job.val.verify() if job.val is not None else None
        spec = job.spec or spec_named(job.plugin)
        config = build_config(spec.config_class, job.config)
        model = spec.build(config, job.target, threads=job.threads)
        fit = model.fit(train, val, progress=_scaled(throttle, 0.0, FIT_SHARE, seen), should_stop=should_stop)
        _raise_if_stopped(should_stop)
        if val is not None:
            metrics = model.evaluate(
                val, progress=_scaled(throttle, FIT_SHARE, 1.0 - FIT_SHARE), should_stop=should_stop
            )
            result.metrics = {str(k): float(v) for k, v in dict(metrics).items()}
        _raise_if_stopped(should_stop)
        _record_fit(result, fit)
        result.artifact = _packed_artifact(model, train)
    except Cancelled:
        result.cancelled, result.error = True, "cancelled"
    except TurbofanError as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one target's bug must not end the worker or the job
        log.exception("training %s on %s failed", job.plugin, job.target)
        result.error = f"internal error while training {job.target}: {type(exc).__name__}: {exc}"
    finally:
        throttle.flush()
    if result.error is not None:
        result.artifact = b""
    result.epochs_seen = seen[0]
    result.seconds = time.perf_counter() - started
    return result


def _raise_if_stopped(should_stop: ShouldStop) -> None:
    if should_stop():
        raise Cancelled()


def _record_fit(result: FitResult, fit: Any) -> None:
    result.history = [dict(row) for row in getattr(fit, "history", []) or []]
    epochs = getattr(fit, "epochs_run", None)
    result.epochs_run = int(epochs) if epochs is not None else None
    best = getattr(fit, "best_epoch", None)
    result.best_epoch = int(best) if best is not None else None
    result.stopped_early = bool(getattr(fit, "stopped_early", False))
    seed = getattr(fit, "seed", None)
    result.seed = int(seed) if seed is not None else None
    result.notes = tuple(str(n) for n in getattr(fit, "notes", []) or [])


def _packed_artifact(model: Any, train: Dataset) -> bytes:
    """The model saved with its training statistics (what drift is measured against), as a tar."""
    from turbofan_desktop.services.monitoring import with_training_statistics

    with tempfile.TemporaryDirectory(prefix="turbofan-artifact-") as folder:
        with_training_statistics(model.save, train)(Path(folder))
        return pack_folder(Path(folder))


def exception_line(exc: BaseException, *, first_line: bool = False) -> str:
    """An exception as one line for a job's error sentence: its type and message, the message's lines
    joined (multiprocessing's own messages span several) or, with ``first_line``, only the first (a
    remote error may carry a whole traceback)."""
    text = str(exc).strip()
    text = text.splitlines()[0] if first_line and text else " ".join(text.split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "FIT_SHARE",
    "MAX_EVENTS_PER_SECOND",
    "DataPayload",
    "FitJob",
    "FitResult",
    "Throttle",
    "exception_line",
    "run_fit_job",
    "spec_named",
    "worker_identity",
]
