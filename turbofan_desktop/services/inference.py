"""Applying a registered version: anomaly detection, forecasting and remaining useful life.

A version's artifact is loaded once per workspace (its sha256 is checked by the registry before the
plugin reads it) and kept in the workspace's cache. Each task first checks that the version's model
offers it and that the data carries the sensors the version was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import IncompatibleDataError, PluginError
from turbofan_desktop.plugins.contract import (
    ALL_TARGETS,
    DetectionResult,
    ForecastResult,
    ModelSpec,
    ProgressEvent,
    RULResult,
    build_config,
    no_progress,
)
from turbofan_desktop.services._common import stop_checker


def load_model(ws, version_id: int) -> tuple[ModelSpec, Any]:
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
    factory = spec.load_factory()
    loader = getattr(factory, "load", None)
    if loader is None:  # the factory is a function: ask the class of the model it builds
        loader = type(factory(config=config, target=record.target)).load
    model = loader(directory, config=config, target=record.target)
    ws.cache_model(int(version_id), (spec, model, record.artifact_sha256))
    return spec, model


def _config_values(spec: ModelSpec, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stored config, minus settings the model no longer has (an older plugin version)."""
    known = {row["name"] for row in spec.schema()}
    return {k: v for k, v in dict(stored or {}).items() if k in known}


def _require_task(ws, version_id: int, spec: ModelSpec, task: str) -> None:
    if task not in spec.tasks:
        raise PluginError(
            f"Version {version_id} is a '{spec.name}' model, which does not offer {task} "
            f"(it offers {', '.join(spec.tasks)})."
        )


def _require_sensors(version_id: int, model: Any, dataset: Dataset) -> None:
    """The sensors the version was trained on must be in the data."""
    target = getattr(model, "target", ALL_TARGETS)
    needed = [target] if target != ALL_TARGETS else list(getattr(model, "sensors", None) or [])
    missing = [s for s in needed if s not in dataset.frame.columns]
    if missing:
        where = str(dataset.source) if dataset.source else (dataset.name or "the data")
        raise IncompatibleDataError(
            f"Version {version_id} needs sensor(s) {', '.join(missing)}, which {where} does not have."
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


def _prepared(ws, version_id: int, task: str, dataset: Dataset) -> tuple[ModelSpec, Any]:
    spec, model = load_model(ws, version_id)
    _require_task(ws, version_id, spec, task)
    _require_sensors(version_id, model, dataset)
    return spec, model


def detect(
    ws,
    version_id: int,
    dataset: Dataset,
    *,
    units: list[Any] | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DetectionResult:
    """Anomaly ranges (on the data's own time axis) of the version's target, per unit."""
    _spec, model = _prepared(ws, version_id, "anomaly", dataset)
    return model.detect(
        dataset,
        units=_require_units(dataset, units),
        progress=progress or no_progress,
        should_stop=stop_checker(should_stop),
    )


def forecast(
    ws, version_id: int, dataset: Dataset, *, units: list[Any] | None = None, horizon: int | None = None
) -> ForecastResult:
    """Median forecast and interval of the version's sensors, continuing each unit's time axis."""
    _spec, model = _prepared(ws, version_id, "forecast", dataset)
    return model.forecast(dataset, horizon=horizon, units=_require_units(dataset, units))


def predict_rul(ws, version_id: int, dataset: Dataset) -> RULResult:
    """Remaining useful life per unit with its interval (and the true RUL when the data carries it)."""
    _spec, model = _prepared(ws, version_id, "rul", dataset)
    return model.predict_rul(dataset)


__all__ = ["detect", "forecast", "load_model", "predict_rul"]
