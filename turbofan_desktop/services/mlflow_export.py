"""MLflow: export a version as a run + a pyfunc model, import one back, and log trainings live.

The registry stays the source of truth; MLflow receives a copy a team can browse and serve:

- :func:`export_version`: one MLflow run per version (params = the config; metrics = the validation
  metrics and the per-epoch losses, with the data hash they were computed on as tags; tags = the
  lineage: data hash, source, units, split, seed, plugin and app versions), the artifact folder, and a
  ``pyfunc`` model (:mod:`~turbofan_desktop.services.mlflow_pyfunc`). ``register`` adds it to MLflow's
  model registry and mirrors our stage as an alias (and a tag).
- :func:`import_model`: a model this app exported becomes a registry version again (same artifact).
- :class:`LiveTracking`: with the ``mlflow_tracking_uri`` setting, every training logs its run as it
  goes; a tracking server that fails only costs a warning.

MLflow is imported on first use (the ``[mlflow]`` extra); without it these raise a ConfigError.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop import __version__
from turbofan_desktop.data.dataset import DataLineage
from turbofan_desktop.errors import ConfigError, TurbofanError
from turbofan_desktop.registry.records import TrainingProvenance

if TYPE_CHECKING:
    from turbofan_desktop.registry import VersionRecord
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

EXPERIMENT = "turbofan-desktop"
MODEL_NAME = "model"  # the MLflow model's name inside its run


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "MLflow is not installed: install the app with its mlflow extra (pip install 'turbofan-desktop[mlflow]')."
        ) from None
    return mlflow


class TrackingServerDown(ConfigError):
    """The MLflow tracking server does not answer."""


def check_server(tracking_uri: str, timeout: float = 3.0) -> None:
    """For an ``http(s)`` tracking URI, its ``/health`` must answer within ``timeout`` seconds (MLflow's
    own client retries a dead server for minutes)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout):  # noqa: S310
            return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingServerDown(
            f"The MLflow tracking server {tracking_uri} does not answer ({reason})."
        ) from None


# -- params, metrics, tags ------------------------------------------------------------------------------
def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)


def params_of(record: VersionRecord) -> dict[str, str]:
    out: dict[str, str] = {}
    _flat("", record.config, out)
    return {k: v[:6000] for k, v in out.items()}


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == value
        and abs(value) != float("inf")
    )


def tags_of(record: VersionRecord) -> dict[str, str]:
    """The lineage as MLflow tags (``turbofan.*``)."""
    provenance, lineage = record.provenance, record.lineage or {}
    split, source = provenance.split, provenance.source
    tags = {
        "turbofan.version_id": record.id,
        "turbofan.label": record.label,
        "turbofan.plugin": record.plugin,
        "turbofan.target": record.target,
        "turbofan.version": record.version,
        "turbofan.stage": record.stage,
        "turbofan.app_version": __version__,
        "turbofan.plugin_version": provenance.model_version,
        "turbofan.artifact_sha256": record.artifact_sha256,
        "turbofan.data_hash": lineage.get("data_hash"),
        "turbofan.data_source": lineage.get("source"),
        "turbofan.data_units": lineage.get("units"),
        "turbofan.data_rows": lineage.get("rows"),
        "turbofan.source_data_hash": source.data_hash if source else None,
        "turbofan.source_path": source.path if source else None,
        "turbofan.split_seed": split.seed if split else None,
        "turbofan.split": json.dumps(split.to_dict()) if split else None,
        "turbofan.metrics_data_hash": provenance.validation.data_hash if provenance.validation else None,
        "turbofan.validation_data_hash": record.validation_data_hash,
    }
    for name, version in (record.library_versions or {}).items():
        tags[f"turbofan.library.{name}"] = version
    return {k: str(v)[:5000] for k, v in tags.items() if v is not None}


def metrics_of(record: VersionRecord) -> dict[str, float]:
    """Training-time validation metrics as they are; re-validation metrics as ``validation.<name>``."""
    out = {k: float(v) for k, v in (record.metrics or {}).items() if _finite(v)}
    for k, v in (record.validation_metrics or {}).items():
        if _finite(v) and (record.metrics or {}).get(k) != v:
            out[f"validation.{k}"] = float(v)
    return out


# -- export ------------------------------------------------------------------------------------------------
@dataclass
class MlflowExport:
    version_id: int
    run_id: str
    model_uri: str
    experiment_id: str
    registered_name: str | None = None
    registered_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_version(
    ws: Workspace, version_id: int, tracking_uri: str, *, register: str | None = None
) -> MlflowExport:
    """One MLflow run for version ``version_id`` on ``tracking_uri`` (see the module docstring)."""
    mlflow = _mlflow()
    record = ws.registry.get(int(version_id))
    directory = ws.registry.artifact_dir(int(version_id))  # sha256 checked
    check_server(tracking_uri)
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from turbofan_desktop.services import mlflow_pyfunc

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with _using(mlflow, tracking_uri):
        experiment = mlflow.set_experiment(EXPERIMENT)
        # MLflow prints the run's URL on stdout, which would corrupt ``--json`` output
        quiet = contextlib.redirect_stdout(io.StringIO())
        with quiet, tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_name=record.label) as run:
            mlflow.log_params(params_of(record))
            mlflow.set_tags(tags_of(record))
            mlflow.log_metrics(metrics_of(record))
            for row in record.history or []:
                step = int(row.get("epoch", 0))
                losses = {f"epoch.{k}": float(v) for k, v in row.items() if k != "epoch" and _finite(v)}
                if losses:
                    mlflow.log_metrics(losses, step=step)
            record_file = Path(folder) / "record.json"
            record_file.write_text(json.dumps(record.to_dict(), default=str, indent=1), encoding="utf-8")
            mlflow.log_artifacts(str(directory), artifact_path="artifact")
            mlflow.log_artifact(str(record_file))
            spec = ws.plugins.model(record.plugin)
            # inputs stay open (any table the app reads); ``task`` picks what predict answers
            signature = ModelSignature(params=ParamSchema([ParamSpec("task", "string", spec.tasks[0])]))
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=mlflow_pyfunc.model_class()(),
                artifacts={mlflow_pyfunc.ARTIFACT: str(directory), mlflow_pyfunc.RECORD: str(record_file)},
                signature=signature,
                pip_requirements=[f"turbofan-desktop=={__version__}"],
            )
        result = MlflowExport(int(record.id), run.info.run_id, info.model_uri, experiment.experiment_id)
        if register:
            registered = mlflow.register_model(info.model_uri, register)
            result.registered_name, result.registered_version = register, str(registered.version)
            client.set_model_version_tag(register, registered.version, "turbofan.stage", record.stage)
            client.set_model_version_tag(register, registered.version, "turbofan.version_id", str(record.id))
            if record.stage != "none":
                client.set_registered_model_alias(register, record.stage, registered.version)
        return result


@contextlib.contextmanager
def _using(mlflow: Any, tracking_uri: str | None) -> Any:
    """MLflow's fluent API pointed at ``tracking_uri`` (tracking and model registry) for a while."""
    if not tracking_uri:
        yield
        return
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


# -- import ----------------------------------------------------------------------------------------------
def import_model(ws: Workspace, model_uri: str, *, tracking_uri: str | None = None) -> VersionRecord:
    """Register a model this app exported (``runs:/…/model``, ``models:/name/1``, a folder) as a new
    version with the same artifact, config, metrics, lineage and provenance."""
    mlflow = _mlflow()

    if tracking_uri:
        check_server(tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        try:
            if Path(model_uri).expanduser().is_dir():
                local = Path(model_uri).expanduser()  # a model folder on disk: no tracking store needed
            else:
                with _using(mlflow, tracking_uri), contextlib.redirect_stdout(io.StringIO()):
                    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder))
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types for a bad URI
            raise ConfigError(f"Cannot read the MLflow model {model_uri}: {exc}.") from None
        record_file, artifact_dir = _exported_files(mlflow, local)
        if record_file is None or artifact_dir is None:
            raise ConfigError(
                f"{model_uri} is not a model turbofan-desktop exported (it has no record and artifact)."
            )
        data = json.loads(record_file.read_text(encoding="utf-8"))
        ws.plugins.model(data["plugin"])  # an unknown plugin fails here, before anything is written
        dataset_id = ws.registry.record_dataset(DataLineage.from_dict(data["lineage"]))
        return ws.registry.register_version(
            run_id=None,
            plugin=data["plugin"],
            target=data["target"],
            dataset_id=dataset_id,
            config=data["config"],
            history=data.get("history") or [],
            metrics=data.get("metrics") or {},
            validation_performed=bool(data.get("validation_performed")),
            validation_metrics=data.get("validation_metrics"),
            validation_data_hash=data.get("validation_data_hash"),
            training_seconds=float(data.get("training_seconds") or 0.0),
            library_versions=data.get("library_versions") or {},
            write_artifact=lambda target: shutil.copytree(artifact_dir, target, dirs_exist_ok=True),
            provenance=TrainingProvenance.from_legacy(data.get("extra") or {}),
        )


def _exported_files(mlflow: Any, local: Path) -> tuple[Path | None, Path | None]:
    """(record.json, artifact folder) of a downloaded pyfunc model, where its MLmodel file says they are
    (MLflow files each python-model artifact under ``artifacts/<its own name>``)."""
    from mlflow.models import Model

    from turbofan_desktop.services import mlflow_pyfunc

    try:
        flavor = Model.load(str(local / "MLmodel")).flavors.get("python_function") or {}
    except Exception:  # noqa: BLE001 - no or a broken MLmodel: not ours
        return None, None
    listed = flavor.get("artifacts") or {}

    def where(key: str) -> Path | None:
        entry = listed.get(key)
        return local / entry["path"] if isinstance(entry, dict) and entry.get("path") else None

    record, artifact = where(mlflow_pyfunc.RECORD), where(mlflow_pyfunc.ARTIFACT)
    ok = record is not None and record.is_file() and artifact is not None and artifact.is_dir()
    return (record, artifact) if ok else (None, None)


# -- live tracking -------------------------------------------------------------------------------------------
class LiveTracking:
    """Logs one training target's run to ``mlflow_tracking_uri`` as it goes. Every MLflow call is
    guarded: the first failure logs one warning and switches tracking off for the rest of the run."""

    def __init__(
        self, tracking_uri: str, *, run_name: str, params: dict[str, Any], tags: dict[str, Any]
    ) -> None:
        self.tracking_uri = tracking_uri
        self.client: Any = None
        self.run_id: str | None = None
        self.warning: str | None = None
        self._guard(self._start, run_name, params, tags)

    @property
    def active(self) -> bool:
        return self.run_id is not None and self.warning is None

    def _guard(self, work: Any, *args: Any) -> None:
        if self.warning is not None:
            return
        try:
            work(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a training
            self.warning = f"MLflow tracking to {self.tracking_uri} stopped: {exc}"
            log.warning("%s", self.warning)

    def _start(self, run_name: str, params: dict[str, Any], tags: dict[str, Any]) -> None:
        mlflow = _mlflow()
        check_server(self.tracking_uri)
        self.client = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
        flat: dict[str, str] = {}
        _flat("", params, flat)
        run = self.client.create_run(
            experiment_id, run_name=run_name, tags={k: str(v) for k, v in tags.items()}
        )
        self.run_id = run.info.run_id
        for key, value in flat.items():
            self.client.log_param(self.run_id, key, value[:6000])

    def epoch(self, epoch: int, **losses: float | None) -> None:
        def work() -> None:
            for key, value in losses.items():
                if _finite(value):
                    self.client.log_metric(self.run_id, f"epoch.{key}", float(value), step=int(epoch))

        if self.run_id is not None:
            self._guard(work)

    def finish(self, metrics: dict[str, float], *, status: str, tags: dict[str, Any] | None = None) -> None:
        def work() -> None:
            for key, value in metrics.items():
                if _finite(value):
                    self.client.log_metric(self.run_id, key, float(value))
            for key, value in (tags or {}).items():
                self.client.set_tag(self.run_id, key, str(value))
            self.client.set_terminated(self.run_id, status=status)

        if self.run_id is not None:
            self._guard(work)


def live_tracking(
    ws: Workspace, *, run_name: str, params: dict[str, Any], tags: dict[str, Any]
) -> LiveTracking | None:
    """A :class:`LiveTracking` when the ``mlflow_tracking_uri`` setting is set, else None."""
    uri = getattr(ws.settings, "mlflow_tracking_uri", "") or ""
    if not uri:
        return None
    try:
        return LiveTracking(uri, run_name=run_name, params=params, tags=tags)
    except TurbofanError as exc:  # pragma: no cover - LiveTracking guards its own calls
        log.warning("%s", exc)
        return None


__all__ = [
    "EXPERIMENT",
    "LiveTracking",
    "MlflowExport",
    "TrackingServerDown",
    "check_server",
    "export_version",
    "import_model",
    "live_tracking",
]
