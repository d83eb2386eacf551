"""Applying a registered version in a worker: a :class:`PredictJob` and :func:`run_predict_job`.

The calling process checks the version (its artifact's sha256, the data's applicability) and sends
the job: the version's spec, config and artifact folder (a path the worker can read — the local
executor runs on the same machine), the task's method ("detect", "forecast", "predict_rul"), its
arguments and the data. The worker loads the model (kept warm in :data:`_MODELS` for the next job
on the same version), checks it offers the task on the data's sensors, runs it and returns the
plugin's result object (plain dataclasses of arrays). A refusal comes back as the error's class
name and sentence, so the caller raises the same error it would have raised in process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turbofan_desktop.errors import Cancelled, RegistryError, TurbofanError
from turbofan_desktop.plugins.contract import ModelSpec, build_config
from turbofan_desktop.services.executors.jobs import DataPayload, Throttle, worker_identity

log = logging.getLogger(__name__)

# method name -> the task it serves ("": every model has it)
METHODS = {"detect": "anomaly", "forecast": "forecast", "predict_rul": "rul", "evaluate": ""}
# loaded models kept per worker process, least recently used first
MODEL_CACHE_SIZE = 4
_MODELS: OrderedDict[tuple[str, str], Any] = OrderedDict()
_MODELS_LOCK = threading.Lock()


@dataclass
class PredictJob:
    """One application of a version to data. ``name`` is the version as the user knows it (for
    error sentences); ``arguments`` the method's keyword arguments (units, horizon, labels)."""

    job_id: str
    version_id: int
    name: str
    spec: ModelSpec
    target: str
    config: dict[str, Any]
    threads: int
    artifact_dir: str
    artifact_sha256: str
    method: str
    data: DataPayload
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class PredictResult:
    """The plugin's result (``value``), or the error's class name and sentence."""

    job_id: str
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    cancelled: bool = False
    seconds: float = 0.0
    where: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


def runner_for(job: Any) -> Callable[..., Any]:
    if isinstance(job, PredictJob):
        return run_predict_job
    raise TypeError(f"no runner for a {type(job).__name__}")


def failed_result(
    job: Any, error: str, *, cancelled: bool = False, where: dict | None = None
) -> PredictResult:
    return PredictResult(job_id=job.job_id, error=error, cancelled=cancelled, where=dict(where or {}))


def run_predict_job(job: PredictJob, emit, should_stop, *, where: dict | None = None) -> PredictResult:
    """Load (or reuse) the version's model, check it serves the task on the data, run the method.
    Never raises for a model or data problem: it comes back as ``error`` and ``error_type``."""
    started = time.perf_counter()
    result = PredictResult(job_id=job.job_id, where=dict(where or worker_identity("inprocess")))
    throttle = Throttle(emit)
    try:
        if should_stop():
            raise Cancelled()
        dataset = job.data.verify()
        model = _loaded(job)
        result.value = _apply(job, model, dataset, throttle, should_stop)
    except Cancelled:
        result.cancelled, result.error = True, "cancelled"
    except TurbofanError as exc:
        result.error, result.error_type = str(exc), type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a model's bug must not end the worker
        log.exception("applying %s failed", job.name)
        result.error = f"internal error while applying {job.name}: {type(exc).__name__}: {exc}"
    finally:
        throttle.flush()
    result.seconds = time.perf_counter() - started
    return result


def _apply(job: PredictJob, model: Any, dataset: Any, emit, should_stop) -> Any:
    from turbofan_desktop.services.inference import require_model_serves

    task = METHODS.get(job.method)
    if task is None:
        raise TurbofanError(f"Unknown model method '{job.method}'.")
    if task:
        require_model_serves(job.name, job.spec, model, task, dataset)
    arguments = dict(job.arguments)
    if job.method in ("detect", "evaluate"):
        return getattr(model, job.method)(dataset, progress=emit, should_stop=should_stop, **arguments)
    return getattr(model, job.method)(dataset, **arguments)


def _loaded(job: PredictJob) -> Any:
    """The model of ``job``'s version, from this worker's cache when the artifact is the same."""
    key = (job.artifact_dir, job.artifact_sha256)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            _MODELS.move_to_end(key)
            return model
    from turbofan_desktop.services._common import artifact_problem

    config = build_config(job.spec.config_class, job.config)
    try:
        model = job.spec.load(Path(job.artifact_dir), config=config, target=job.target, threads=job.threads)
    except TurbofanError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged artifact is the user's to hear of
        log.warning("loading the artifact of version %s failed", job.version_id, exc_info=True)
        raise RegistryError(
            f"The artifact of version {job.version_id} cannot be loaded: {artifact_problem(exc)}."
        ) from None
    with _MODELS_LOCK:
        _MODELS[key] = model
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
    return model


__all__ = ["METHODS", "PredictJob", "PredictResult", "failed_result", "run_predict_job", "runner_for"]
