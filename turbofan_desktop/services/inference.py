"""Applying a registered version: anomaly detection, forecasting and remaining useful life.

A version's artifact is loaded once per workspace (its sha256 is checked by the registry before the
plugin reads it) and kept in the workspace's cache. Each task first checks that the version's model
offers it and that the data carries the sensors the version was trained on, then runs the
applicability check (:mod:`~turbofan_desktop.services.applicability`): data out of the version's scope
(another fleet, another time axis, values far outside the training range) raises
:class:`~turbofan_desktop.services.applicability.OutOfScopeError` unless the caller passes
``accept_out_of_scope=True`` — after showing the verdict to the user, who chose to go on.
:func:`detect_with_drift` also measures the detected data's drift against the version's training data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.drift import DriftReport
from turbofan_desktop.errors import (
    Cancelled,
    IncompatibleDataError,
    PluginError,
    RegistryError,
    TurbofanError,
)
from turbofan_desktop.plugins.contract import (
    ALL_TARGETS,
    TASK_PROTOCOLS,
    AnomalyModel,
    DetectionResult,
    ForecastModel,
    ForecastResult,
    ModelSpec,
    ProgressEvent,
    RULModel,
    RULResult,
    build_config,
    no_progress,
)
from turbofan_desktop.services import feedback
from turbofan_desktop.services._common import artifact_problem, stop_checker
from turbofan_desktop.services.applicability import require_applicable
from turbofan_desktop.services.monitoring import check_drift
from turbofan_desktop.services.naming import version_name_of

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)


def load_model(ws: Workspace, version_id: int) -> tuple[ModelSpec, Any]:
    """The spec and the loaded model of a version (artifact sha256 verified; cached per workspace).

    The cache is keyed by id *and* artifact hash: SQLite may hand a deleted version's id to a new
    version, which must never be served the old model.
    """
    record = ws.registry.get(int(version_id))
    cached = ws.cached_model(int(version_id))
    if cached is not None and cached[2] == record.artifact_sha256:
        return cached[0], cached[1]
    spec = ws.plugins.model(record.plugin)
    directory = ws.registry.artifact_dir(int(version_id))  # raises RegistryError on a sha256 mismatch
    config = build_config(spec.config_class, _config_values(spec, record.config))
    try:
        model = spec.load(directory, config=config, target=record.target, threads=ws.settings.torch_threads)
    except TurbofanError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or hostile artifact is the user's to hear of
        log.warning("loading the artifact of version %s failed", version_id, exc_info=True)
        raise RegistryError(
            f"The artifact of version {version_id} cannot be loaded: {artifact_problem(exc)}."
        ) from None
    ws.cache_model(int(version_id), (spec, model, record.artifact_sha256))
    return spec, model


def _config_values(spec: ModelSpec, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stored config, minus settings the model no longer has (an older plugin version)."""
    known = {row["name"] for row in spec.schema()}
    return {k: v for k, v in dict(stored or {}).items() if k in known}


def _require_task(name: str, spec: ModelSpec, model: Any, task: str) -> None:
    """The spec must name the task, and the model must fulfil the task's protocol."""
    if task not in spec.tasks:
        raise PluginError(
            f"{name} is a '{spec.name}' model, which does not offer {task} "
            f"(it offers {', '.join(spec.tasks)})."
        )
    protocol = TASK_PROTOCOLS[task]
    if not isinstance(model, protocol):
        raise PluginError(
            f"The '{spec.name}' model of {name} declares the {task} task but does not "
            f"offer it ({protocol.__name__} needs {', '.join(sorted(_protocol_methods(protocol)))})."
        )


def _protocol_methods(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_") and callable(vars(protocol)[name])}


def _require_sensors(name: str, model: Any, dataset: Dataset) -> None:
    """The sensors the version was trained on must be in the data."""
    target = getattr(model, "target", ALL_TARGETS)
    needed = [target] if target != ALL_TARGETS else list(getattr(model, "sensors", None) or [])
    missing = [s for s in needed if s not in dataset.frame.columns]
    if missing:
        where = str(dataset.source) if dataset.source else (dataset.name or "the data")
        raise IncompatibleDataError(
            f"{name} needs sensor(s) {', '.join(missing)}, which {where} does not have."
        )


def _require_units(dataset: Dataset, units: list[Any] | None) -> list[Any] | None:
    if units is None:
        return None
    known = set(dataset.units)
    by_text = {str(u): u for u in known}
    resolved = []
    for unit in units:
        if unit in known:
            resolved.append(unit)
        elif str(unit) in by_text:
            resolved.append(by_text[str(unit)])
        else:
            where = str(dataset.source) if dataset.source else (dataset.name or "the data")
            raise IncompatibleDataError(f"Unit {unit} is not in {where}.")
    return resolved


def require_model_serves(name: str, spec: ModelSpec, model: Any, task: str, dataset: Dataset) -> None:
    """The loaded model offers ``task`` and the data carries the sensors it was trained on (run
    where the model is loaded: here, or in a worker process)."""
    _require_task(name, spec, model, task)
    _require_sensors(name, model, dataset)


def runs_in_worker(ws: Workspace) -> bool:
    """Whether models are applied in a local worker process (the ``executor`` setting "local"), so
    this process never imports the model's libraries; otherwise they load here."""
    return ws.settings.executor == "local"


def _prepared(ws: Workspace, version_id: int, task: str, dataset: Dataset, accept_out_of_scope: bool) -> Any:
    """The version's loaded model, checked to offer ``task`` on ``dataset``'s sensors, with the
    dataset in its scope (or the caller accepting that it is not). With worker processes, a stand-in
    whose calls run there (and check the task and sensors there, before the model runs)."""
    require_applicable(ws, version_id, dataset, accept=accept_out_of_scope)  # before a model loads
    if runs_in_worker(ws):
        return WorkerModel(ws, int(version_id))
    spec, model = load_model(ws, version_id)
    require_model_serves(version_name_of(ws, version_id), spec, model, task, dataset)
    return model


def model_for(ws: Workspace, version_id: int) -> Any:
    """The version's model where models run: loaded here, or a :class:`WorkerModel` stand-in (its
    artifact's sha256 checked either way)."""
    if runs_in_worker(ws):
        return WorkerModel(ws, int(version_id))
    return load_model(ws, version_id)[1]


def version_tasks(ws: Workspace, version_id: int) -> tuple[str, ...]:
    """The tasks a version's model declares (from its plugin's spec; nothing is loaded)."""
    record = ws.registry.get(int(version_id))
    return tuple(ws.plugins.model(record.plugin).tasks)


class WorkerModel:
    """A version's model as seen from this process when models run in worker processes: each call
    is a :class:`~turbofan_desktop.services.executors.predict.PredictJob` on the workspace's
    prediction executor, whose worker keeps the model loaded for the next call. The artifact's
    sha256 is checked here, when the stand-in is made; errors come back as the same error classes."""

    POLL_S = 0.01

    def __init__(self, ws: Workspace, version_id: int) -> None:
        record = ws.registry.get(version_id)
        self.ws = ws
        self.version_id = version_id
        self.record = record
        self.spec = ws.plugins.model(record.plugin)
        self.directory = ws.registry.artifact_dir(version_id)  # raises RegistryError on a sha256 mismatch
        self.name = version_name_of(ws, version_id)
        self.target = record.target

    def detect(self, data: Dataset, *, units=None, progress=no_progress, should_stop=None, **labels: Any):
        return self._run("detect", data, progress, should_stop, units=units, **labels)

    def forecast(self, data: Dataset, *, horizon: int | None = None, units=None):
        return self._run("forecast", data, no_progress, None, horizon=horizon, units=units)

    def predict_rul(self, data: Dataset):
        return self._run("predict_rul", data, no_progress, None)

    def evaluate(self, data: Dataset, *, progress=no_progress, should_stop=None) -> dict[str, float]:
        return self._run("evaluate", data, progress, should_stop)

    def _run(self, method: str, data: Dataset, progress, should_stop, **arguments: Any) -> Any:
        from turbofan_desktop.services.executors.jobs import DataPayload
        from turbofan_desktop.services.executors.predict import PredictJob

        job = PredictJob(
            job_id=f"{self.name}/{method}/{time.monotonic_ns()}",
            version_id=self.version_id,
            name=self.name,
            spec=self.spec,
            target=self.target,
            config=_config_values(self.spec, self.record.config),
            threads=int(self.ws.settings.torch_threads),
            artifact_dir=str(self.directory),
            artifact_sha256=str(self.record.artifact_sha256),
            method=method,
            data=DataPayload.of(data),
            arguments=arguments,
        )
        running = self.ws.executor("predict").submit(job)
        stop, asked = stop_checker(should_stop), False
        while not running.done():
            for event in running.events():
                progress(event)
            if not asked and stop():
                running.cancel()
                asked = True
            time.sleep(self.POLL_S)
        for event in running.events():
            progress(event)
        result = running.result()
        if result.cancelled:
            raise Cancelled()
        if result.error is not None:
            raise _error_named(result.error_type, result.error)
        return result.value


def _error_named(name: str | None, sentence: str) -> TurbofanError:
    """The error a worker reported, as the same class when this program knows it."""
    import turbofan_desktop.errors as errors

    kind = getattr(errors, name or "", None)
    if isinstance(kind, type) and issubclass(kind, TurbofanError):
        try:
            return kind(sentence)
        except TypeError:
            pass
    return TurbofanError(sentence)


def detect(
    ws: Workspace,
    version_id: int,
    dataset: Dataset,
    *,
    units: list[Any] | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    record_kpis: bool = True,
    accept_out_of_scope: bool = False,
) -> DetectionResult:
    """Anomaly ranges (on the data's own time axis) of the version's target, per unit.

    User labels on this data (any version of the target) reach a model that asks for them
    (:func:`_label_arguments`); when some detected unit has labels, precision / recall / F0.5
    against them are appended to the version's KPI history (``feedback.record_detection_kpis``),
    unless ``record_kpis`` is False: a report only reads the registry, it never adds to its history.
    """
    model: AnomalyModel = _prepared(ws, version_id, "anomaly", dataset, accept_out_of_scope)
    result = model.detect(
        dataset,
        units=_require_units(dataset, units),
        progress=progress or no_progress,
        should_stop=stop_checker(should_stop),
        **_label_arguments(ws, version_id, dataset),
    )
    if record_kpis:
        feedback.record_detection_kpis(ws, version_id, result, dataset)
    return result


def _label_arguments(ws: Workspace, version_id: int, dataset: Dataset) -> dict[str, Any]:
    """``{"labels": [...]}`` when the user labelled this data (:class:`AnomalyModel` takes them; the
    model decides whether they matter), otherwise nothing. The plugin API speaks plain dicts, not
    registry records."""
    labels = feedback.labels_for_data(ws, version_id, dataset)
    return {"labels": [label.to_dict() for label in labels]} if labels else {}


@dataclass
class MonitoredDetection:
    """A detection and the drift of the detected data against the version's training data
    (None when the version has no training statistics or shares no sensor with the data)."""

    detection: DetectionResult
    drift: DriftReport | None = None


def detect_with_drift(
    ws: Workspace,
    version_id: int,
    dataset: Dataset,
    *,
    units: list[Any] | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    accept_out_of_scope: bool = False,
) -> MonitoredDetection:
    """:func:`detect`, then a drift check of the same rows (the chosen units), stored in the
    version's history: a detection on data unlike the training data is one the user should doubt.
    The check never fails the detection (see :func:`~turbofan_desktop.services.monitoring.check_drift`)."""
    detection = detect(
        ws,
        version_id,
        dataset,
        units=units,
        progress=progress,
        should_stop=should_stop,
        accept_out_of_scope=accept_out_of_scope,
    )
    resolved = _require_units(dataset, units)
    checked = dataset.subset(resolved) if resolved is not None else dataset
    return MonitoredDetection(detection, check_drift(ws, version_id, checked))


def forecast(
    ws: Workspace,
    version_id: int,
    dataset: Dataset,
    *,
    units: list[Any] | None = None,
    horizon: int | None = None,
    accept_out_of_scope: bool = False,
) -> ForecastResult:
    """Median forecast and interval of the version's sensors, continuing each unit's time axis."""
    model: ForecastModel = _prepared(ws, version_id, "forecast", dataset, accept_out_of_scope)
    return model.forecast(dataset, horizon=horizon, units=_require_units(dataset, units))


def predict_rul(
    ws: Workspace, version_id: int, dataset: Dataset, *, accept_out_of_scope: bool = False
) -> RULResult:
    """Remaining useful life per unit with its interval (and the true RUL when the data carries it)."""
    model: RULModel = _prepared(ws, version_id, "rul", dataset, accept_out_of_scope)
    return model.predict_rul(dataset)


__all__ = [
    "MonitoredDetection",
    "WorkerModel",
    "detect",
    "detect_with_drift",
    "forecast",
    "load_model",
    "model_for",
    "predict_rul",
    "runs_in_worker",
    "version_tasks",
]
