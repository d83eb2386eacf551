"""The typed contract between the application and a model plugin.

A plugin describes each model with a :class:`ModelSpec`: a name, the tasks it serves, a config
dataclass (defaults, ranges, help text in field metadata) and a ``"module:attr"`` factory that is only
imported when a model is built — so heavy libraries such as torch load on first use.

The factory is called as ``factory(config=cfg, target=name)`` and returns an object fulfilling
:class:`Model` and, for each task the spec names, that task's protocol (:class:`AnomalyModel`,
:class:`ForecastModel`, :class:`RULModel`). ``target`` is a sensor name for per-sensor models, or
``"*"`` for a model that serves several sensors at once. Results are plain dataclasses of numpy arrays
so they cross thread boundaries and serialise to JSON without the model library. A spec may declare
named ``presets`` of its settings (``"tiny"``: trains in seconds on one core, for the self-test;
``"demo"``: enough to draw anomalies and a forecast, for ``--demo-train``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from turbofan_desktop.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from turbofan_desktop.data.dataset import Dataset

TASKS = ("anomaly", "forecast", "rul")
ALL_TARGETS = "*"
#: preset names a spec may declare: "tiny" trains in seconds on one core (the self-test, the tests),
#: "demo" is enough to draw anomalies and a forecast (``--demo-train`` screenshots)
PRESETS = ("tiny", "demo")


# -- configuration --------------------------------------------------------------------------------
def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple | None = None,
    advanced: bool = False,
) -> Any:
    """A config dataclass field with the metadata the GUI dialog and the CLI ``--set`` need."""
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "advanced": advanced,
    }
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _field_type(config_class: type, f: dataclasses.Field) -> type:
    hints = typing.get_type_hints(config_class)
    hint = hints.get(f.name, str)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if args else str
    origin = typing.get_origin(hint)
    return origin or hint


def config_schema(config_class: type) -> list[dict[str, Any]]:
    """One dict per setting: name, type, default, help, minimum, maximum, choices, advanced."""
    rows = []
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append(
            {
                "name": f.name,
                "type": _field_type(config_class, f).__name__,
                "default": default,
                "help": f.metadata.get("help", ""),
                "minimum": f.metadata.get("minimum"),
                "maximum": f.metadata.get("maximum"),
                "choices": list(f.metadata["choices"]) if f.metadata.get("choices") else None,
                "advanced": bool(f.metadata.get("advanced", False)),
            }
        )
    return rows


# Whole-number settings stop at signed 64 bits (SQLite, numpy and torch do too).
INT64_MAX = 2**63 - 1
#: Largest seed a plugin's ``seed`` setting takes: 32 bits, what every seeding API accepts (numpy's legacy
#: ``np.random.seed`` stops there); 1e23 used to pass and fail deep inside training.
SEED_MAX = 2**32 - 1


def _element_type(config_class: type, f: dataclasses.Field) -> type | None:
    """The item type of a tuple/list setting: from the hint (``tuple[int, ...]``), else from its
    default's items when they are all numbers (``(0.1, 0.5, 0.9)`` -> float); None = any text."""
    hint = typing.get_type_hints(config_class).get(f.name)
    args = [a for a in typing.get_args(hint) if a is not Ellipsis and a is not type(None)]
    if len(args) == 1 and args[0] in (int, float, str):
        return args[0]
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    items = list(default) if isinstance(default, list | tuple) else []
    if items and all(isinstance(i, int | float) and not isinstance(i, bool) for i in items):
        return int if all(isinstance(i, int) for i in items) else float
    return None


def _coerce_number(name: str, raw: Any, target: type, shown: Any) -> int | float:
    """``raw`` as a finite int or float; NaN, infinity, fractions for an int, text -> ConfigError."""
    what = "a whole number" if target is int else "a float (a finite number)"
    if isinstance(raw, bool):
        raise ConfigError(f"Setting '{name}' is {shown!r}; expected {what}.")
    try:
        value = raw if isinstance(raw, int | float) else float(str(raw).strip())
        if isinstance(raw, str) and target is int and raw.strip().lstrip("+-").isdigit():
            value = int(raw.strip())  # exact, even beyond float precision
    except (TypeError, ValueError):
        raise ConfigError(f"Setting '{name}' is {shown!r}; expected {what}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"Setting '{name}' is {shown!r}; expected {what}.")
    if target is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"Setting '{name}' is {shown!r}; expected {what}.")
        value = int(value)
        if abs(value) > INT64_MAX:
            raise ConfigError(
                f"Setting '{name}' is {shown!r}; expected a whole number of at most {INT64_MAX}."
            )
        return value
    return float(value)


def _coerce_value(name: str, raw: Any, target: type, element: type | None = None) -> Any:
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"Setting '{name}' is {raw!r}; expected true or false.")
    if target in (list, tuple):
        if isinstance(raw, str):
            items = [item.strip() for item in raw.split(",") if item.strip()]
        elif isinstance(raw, list | tuple):
            items = list(raw)
        else:
            raise ConfigError(f"Setting '{name}' is {raw!r}; expected a comma-separated list.")
        if element in (int, float):
            return target(_coerce_number(name, item, element, raw) for item in items)
        if element is str:
            return target(str(item) for item in items)
        return target(float(i) if isinstance(i, str) and _is_number(i) else i for i in items)
    if target in (int, float):
        return _coerce_number(name, raw, target, raw)
    try:
        return target(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"Setting '{name}' is {raw!r}; expected a {target.__name__}.") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_config(config_class: type, values: Mapping[str, Any] | None = None) -> Any:
    """Defaults overridden by ``values`` (strings from the CLI are converted); invalid -> ConfigError.

    Every value is type-checked and range-checked here, once: NaN and infinity never pass (a NaN
    compares false with every bound), whole numbers stop at 64 bits.
    """
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(unknown)} for this model; known settings: {', '.join(known)}."
        )
    kwargs = {}
    for name, raw in values.items():
        f = known[name]
        target = _field_type(config_class, f)
        element = _element_type(config_class, f) if target in (list, tuple) else None
        value = raw if raw is None else _coerce_value(name, raw, target, element)
        low, high, choices = f.metadata.get("minimum"), f.metadata.get("maximum"), f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"Setting '{name}' is {value!r}; expected one of {', '.join(map(str, choices))}."
            )
        if low is not None and value is not None and value < low:
            raise ConfigError(f"Setting '{name}' is {value}; expected at least {low}.")
        if high is not None and value is not None and value > high:
            raise ConfigError(f"Setting '{name}' is {value}; expected at most {high}.")
        kwargs[name] = value
    try:
        config = config_class(**kwargs)
        check = getattr(config, "validate", None)
        if callable(check):
            check()  # cross-field rules; raises ConfigError
    except (TypeError, ValueError, ArithmeticError) as exc:  # a plugin's own conversion refused a value
        given = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the defaults"
        raise ConfigError(f"The model settings ({given}) are not valid: {exc}.") from None
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


# -- specs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """What a plugin registers for one model type."""

    name: str
    tasks: tuple[str, ...]
    config_class: type
    factory: str  # "package.module:attr", imported on first use
    description: str = ""
    version: str = "0"
    per_target: bool = True  # True: one model per sensor; False: one model serves all sensors ("*")
    plugin: str = ""  # filled in by the plugin manager
    # preset name (see PRESETS) -> settings, as ``build_config`` takes them
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # True: the factory and the model class's ``load`` take ``threads`` (torch intra-op threads,
    # 0 = every usable core), which the application passes from its ``torch_threads`` setting
    takes_threads: bool = False

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad:
            raise PluginError(f"Model '{self.name}' declares unknown task(s) {bad}; known: {TASKS}.")
        odd = [name for name in self.presets if name not in PRESETS]
        if odd:
            raise PluginError(f"Model '{self.name}' declares unknown preset(s) {odd}; known: {PRESETS}.")

    def preset(self, name: str) -> dict[str, Any]:
        """The settings of preset ``name`` (empty when the model does not declare it)."""
        return dict(self.presets.get(name) or {})

    def load_factory(self) -> Callable[..., Model]:
        module_name, _, attr = self.factory.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except Exception as exc:  # noqa: BLE001 - any import failure becomes a user-facing PluginError
            raise PluginError(f"Model '{self.name}' could not be loaded from {self.factory}: {exc}.") from exc

    def _thread_argument(self, threads: int) -> dict[str, int]:
        return {"threads": int(threads)} if self.takes_threads else {}

    def build(self, config: Any, target: str, *, threads: int = 0) -> Model:
        """A new, untrained model (``threads`` reaches it when the spec ``takes_threads``)."""
        return self.load_factory()(config=config, target=target, **self._thread_argument(threads))

    def load(self, directory: Path, *, config: Any, target: str, threads: int = 0) -> Model:
        """A saved model read back by its class's ``load`` (the factory's own, or that of the model the
        factory builds when the factory is a function)."""
        factory = self.load_factory()
        loader = getattr(factory, "load", None)
        if loader is None:
            loader = type(self.build(config, target, threads=threads)).load
        return loader(directory, config=config, target=target, **self._thread_argument(threads))

    def schema(self) -> list[dict[str, Any]]:
        return config_schema(self.config_class)


@dataclass(frozen=True)
class ReportSection:
    """Extra content for model reports: ``render(version: dict) -> str`` returns an HTML fragment."""

    title: str
    render: Callable[[dict[str, Any]], str]
    tasks: tuple[str, ...] = TASKS


def __getattr__(name: str) -> Any:
    """``ReaderSpec`` — a file reader a plugin contributes — is the data layer's
    (:class:`turbofan_desktop.data.readers.ReaderSpec`), defined once there; it is handed out here on
    first use so that importing the plugin API (listing models) does not import pandas."""
    if name == "ReaderSpec":
        from turbofan_desktop.data.readers import ReaderSpec

        return ReaderSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- progress ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgressEvent:
    """Plain data sent by long work. ``fraction`` is the progress of ``stage`` in [0, 1]."""

    stage: str  # "fit", "evaluate", "detect", "forecast", ...
    fraction: float
    epoch: int | None = None
    epochs: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]

#: how often a training loop reports inside an epoch (about; a short epoch reports each batch)
BATCH_REPORTS_PER_EPOCH = 50


def batch_progress(epoch: int, epochs: int, within: float) -> ProgressEvent:
    """The "fit" event of a training loop part-way through ``epoch`` (1-based) of ``epochs``:
    ``within`` of it done. It carries no epoch number, loss or message — those belong to the event
    of a finished epoch (loss curves, epoch counts and logs read them) — only the overall fraction,
    so a long first epoch does not sit at 0 %."""
    fraction = (max(epoch - 1, 0) + min(max(within, 0.0), 1.0)) / max(epochs, 1)
    return ProgressEvent(stage="fit", fraction=fraction)


ShouldStop = Callable[[], bool]


def no_progress(event: ProgressEvent) -> None:
    """The default progress callback."""


def never_stop() -> bool:
    """The default stop check: never asks to stop (the one definition; services use it too)."""
    return False


# -- results -----------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """What training produced besides the weights."""

    history: list[dict[str, float]]  # per epoch: epoch, train_loss, val_loss, seconds
    epochs_run: int
    best_epoch: int
    stopped_early: bool = False
    seed: int | None = None
    notes: list[str] = field(default_factory=list)  # e.g. where early stopping fired and why


@dataclass
class AnomalyRange:
    """An anomalous stretch on the data's own time axis (inclusive), with row indices into the unit."""

    start: Any
    end: Any
    score: float
    start_index: int
    end_index: int
    direction: str = "high"  # "high" (errors above threshold) or "low" (inverted pass)
    probability: float | None = None


@dataclass
class UnitDetection:
    unit: Any
    time: np.ndarray  # time values of the scored steps
    actual: np.ndarray
    predicted: np.ndarray
    errors: np.ndarray
    smoothed: np.ndarray
    threshold: np.ndarray  # threshold per scored step (piecewise constant over windows)
    anomalies: list[AnomalyRange] = field(default_factory=list)


@dataclass
class DetectionResult:
    target: str
    units: dict[Any, UnitDetection]
    threshold_method: str = "nonparametric"


@dataclass
class SensorForecast:
    sensor: str
    time: np.ndarray  # continues the data's own time axis
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)


@dataclass
class UnitForecast:
    unit: Any
    sensors: dict[str, SensorForecast]


@dataclass
class ForecastResult:
    horizon: int
    interval: float  # e.g. 0.8 for the 10-90 % band
    units: dict[Any, UnitForecast]


@dataclass
class UnitRUL:
    """RUL of one unit at its last row: the median and the interval's bounds.

    ``quantiles`` is the predictive distribution the model has (probability level -> RUL in cycles,
    e.g. ``{0.1: lower, 0.5: rul, 0.9: upper}``); left empty, users of the result take ``lower`` /
    ``rul`` / ``upper`` at the levels ``(1 - interval) / 2``, 0.5 and ``(1 + interval) / 2``.
    """

    unit: Any
    rul: float
    lower: float
    upper: float
    true_rul: float | None = None
    quantiles: dict[float, float] = field(default_factory=dict)


@dataclass
class RULResult:
    interval: float
    units: list[UnitRUL]


# -- the model ---------------------------------------------------------------------------------------
@runtime_checkable
class Model(Protocol):
    """What a model object offers. Built by ``spec.build(config, target)``.

    ``fit`` reports per-epoch :class:`ProgressEvent` s and checks ``should_stop()`` between batches,
    raising :class:`~turbofan_desktop.errors.Cancelled` within one batch of it becoming true.
    ``save`` writes only data formats (state dicts loadable with ``weights_only=True``, JSON, .npy):
    an artifact never executes code. For each task in its spec a model also fulfils that task's
    protocol (:data:`TASK_PROTOCOLS`).
    """

    config: Any
    target: str

    def fit(
        self,
        train: Dataset,
        val: Dataset | None,
        *,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
    ) -> FitResult: ...

    def evaluate(
        self, data: Dataset, *, progress: ProgressCallback = no_progress, should_stop: ShouldStop = never_stop
    ) -> dict[str, float]:
        """Validation metrics on held-out data (lower-is-better names end in _rmse/_mae/_mse...)."""
        ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, *, config: Any, target: str) -> Model: ...


@runtime_checkable
class AnomalyModel(Protocol):
    """The ``anomaly`` task: anomalous ranges of the target per unit, on the data's own time axis."""

    def detect(
        self,
        data: Dataset,
        *,
        units: list[Any] | None = None,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
        labels: list[dict[str, Any]] | None = None,
    ) -> DetectionResult:
        """``units``: only these (all when None). ``labels``: the user's feedback on this data (dicts
        with ``unit``, ``start``, ``end``, ``label`` on the data's time axis), passed only when there
        is some; a model may use it (Telemanom can leave labelled ranges out of its thresholds) or
        ignore it."""
        ...


@runtime_checkable
class ForecastModel(Protocol):
    """The ``forecast`` task: median and interval of the model's sensors after each unit's last row."""

    def forecast(
        self, data: Dataset, *, horizon: int | None = None, units: Sequence[Any] | None = None
    ) -> ForecastResult:
        """``horizon``: steps ahead (the model's own default when None); ``units``: only these."""
        ...


@runtime_checkable
class RULModel(Protocol):
    """The ``rul`` task: remaining useful life per unit at its last row, with an interval."""

    def predict_rul(self, data: Dataset) -> RULResult:
        """``true_rul`` is filled in when the data carries a paired RUL file."""
        ...


#: task name -> the protocol a model serving it fulfils
TASK_PROTOCOLS: dict[str, type] = {"anomaly": AnomalyModel, "forecast": ForecastModel, "rul": RULModel}
