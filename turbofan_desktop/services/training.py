"""Training use cases: train one target, or every target, and register what was trained.

One target runs: unit-wise seeded split -> a new model instance for that target -> ``fit`` with
progress and cancellation -> ``evaluate`` on the held-out validation units -> the artifact is written
and the version registered together with the lineage of the exact training data (the train split), the
split itself and the environment. Iterating over targets happens here, never in a plugin, so each
target gets its own model and its own outcome: a failing target is reported and the next one starts;
a cancelled one leaves a ``cancelled`` run, no version, and the remaining targets are skipped.

The work is split between the owner of the registry (this process: the run, the registration with
the artifact the job returned, the end of the run) and the job (``services.executors.jobs.FitJob``:
build, fit, evaluate, save), which runs wherever the executor puts it —
a local worker process by default — so several targets train at once and a worker's crash fails
only its own target.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset, canonical_hash
from turbofan_desktop.data.split import UnitSplit, carve_test_units, split_units
from turbofan_desktop.data.validation import require_learnable
from turbofan_desktop.errors import ConfigError, InsufficientDataError, TurbofanError
from turbofan_desktop.plugins.contract import (
    ALL_TARGETS,
    ModelSpec,
    ProgressEvent,
    build_config,
    config_to_dict,
)
from turbofan_desktop.registry.artifacts import unpack_folder
from turbofan_desktop.registry.records import (
    FitSummary,
    HeldOut,
    TrainedOn,
    TrainingProvenance,
    TrainingSource,
    ValidationSet,
)
from turbofan_desktop.services._common import (
    library_versions,
    plugin_version,
    stop_checker,
)
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.datasets import keep_training_data
from turbofan_desktop.services.executors import Executor, RunningJob
from turbofan_desktop.services.executors.jobs import DataPayload, FitJob, FitResult
from turbofan_desktop.services.mlflow_export import live_tracking

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

# How often the owner looks at its running jobs (progress, results, the stop request).
POLL_S = 0.02


@dataclass
class TrainRequest:
    """What to train. Give ``data_path`` (read here) or an already loaded ``dataset``."""

    plugin: str
    data_path: Path | None = None
    dataset: Dataset | None = None
    rul_path: Path | None = None
    # None -> the plugin decides: per-target models need ``targets`` or ``all_sensors``;
    # a model serving all sensors (per_target=False) trains one version with target "*".
    targets: list[str] | None = None
    all_sensors: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    val_fraction: float = 0.2
    # None -> the model's task decides (training_split): a RUL model keeps half of the held-out
    # units apart as calibration engines; 0 keeps every held-out unit for validation.
    test_fraction: float | None = None
    unit_col: str | None = None
    time_col: str | None = None


@dataclass
class JobProgress:
    """Progress of a training job: which target (``index`` of ``total``), its event, overall 0..1."""

    plugin: str
    target: str
    index: int
    total: int
    event: ProgressEvent
    overall: float


@dataclass
class TargetOutcome:
    plugin: str
    target: str
    version_id: int | None = None
    error: str | None = None
    cancelled: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.version_id is not None

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"plugin": self.plugin, "target": self.target}
        if self.version_id is not None:
            row["version_id"] = self.version_id
        else:
            row["error"] = self.error or "not trained"
        row.update(
            {
                "metrics": dict(self.metrics),
                "cancelled": self.cancelled,
                "run_id": self.run_id,
                "seconds": round(self.seconds, 3),
            }
        )
        return row


@dataclass
class TrainSummary:
    results: list[TargetOutcome]
    successful: int
    failed: int
    registered: list[int]
    cancelled: bool

    @classmethod
    def from_results(cls, results: list[TargetOutcome]) -> TrainSummary:
        registered = [r.version_id for r in results if r.version_id is not None]
        return cls(
            results=results,
            successful=len(registered),
            failed=sum(1 for r in results if r.version_id is None and not r.cancelled),
            registered=registered,
            cancelled=any(r.cancelled for r in results),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "summary": {
                "successful": self.successful,
                "failed": self.failed,
                "registered": list(self.registered),
                "cancelled": self.cancelled,
            },
        }


# -- targets and configuration -----------------------------------------------------------------------
def trainable_targets(ws: Workspace, plugin: str, dataset: Dataset) -> list[str]:
    """The targets a plugin can be trained on for ``dataset``: its informative sensors, or ``["*"]``."""
    spec = ws.plugins.model(plugin)
    if not spec.per_target:
        return [ALL_TARGETS]
    return list(dataset.informative_sensors)


def preset_configs(ws: Workspace, preset: str) -> dict[str, dict[str, Any]]:
    """By model name, the settings of ``preset`` ("tiny", "demo"; see ``ModelSpec.presets``) of every
    model that declares it, keeping only settings the model still has."""
    configs = {}
    for name, spec in ws.plugins.models().items():
        known = {row["name"] for row in spec.schema()}
        values = {k: v for k, v in spec.preset(preset).items() if k in known}
        if values:
            configs[name] = values
    return configs


def resolve_targets(spec: ModelSpec, dataset: Dataset, request: TrainRequest) -> list[str]:
    """The targets to train, checked against the dataset's sensors (ConfigError otherwise)."""
    if not spec.per_target:
        # One model serves all its sensors (chosen ones reach it through its config): target "*".
        missing = [t for t in request.targets or [] if t != ALL_TARGETS and t not in dataset.sensors]
        if missing:
            raise ConfigError(
                f"Sensor(s) {', '.join(missing)} are not in {_name(dataset)}; "
                f"its sensors are {', '.join(dataset.sensors)}."
            )
        return [ALL_TARGETS]
    if request.all_sensors:
        targets = list(dataset.informative_sensors)
        if not targets:
            raise InsufficientDataError(
                f"{_name(dataset)} has no informative (non-constant) sensor to train on."
            )
        return targets
    if not request.targets:
        raise ConfigError(
            f"Model '{spec.name}' is trained per sensor: name one or more sensors (--sensor) "
            "or ask for all informative sensors (--all-sensors)."
        )
    missing = [t for t in request.targets if t not in dataset.sensors]
    if missing:
        raise ConfigError(
            f"Sensor(s) {', '.join(missing)} are not in {_name(dataset)}; "
            f"its sensors are {', '.join(dataset.sensors)}."
        )
    return list(dict.fromkeys(request.targets))


def config_values(spec: ModelSpec, request: TrainRequest) -> dict[str, Any]:
    """The request's config with the request seed (and, for all-sensor models, chosen sensors) added
    when the model's config has such a setting and the caller did not set it explicitly."""
    values = dict(request.config)
    fields = {row["name"] for row in spec.schema()}
    if "seed" in fields and "seed" not in values:
        values["seed"] = request.seed
    named = [t for t in request.targets or [] if t != ALL_TARGETS]
    if not spec.per_target and named:
        if "sensors" not in fields:
            raise ConfigError(
                f"Model '{spec.name}' serves all sensors and cannot be limited to {', '.join(named)}."
            )
        values.setdefault("sensors", named)
    return values


def learned_sensors(spec: ModelSpec, dataset: Dataset, targets: list[str], config: Any) -> list[str]:
    """The sensors a model will be asked to predict: each per-sensor target, or the sensors an
    all-sensor model's config names (its own choice among the informative sensors otherwise)."""
    if spec.per_target:
        return [t for t in targets if t in dataset.sensors]
    chosen = getattr(config, "sensors", None) or []
    return [s for s in chosen if isinstance(s, str) and s in dataset.sensors]


def held_out_fingerprint(held: Dataset) -> str:
    """The hash of the held-out rows' values alone (no preprocessing notes): what validation without
    a data file checks before it trusts a re-read training source."""
    return canonical_hash(held.frame)


def _name(dataset: Dataset) -> str:
    return str(dataset.source) if dataset.source else (dataset.name or "the data")


# -- the job -------------------------------------------------------------------------------------------
def train(
    ws: Workspace,
    request: TrainRequest,
    *,
    progress: Callable[[JobProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    executor: Executor | None = None,
) -> TrainSummary:
    """Train every requested target, one new model each, and register each that succeeds.

    The targets run as jobs on ``executor`` (default: the workspace's, from the ``executor``
    setting), as many at once as it has workers; each is registered here, in this process, as soon
    as its result comes back.

    Bad data, an unknown model, unknown targets or an invalid config raise a TurbofanError before
    any target starts. After that, each target's failure is recorded in its outcome and the job goes
    on; cancellation stops the current target (run marked ``cancelled``, nothing registered) and skips
    the rest.
    """
    should_stop = stop_checker(should_stop)
    # refuse before reading data or training what could not be stored
    ws.registry.require_writable(intact=True)
    spec = ws.plugins.model(request.plugin)
    dataset = _request_dataset(ws, request)
    targets = resolve_targets(spec, dataset, request)
    values = config_values(spec, request)
    # invalid settings fail here, before anything is recorded
    config = build_config(spec.config_class, values)
    if not 0.0 < request.val_fraction < 1.0:
        raise ConfigError(
            f"The validation fraction is {request.val_fraction}; expected a number between 0 and 1."
        )

    split = training_split(spec, dataset, request)
    train_ds, val_ds, test_ds = split.apply(dataset)
    if train_ds.n_rows == 0 or val_ds.n_rows == 0:
        raise InsufficientDataError(
            f"{_name(dataset)} has too few units ({len(dataset.units)}) for a training and a validation split."
        )
    for sensor in learned_sensors(spec, dataset, targets, config):
        require_learnable(dataset, train_ds, sensor)  # before anything is recorded
    dataset_id = ws.registry.record_dataset(train_ds.lineage)
    # the data itself, by its hash: what `models reproduce` trains on again (a warning if not kept)
    keep_training_data(ws, dataset, split)
    context = _JobContext(
        ws=ws,
        spec=spec,
        request=request,
        dataset=dataset,
        train_ds=train_ds,
        val_ds=val_ds,
        test_ds=test_ds,
        split=split,
        dataset_id=dataset_id,
        values=values,
        total=len(targets),
        progress=progress,
        should_stop=should_stop,
    )

    runner = executor if executor is not None else ws.executor()
    return TrainSummary.from_results(context.run_targets(runner, targets))


#: Share of a RUL model's held-out units kept apart from validation by default (its test split).
CALIBRATION_SHARE = 0.5


def training_split(spec: ModelSpec, dataset: Dataset | Sequence[Any], request: TrainRequest) -> UnitSplit:
    """The unit split ``request`` trains with.

    A test fraction given is used as given. Without one, a model that predicts RUL keeps
    :data:`CALIBRATION_SHARE` of its held-out units (``val_fraction``) apart as its test split: engines
    it never fits on and that neither early stopping nor the plugin's own interval calibration sees,
    on which the fleet view calibrates the version's lower tail and held-out validation scores it. It
    fits on exactly the units it would fit on without them. Other models validate on every held-out
    unit. The split is recorded with the version (``provenance.split``, ``provenance.held_out``).
    """
    if request.test_fraction is not None:
        return split_units(
            dataset, val_fraction=request.val_fraction, test_fraction=request.test_fraction, seed=request.seed
        )
    split = split_units(dataset, val_fraction=request.val_fraction, seed=request.seed)
    if "rul" in spec.tasks:
        split = carve_test_units(split, share=CALIBRATION_SHARE)
    return split


def _request_dataset(ws: Workspace, request: TrainRequest) -> Dataset:
    if request.dataset is not None:
        return request.dataset
    if request.data_path is None:
        raise ConfigError("Nothing to train on: give a data file.")
    return load_dataset(
        ws,
        request.data_path,
        rul_path=request.rul_path,
        unit_col=request.unit_col,
        time_col=request.time_col,
    )


def _finish_run(registry, outcome: TargetOutcome, *, status: str, message: str, epochs: int) -> None:
    """Record how the run ended. When even that write fails (the disk is still full) the target's own
    outcome must not be lost: the run stays "running" under this dead process id, which `registry
    check --repair` ends (as "succeeded" when its version committed), and the outcome says so."""
    try:
        registry.finish_run(outcome.run_id, status=status, message=message, epochs_done=epochs)
    except TurbofanError as exc:
        log.warning("could not record the end of training run %s: %s", outcome.run_id, exc)
        note = f"run {outcome.run_id} could not be marked {status} ({exc})"
        outcome.error = f"{outcome.error}; {note}" if outcome.error else note


def _cancel_all(active: list[_Submitted]) -> bool:
    """Ask every running job to stop; True (the job is stopping) for the caller to keep."""
    for submitted in active:
        submitted.running.cancel()
    return True


@dataclass
class _Submitted:
    """One target's job while it runs: its outcome so far, its run's live tracking, its handle."""

    index: int
    target: str
    outcome: TargetOutcome
    config: dict[str, Any]
    tracking: Any
    running: RunningJob
    epochs_seen: int = 0


@dataclass
class _JobContext:
    """Everything one training job shares across its targets."""

    ws: Any
    spec: ModelSpec
    request: TrainRequest
    dataset: Dataset
    train_ds: Dataset
    val_ds: Dataset
    test_ds: Dataset
    split: UnitSplit
    dataset_id: int
    values: dict[str, Any]
    total: int
    progress: Callable[[JobProgress], None] | None
    should_stop: Callable[[], bool]
    # by target index: its share done (0..1), for the job-wide fraction of parallel targets
    done_share: dict[int, float] = field(default_factory=dict)
    payloads: tuple[DataPayload, DataPayload] = field(init=False)

    def __post_init__(self) -> None:
        # the two splits as jobs carry them, hashed once for all targets
        self.payloads = (DataPayload.of(self.train_ds), DataPayload.of(self.val_ds))

    def run_targets(self, executor: Executor, targets: list[str]) -> list[TargetOutcome]:
        """Submit the targets to ``executor`` (at most its worker count at a time, so a run is started
        only when its job is), forward their progress and register each result as it arrives. A stop
        request cancels the running jobs and skips the rest; so does a job that came back cancelled."""
        waiting = list(enumerate(targets))
        active: list[_Submitted] = []
        outcomes: dict[int, TargetOutcome] = {}
        capacity = max(1, int(getattr(executor, "workers", 1) or 1))
        stopping = False
        try:
            while waiting or active:
                if not stopping and self.should_stop():
                    stopping = _cancel_all(active)
                while waiting and len(active) < capacity and not stopping:
                    index, target = waiting.pop(0)
                    started = self.submit_target(executor, index, target)
                    if isinstance(started, TargetOutcome):
                        outcomes[index] = started
                    else:
                        active.append(started)
                if stopping:
                    for index, target in waiting:
                        outcomes[index] = TargetOutcome(
                            self.spec.name, target, error="skipped: training was cancelled", cancelled=True
                        )
                    waiting.clear()
                for submitted in [s for s in active if s.running.done()]:
                    active.remove(submitted)
                    outcome = self.finish_target(submitted, submitted.running.result())
                    outcomes[submitted.index] = outcome
                    if outcome.cancelled and not stopping:
                        stopping = _cancel_all(active)
                for submitted in active:
                    self._forward(submitted, submitted.running.events())
                if active:
                    time.sleep(POLL_S)
        except BaseException:
            _cancel_all(active)  # no job may go on training for an owner that stopped listening
            raise
        return [outcomes[index] for index in range(len(targets))]

    def submit_target(self, executor: Executor, index: int, target: str) -> _Submitted | TargetOutcome:
        """The owner's first half of one target: start its run, open its live tracking, send its job."""
        spec, registry = self.spec, self.ws.registry
        outcome = TargetOutcome(spec.name, target)
        config_dict = config_to_dict(build_config(spec.config_class, self.values))
        try:
            outcome.run_id = run_id = registry.start_run(
                plugin=spec.name, target=target, config=config_dict, dataset_id=self.dataset_id
            )
        except TurbofanError as exc:  # a full disk, say: this target fails, nothing was started
            outcome.error = str(exc)
            return outcome
        # the mlflow_tracking_uri setting: this run logged live to MLflow too (None when unset)
        tracking = live_tracking(
            self.ws,
            run_name=f"{spec.name}/{target}",
            params=config_dict,
            tags={"turbofan.plugin": spec.name, "turbofan.target": target, "turbofan.run_id": run_id,
                  "turbofan.data_hash": self.train_ds.data_hash},
        )  # fmt: skip
        job = FitJob(
            job_id=f"{spec.name}/{target}/run-{run_id}",
            plugin=spec.name,
            target=target,
            config=config_dict,
            seed=self.request.seed,
            threads=int(self.ws.settings.torch_threads),
            train=self.payloads[0],
            val=self.payloads[1],
            spec=spec,
        )
        submitted = _Submitted(index, target, outcome, config_dict, tracking, executor.submit(job))
        self._report(submitted, ProgressEvent(stage="queued", fraction=0.0, message="waiting for a worker"))
        return submitted

    def _report(self, submitted: _Submitted, event: ProgressEvent) -> None:
        if event.epoch is not None:
            submitted.epochs_seen = max(submitted.epochs_seen, int(event.epoch))
            if submitted.tracking is not None and (
                event.train_loss is not None or event.val_loss is not None
            ):
                submitted.tracking.epoch(
                    int(event.epoch), train_loss=event.train_loss, val_loss=event.val_loss
                )
        if self.progress is None:
            return
        within = min(max(float(event.fraction), 0.0), 1.0)
        self.done_share[submitted.index] = max(self.done_share.get(submitted.index, 0.0), within)
        overall = sum(self.done_share.values()) / max(self.total, 1)
        self.progress(
            JobProgress(self.spec.name, submitted.target, submitted.index, self.total, event, overall)
        )

    def _forward(self, submitted: _Submitted, events: list[ProgressEvent]) -> None:
        for event in events:
            self._report(submitted, event)

    def finish_target(self, submitted: _Submitted, result: FitResult) -> TargetOutcome:
        """The owner's second half: register what the job returned (or record why it did not)."""
        self._forward(submitted, submitted.running.events())
        spec, registry, outcome = self.spec, self.ws.registry, submitted.outcome
        epochs = max(int(result.epochs_seen or 0), submitted.epochs_seen)
        if result.cancelled or (result.error is None and self.should_stop()):
            outcome.cancelled, outcome.error = True, "cancelled"
            _finish_run(registry, outcome, status="cancelled", message="cancelled by the user", epochs=epochs)
        elif result.error is not None or not result.artifact:
            outcome.error = result.error or f"the job of {submitted.target} returned no model"
            _finish_run(registry, outcome, status="failed", message=outcome.error, epochs=epochs)
        else:
            self._register(submitted, result)
        if submitted.tracking is not None:
            submitted.tracking.finish(
                outcome.metrics,
                status="FINISHED" if outcome.ok else ("KILLED" if outcome.cancelled else "FAILED"),
                tags={"turbofan.version_id": outcome.version_id} if outcome.ok else None,
            )
        outcome.seconds = result.seconds
        if self.progress is not None and not outcome.cancelled:
            self.done_share[submitted.index] = 1.0
            done = ProgressEvent(stage="done", fraction=1.0, message=outcome.error or "registered")
            overall = sum(self.done_share.values()) / max(self.total, 1)
            self.progress(
                JobProgress(spec.name, submitted.target, submitted.index, self.total, done, overall)
            )
        return outcome

    def _register(self, submitted: _Submitted, result: FitResult) -> None:
        spec, registry, outcome = self.spec, self.ws.registry, submitted.outcome
        epochs_done = int(result.epochs_run or result.epochs_seen or 0)
        try:
            record = registry.register_version(
                run_id=outcome.run_id,
                plugin=spec.name,
                target=submitted.target,
                dataset_id=self.dataset_id,
                config=submitted.config,
                history=[dict(row) for row in result.history],
                metrics=dict(result.metrics),
                validation_performed=True,
                validation_metrics=dict(result.metrics),
                validation_data_hash=self.val_ds.data_hash,
                training_seconds=result.seconds,
                library_versions=self._library_versions(),
                write_artifact=functools.partial(unpack_folder, result.artifact),
                provenance=self._provenance(result),
            )
        except TurbofanError as exc:
            outcome.error = str(exc)
            _finish_run(registry, outcome, status="failed", message=str(exc), epochs=epochs_done)
        except Exception as exc:  # noqa: BLE001 - one target's bug must not end the whole job
            log.exception("registering %s on %s failed", spec.name, submitted.target)
            outcome.error = (
                f"internal error while registering {submitted.target}: {type(exc).__name__}: {exc}"
            )
            _finish_run(registry, outcome, status="failed", message=outcome.error, epochs=epochs_done)
        else:
            outcome.version_id = int(record.id)
            outcome.metrics = dict(result.metrics)
            _finish_run(registry, outcome, status="succeeded", message="", epochs=epochs_done)

    def _library_versions(self) -> dict[str, str]:
        extra = {}
        version = plugin_version(self.ws, self.spec.plugin)
        if version is not None:
            extra[f"plugin:{self.spec.plugin}"] = version
        return library_versions(extra)

    def _provenance(self, result: FitResult) -> TrainingProvenance:
        """What validation and reports need later: the split, its seed and how to find the source."""
        request, dataset, split = self.request, self.dataset, self.split
        held_out = self.test_ds if split.test else self.val_ds
        return TrainingProvenance(
            split=split,
            source=TrainingSource(
                path=str(Path(dataset.source).resolve()) if dataset.source else None,
                rul_path=str(Path(dataset.rul_source).resolve()) if dataset.rul_source else None,
                unit_col=request.unit_col,
                time_col=request.time_col,
                format=dataset.format,
                data_hash=dataset.data_hash,
                units=len(dataset.units),
            ),
            validation=ValidationSet(
                split="val", units=len(self.val_ds.units), data_hash=self.val_ds.data_hash
            ),
            # what validation without a data file compares a re-read source against
            held_out=HeldOut(
                split="test" if split.test else "val", frame_hash=held_out_fingerprint(held_out)
            ),
            fit=FitSummary(
                epochs_run=result.epochs_run,
                best_epoch=result.best_epoch,
                stopped_early=bool(result.stopped_early),
                seed=result.seed,
                notes=tuple(result.notes),
            ),
            model_version=self.spec.version,
            trained_on=TrainedOn.from_where(result.where),
        )


__all__ = [
    "JobProgress",
    "TargetOutcome",
    "TrainRequest",
    "TrainSummary",
    "held_out_fingerprint",
    "resolve_targets",
    "train",
    "trainable_targets",
    "training_split",
]
