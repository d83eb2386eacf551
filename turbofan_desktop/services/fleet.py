"""The fleet view: every engine of one or more files ranked by risk, and a maintenance plan.

:func:`assess` runs the models once — one RUL version for every unit's predictive distribution of the
remaining useful life, optionally anomaly versions for the sensors' anomalies in the last cycles, and a
drift check of each file against the RUL version's training data — and keeps the model's quantiles.
:func:`plan` turns those quantiles into P(failure within H) and a recommendation per engine for any
horizon and costs: pure numpy, vectorised over engines, so a what-if never re-runs a model.

**The predictive distribution.** A RUL model gives quantiles ``q_1 < ... < q_K`` of the remaining life T
at levels ``p_1 < ... < p_K`` (the Transformer: its calibrated 10 %, 50 % and 90 % points). The CDF F is
linear between them (a uniform density per segment). The tails continue the density of the adjacent
segment until F reaches 0 (below ``q_1``) or 1 (above ``q_K``): the lower tail ends at
``q_1 - p_1 (q_2 - q_1) / (p_2 - p_1)``, the upper one at ``q_K + (1 - p_K)(q_K - q_{K-1}) / (p_K - p_{K-1})``.
T cannot be negative: mass the lower tail puts below 0 cycles is a failure now (F(0) > 0).
Before any of this, :func:`assess` widens the lower quantiles by the scale the version's held-out
training engines ask for, and puts the tail shape they chose below the lowest quantile as extra knots
(levels below ``p_1``; :mod:`~turbofan_desktop.services.fleet_calibration`; ``calibrate=False``
keeps the model's own); the model's quantiles stay in ``raw_quantiles`` (at the model's levels).

**The plan** (costs in cycles of engine life, so wasted life adds to them directly). ``C_f`` is the cost
of an unplanned failure, ``C_v`` the cost of a planned visit. Over the planning window of H cycles an
engine with remaining life T can

* be serviced at cycle s (s = 0 is now, 1 <= s <= H is a planned visit): if it is still running
  (T >= s) that costs ``C_v + (T - s)``, the visit plus the life thrown away; if it failed first
  (T < s), ``C_f``. Expected: ``C_f F(s) + C_v (1 - F(s)) + E[(T - s)+]`` (now: ``C_v + E[T]``);
* be monitored (no visit within H): ``C_f`` if it fails within the window (T <= H); otherwise it is
  serviced after the window, counted as ``C_v`` with no life wasted — the same optimistic assumption
  for every policy and for perfect knowledge (which pays ``C_v`` per engine). Expected:
  ``C_f F(H) + C_v (1 - F(H))``.

The recommendation is the cheapest option: **service now** (s = 0), **plan** (by cycle s, 1 <= s < H)
or **monitor**; ties go to the later action, so life is never thrown away for nothing. Monitoring
always costs at most planning at s = H, so a plan is made only where the failure risk it removes before
H is worth the visit and the life it wastes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.errors import ConfigError, IncompatibleDataError, ModelNotTrainedError
from turbofan_desktop.plugins.contract import ProgressEvent, no_progress
from turbofan_desktop.services.applicability import OUT_OF_SCOPE, check_applicability
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.fleet_alarms import DEFAULT_RULE, AlarmRule, fleet_alarms
from turbofan_desktop.services.fleet_calibration import TailCalibration, tail_calibration
from turbofan_desktop.services.inference import detect, model_for, predict_rul
from turbofan_desktop.services.monitoring import check_drift

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

DEFAULT_HORIZON = 30
DEFAULT_COST_FAILURE = 500.0  # an unplanned failure, in cycles of engine life
DEFAULT_COST_VISIT = 50.0  # a planned visit, in cycles of engine life
DEFAULT_ANOMALY_WINDOW = 50  # anomalies ending within this many cycles of a unit's last cycle count

SERVICE_NOW, PLAN, MONITOR = "service now", "plan", "monitor"
ACTIONS = (SERVICE_NOW, PLAN, MONITOR)  # most urgent first
_USABLE = ("trained", "validated")
_EPS = 1e-9


# -- the predictive distribution (pure numpy) -------------------------------------------------------------
def _knots(levels: np.ndarray, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CDF knots per engine, tails included: x (N, K+2) non-decreasing, y (K+2,) from 0 to 1."""
    levels = np.asarray(levels, dtype=np.float64)
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64), axis=1)  # crossing quantiles
    if len(levels) == 1:  # a point forecast: all mass at it
        return np.concatenate([q, q], axis=1), np.array([0.0, 1.0])
    lower_slope = np.maximum(q[:, 1] - q[:, 0], _EPS) / max(levels[1] - levels[0], _EPS)  # cycles / prob
    upper_slope = np.maximum(q[:, -1] - q[:, -2], _EPS) / max(levels[-1] - levels[-2], _EPS)
    start = q[:, 0] - levels[0] * lower_slope
    end = q[:, -1] + (1.0 - levels[-1]) * upper_slope
    x = np.concatenate([start[:, None], q, end[:, None]], axis=1)
    y = np.concatenate([[0.0], levels, [1.0]])
    return x, y


def _cdf_at(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """F(t) per engine for t (N, M): linear between the knots x (N, J) of levels y (J,)."""
    # index of the segment holding t: knots at or below t, per engine
    below = (x[:, None, :] <= t[:, :, None]).sum(axis=2)  # (N, M), 0..J
    j = np.clip(below - 1, 0, x.shape[1] - 2)
    rows = np.arange(x.shape[0])[:, None]
    x0, x1 = x[rows, j], x[rows, j + 1]
    frac = np.clip((t - x0) / np.maximum(x1 - x0, _EPS), 0.0, 1.0)
    f = y[j] + frac * (y[j + 1] - y[j])
    return np.where(below == 0, 0.0, np.where(below >= x.shape[1], 1.0, f))


def failure_probability(
    levels: Sequence[float], quantiles: np.ndarray, within: float | np.ndarray
) -> np.ndarray:
    """P(T <= h) per engine: ``quantiles`` (N, K) at ``levels`` (K,); ``within`` a number or (N,) or
    (N, M) array of horizons in cycles (negative horizons give 0). Returns the shape of the horizons
    broadcast to (N,) or (N, M)."""
    x, y = _knots(np.asarray(levels), quantiles)
    n = x.shape[0]
    h = np.asarray(within, dtype=np.float64)
    grid = np.full((n, 1), float(h)) if h.ndim == 0 else (h.reshape(n, 1) if h.ndim == 1 else h)
    f = np.where(grid < 0, 0.0, _cdf_at(x, y, grid))
    return f[:, 0] if h.ndim <= 1 else f


def expected_life_beyond(levels: Sequence[float], quantiles: np.ndarray, s: np.ndarray) -> np.ndarray:
    """E[(T - s)+] per engine and cycle s >= 0 (N, M): the integral of the survival function 1 - F
    from s on, exact for the piecewise-linear F (mass below 0 cycles never reaches it)."""
    x, y = _knots(np.asarray(levels), quantiles)
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    surv = 1.0 - y  # at the knots
    # area of each segment's trapezoid, and the area from each knot to the end
    seg = (x[:, 1:] - x[:, :-1]) * (surv[1:] + surv[:-1]) / 2.0  # (N, J-1)
    tail = np.concatenate([np.cumsum(seg[:, ::-1], axis=1)[:, ::-1], np.zeros((x.shape[0], 1))], axis=1)
    below = (x[:, None, :] <= s[:, :, None]).sum(axis=2)  # knots at or below s
    rows = np.arange(x.shape[0])[:, None]
    j = np.clip(below - 1, 0, x.shape[1] - 2)
    x0, x1 = x[rows, j], x[rows, j + 1]
    frac = np.clip((s - x0) / np.maximum(x1 - x0, _EPS), 0.0, 1.0)
    surv_s = surv[j] + frac * (surv[j + 1] - surv[j])
    inside = (x1 - s) * (surv_s + surv[j + 1]) / 2.0 + tail[rows, j + 1]
    before_start = (x[:, :1] - s) + tail[:, :1]  # survival is 1 before the first knot
    return np.where(below == 0, before_start, np.where(below >= x.shape[1], 0.0, inside))


# -- the plan (pure numpy) -----------------------------------------------------------------------------------
@dataclass
class MaintenancePlan:
    """Per engine (in the assessment's order): P(T <= H), the recommended action, the cycle of the
    planned visit (0 now; NaN when monitored), the expected cost of the action and of each option."""

    horizon: int
    cost_failure: float
    cost_visit: float
    p_fail: np.ndarray  # (N,)
    action: np.ndarray  # (N,) of ACTIONS
    service_at: np.ndarray  # (N,) cycles from now; NaN = monitor
    expected_cost: np.ndarray  # (N,)
    cost_now: np.ndarray
    cost_best_plan: np.ndarray
    cost_monitor: np.ndarray

    def counts(self) -> dict[str, int]:
        return {a: int((self.action == a).sum()) for a in ACTIONS}

    def risk_order(self) -> np.ndarray:
        """Engine indices, most urgent first: by action, then earliest visit, then highest P(fail)."""
        urgency = np.array([ACTIONS.index(a) for a in self.action])
        visit = np.nan_to_num(self.service_at, nan=np.inf)
        return np.lexsort((-self.p_fail, visit, urgency))


def validate_plan_settings(horizon: Any, cost_failure: Any, cost_visit: Any) -> tuple[int, float, float]:
    """The what-if settings checked: a whole horizon of at least 1 cycle, costs that are finite and
    not negative, a failure dearer than a visit (otherwise nothing would ever be serviced)."""
    try:
        h = int(horizon)
        c_f, c_v = float(cost_failure), float(cost_visit)
    except (TypeError, ValueError):
        raise ConfigError(
            f"The horizon ({horizon!r}) must be a whole number of cycles and the costs ({cost_failure!r}, "
            f"{cost_visit!r}) numbers."
        ) from None
    if h != float(horizon) or h < 1:
        raise ConfigError(f"The horizon must be a whole number of cycles of at least 1, not {horizon}.")
    if not (np.isfinite(c_f) and np.isfinite(c_v)) or c_f < 0 or c_v < 0:
        raise ConfigError(f"The costs must be finite and not negative (failure {c_f:g}, visit {c_v:g}).")
    if c_f <= c_v:
        raise ConfigError(
            f"The cost of an unplanned failure ({c_f:g}) must exceed the cost of a planned visit ({c_v:g})."
        )
    return h, c_f, c_v


def plan_curves(
    levels: Sequence[float], quantiles: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """F(s) and E[(T - s)+] per engine for the visit cycles s = 0..horizon, each (N, horizon + 1):
    what a plan needs from the distribution. Neither depends on the costs, nor on H beyond its
    length, so a what-if can reuse them (:meth:`FleetAssessment.plan`)."""
    q = np.asarray(quantiles, dtype=np.float64).reshape(-1, len(levels))
    cycles = np.broadcast_to(np.arange(int(horizon) + 1, dtype=np.float64), (q.shape[0], int(horizon) + 1))
    f = failure_probability(levels, q, cycles)
    f[:, 0] = 0.0  # running now: a visit now always finds the engine alive
    return f, expected_life_beyond(levels, q, cycles)


def plan(
    levels: Sequence[float],
    quantiles: np.ndarray,
    *,
    horizon: int = DEFAULT_HORIZON,
    cost_failure: float = DEFAULT_COST_FAILURE,
    cost_visit: float = DEFAULT_COST_VISIT,
) -> MaintenancePlan:
    """The recommendation per engine that minimises expected cost (the rule: module docstring).

    ``quantiles`` (N, K) of the remaining life at ``levels`` (K,). Vectorised over engines and over the
    candidate visit cycles 0..H.
    """
    h, c_f, c_v = validate_plan_settings(horizon, cost_failure, cost_visit)
    f, life_left = plan_curves(levels, quantiles, h)
    return plan_from_curves(f, life_left, horizon=h, cost_failure=c_f, cost_visit=c_v)


def plan_from_curves(
    f: np.ndarray, life_left: np.ndarray, *, horizon: int, cost_failure: float, cost_visit: float
) -> MaintenancePlan:
    """:func:`plan` from :func:`plan_curves` (columns 0..H of curves at least H + 1 long)."""
    h, c_f, c_v = validate_plan_settings(horizon, cost_failure, cost_visit)
    f, life_left = f[:, : h + 1], life_left[:, : h + 1]
    n = f.shape[0]
    cost = c_f * f + c_v * (1.0 - f) + life_left  # (N, H+1)
    p_fail = f[:, h]
    cost_monitor = c_f * p_fail + c_v * (1.0 - p_fail)
    cost_now = cost[:, 0]
    # the best planned visit: the cheapest cycle 1..H, the latest among equals
    later_first = cost[:, :0:-1]  # cycles H..1
    best_plan_idx = h - np.argmin(later_first, axis=1)
    rows = np.arange(n)
    cost_best_plan = cost[rows, best_plan_idx]
    options = np.stack([cost_now, cost_best_plan, cost_monitor], axis=1)
    # ties go to the later action: pick the minimum scanning monitor -> plan -> now
    choice = 2 - np.argmin(options[:, ::-1], axis=1)
    action = np.asarray(ACTIONS, dtype=object)[choice]
    service_at = np.where(choice == 0, 0.0, np.where(choice == 1, best_plan_idx.astype(np.float64), np.nan))
    expected = options[rows, choice]
    return MaintenancePlan(
        horizon=h,
        cost_failure=c_f,
        cost_visit=c_v,
        p_fail=p_fail,
        action=action,
        service_at=service_at,
        expected_cost=expected,
        cost_now=cost_now,
        cost_best_plan=cost_best_plan,
        cost_monitor=cost_monitor,
    )


def realised_cost(
    service_at: np.ndarray, true_rul: np.ndarray, *, horizon: int, cost_failure: float, cost_visit: float
) -> np.ndarray:
    """What a plan costs per engine once the true remaining life T is known (same accounting as
    :func:`plan`): a visit at cycle s <= H costs ``C_v + (T - s)`` if the engine still runs (T >= s),
    else ``C_f``; no visit within H (NaN, or s > H) costs ``C_f`` if T <= H, else ``C_v``."""
    s = np.asarray(service_at, dtype=np.float64)
    t = np.asarray(true_rul, dtype=np.float64)
    visit = np.isfinite(s) & (s <= horizon)
    s_visit = np.where(visit, s, 0.0)
    planned = np.where(t >= s_visit, cost_visit + (t - s_visit), cost_failure)
    monitored = np.where(t <= horizon, cost_failure, cost_visit)
    return np.where(visit, planned, monitored)


# -- assessing the fleet (runs the models) ---------------------------------------------------------------------
@dataclass
class EngineAssessment:
    """One engine at its last cycle: the RUL median and interval, anomalies in the last cycles
    (``sensor``, ``version_id``, ``start``, ``end``, ``score``), the drifted sensors of its file."""

    file: str
    unit: Any
    last_cycle: Any
    rul: float
    lower: float
    upper: float
    true_rul: float | None = None
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    applicability: str | None = None  # the worst verdict of the versions used on its file


@dataclass
class FleetFile:
    """A file of the fleet: where it is, what it holds (hashes), its drift verdict and the
    applicability verdict of every version used on it (``version_id``, ``label``, ``role`` rul /
    anomaly, ``verdict``, ``reasons``, ``used``: False for an anomaly version out of scope, left out)."""

    path: str
    data_hash: str
    file_sha256: str | None
    units: int
    drift_checked: bool
    drifted: list[str] = field(default_factory=list)
    applicability: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict(self) -> str | None:
        """The worst verdict of the versions used on this file (None: not checked)."""
        return worst_verdict(a["verdict"] for a in self.applicability)


def worst_verdict(verdicts: Any) -> str | None:
    """``out_of_scope`` over ``caution`` over ``ok``; None for no verdict."""
    from turbofan_desktop.services.applicability import VERDICTS

    found = [v for v in verdicts if v in VERDICTS]
    return max(found, key=VERDICTS.index) if found else None


@dataclass
class FleetAssessment:
    """What :func:`assess` found: the engines in file order, the model's quantiles of each engine's RUL
    (``quantiles`` (N, K) at ``levels`` (K,)), the versions and files it came from."""

    rul_version: int
    rul_version_label: str
    interval: float
    levels: np.ndarray
    quantiles: np.ndarray
    engines: list[EngineAssessment]
    files: list[FleetFile]
    anomaly_versions: list[int] = field(default_factory=list)
    anomaly_window: int = DEFAULT_ANOMALY_WINDOW
    seconds: float = 0.0
    raw_quantiles: np.ndarray | None = None  # the model's own, before the tail calibration
    calibration: TailCalibration | None = None
    anomaly_labels: dict[int, str] = field(default_factory=dict)  # version id -> its label
    _curves: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.engines)

    def applicability(self) -> dict[str, Any]:
        """The per-file verdicts of the versions used, and the worst of them (the CLI's JSON object)."""
        return {
            "verdict": worst_verdict(f.verdict for f in self.files),
            "files": [
                {"path": f.path, "verdict": f.verdict, "versions": f.applicability} for f in self.files
            ],
        }

    def plan(
        self,
        horizon: int = DEFAULT_HORIZON,
        cost_failure: float = DEFAULT_COST_FAILURE,
        cost_visit: float = DEFAULT_COST_VISIT,
    ) -> MaintenancePlan:
        """A plan for these engines from the cached quantiles (no model runs). The distribution's
        curves over the visit cycles are kept, so another horizon up to the longest seen, or other
        costs, only redo the arithmetic of the decision."""
        h, c_f, c_v = validate_plan_settings(horizon, cost_failure, cost_visit)
        cached = self._curves
        if cached is None or cached[0] is not self.quantiles or cached[1].shape[1] <= h:
            length = max(h, 2 * (cached[1].shape[1] - 1) if cached is not None else h)
            self._curves = (self.quantiles, *plan_curves(self.levels, self.quantiles, length))
        _, f, life_left = self._curves
        return plan_from_curves(f, life_left, horizon=h, cost_failure=c_f, cost_visit=c_v)

    def rows(
        self, maintenance: MaintenancePlan, alarm_rule: AlarmRule = DEFAULT_RULE
    ) -> list[dict[str, Any]]:
        """One plain dict per engine (the CLI's JSON objects), in the assessment's order; ``alarm`` is
        the cycle at which ``alarm_rule`` fired on the engine's recent anomaly ranges (None: no alarm)."""
        alarms = fleet_alarms(self, alarm_rule)
        out = []
        for i, engine in enumerate(self.engines):
            at = maintenance.service_at[i]
            row = {
                "file": engine.file,
                "unit": engine.unit,
                "last_cycle": engine.last_cycle,
                "rul": engine.rul,
                "lower": engine.lower,
                "upper": engine.upper,
                "p_fail_within_h": float(maintenance.p_fail[i]),
                "anomalies": engine.anomalies,
                "drift": engine.drift,
                "recommendation": str(maintenance.action[i]),
                "service_at": None if np.isnan(at) else int(at),
                "expected_cost": float(maintenance.expected_cost[i]),
                "rul_version": self.rul_version,
                "applicability": engine.applicability,
                "alarm": None if np.isnan(alarms[i]) else _cycle(alarms[i]),
            }
            if engine.true_rul is not None:
                row["true_rul"] = engine.true_rul
            out.append(row)
        return out


def _cycle(value: float) -> int | float:
    """A cycle as the data gives it: a whole number as an int."""
    return int(value) if float(value).is_integer() else float(value)


def alarm_rule_summary(assessment: FleetAssessment, rule: AlarmRule) -> dict[str, Any]:
    """The alarm rule as the CLI's JSON, text and the fleet report name it once: the rule, whether it is
    the default (chosen for the versions of ``benchmarks/fleet_cmapss.py --alarms-only``, whose scores
    its threshold fits), how many engines it alarmed, and a sentence."""
    alarmed = int(np.isfinite(fleet_alarms(assessment, rule)).sum())
    default = rule == DEFAULT_RULE
    text = rule.describe()
    if default:
        text += (
            " (the default, chosen on FD001's held-out engines for the Telemanom versions it was measured "
            "with; its minimum score fits those versions' scores)"
        )
    watched = {a.get("sensor") for e in assessment.engines for a in e.anomalies}
    if not assessment.anomaly_versions:
        text += ": no anomaly versions applied, so no alarms"
    else:
        text += f": {alarmed} of {len(assessment)} engines alarmed"
        if not watched & set(rule.sensors):
            text += " (none of its sensors has an anomaly range in the window)"
    return {**rule.to_dict(), "default": default, "alarmed": alarmed, "summary": text}


def _pairing_key(source: str | Path | None) -> str | None:
    """What a file's name says it holds, without its train / test / RUL prefix (``fd001``)."""
    if not source:
        return None
    stem = Path(str(source)).stem.lower()
    for prefix in ("train", "test", "rul"):
        if stem.startswith(prefix):
            return stem[len(prefix) :].lstrip("_- ") or None
    return stem


def rul_versions(ws: Workspace) -> list[Any]:
    """Usable versions of every model that offers the ``rul`` task, newest first."""
    plugins = [name for name, spec in ws.plugins.models().items() if "rul" in spec.tasks]
    records = []
    for plugin in plugins:
        records += [r for r in ws.registry.list_versions(plugin=plugin, limit=500) if r.status in _USABLE]
    return sorted(records, key=lambda r: -int(r.id))


def default_rul_version(ws: Workspace, dataset: Dataset) -> int:
    """The production RUL version whose training data matches the file (same data hash, or the same
    name key: ``train_FD001`` for ``test_FD001``), else the newest trained RUL version."""
    candidates = rul_versions(ws)
    if not candidates:
        raise ModelNotTrainedError(
            "No trained model offers remaining useful life; train a Transformer first "
            "(turbofan-desktop train FILE --model transformer)."
        )
    key = _pairing_key(dataset.source or dataset.name)

    def matches(record: Any) -> bool:
        lineage = dict(record.lineage or {})
        return lineage.get("data_hash") == dataset.data_hash or (
            key is not None and _pairing_key(lineage.get("source")) == key
        )

    for record in candidates:
        if record.stage == "production" and matches(record):
            return int(record.id)
    return int(candidates[0].id)


def anomaly_versions_for(ws: Workspace, datasets: Sequence[Dataset]) -> list[Any]:
    """Usable versions of every anomaly model whose target every one of the files has (a sensor, or
    ``*`` for an all-sensor version), newest first: what a user may choose from."""
    columns = set.intersection(*(set(d.frame.columns) for d in datasets)) if datasets else set()
    plugins = [name for name, spec in ws.plugins.models().items() if "anomaly" in spec.tasks]
    records = []
    for plugin in plugins:
        records += [
            r
            for r in ws.registry.list_versions(plugin=plugin, limit=500)
            if r.status in _USABLE and (r.target == "*" or r.target in columns)
        ]
    return sorted(records, key=lambda r: -int(r.id))


def default_anomaly_versions(ws: Workspace, datasets: Sequence[Dataset]) -> list[int]:
    """The production version of every anomaly model target that each of the files has (a sensor
    target; an all-sensor version when its model offers anomalies), oldest target first."""
    return sorted(int(r.id) for r in anomaly_versions_for(ws, datasets) if r.stage == "production")


def newest_validated_anomaly_versions(ws: Workspace, datasets: Sequence[Dataset]) -> list[int]:
    """Per anomaly model and target the files have, the newest version that was validated (on its
    held-out units or a data file); a target without one is left out."""
    chosen: dict[tuple[str, str], int] = {}
    for record in anomaly_versions_for(ws, datasets):  # newest first
        if record.validation_performed:
            chosen.setdefault((record.plugin, record.target), int(record.id))
    return sorted(chosen.values())


def _levels_and_values(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """The model's quantile levels and values (N, K): its ``quantiles`` when every unit has the same
    levels, else lower / median / upper at the interval's levels."""
    units = result.units
    first = dict(units[0].quantiles or {}) if units else {}
    if first and all(sorted((u.quantiles or {}).keys()) == sorted(first) for u in units):
        levels = np.array(sorted(float(k) for k in first), dtype=np.float64)
        keys = sorted(first)
        values = np.array([[float(u.quantiles[k]) for k in keys] for u in units], dtype=np.float64)
        return levels, values.reshape(len(units), len(keys))
    interval = float(result.interval)
    levels = np.array([(1.0 - interval) / 2.0, 0.5, (1.0 + interval) / 2.0])
    values = np.array([[u.lower, u.rul, u.upper] for u in units], dtype=np.float64)
    return levels, values.reshape(len(units), 3)


def _recent_anomalies(ws: Workspace, version_ids: Sequence[int], dataset: Dataset, window: int) -> dict:
    """unit -> anomaly ranges (of every anomaly version) ending within ``window`` cycles of its end."""
    found: dict[Any, list[dict[str, Any]]] = {}
    last = dataset.frame.groupby(UNIT, sort=False)[dataset.time_col].max()
    for version_id in version_ids:
        result = detect(ws, version_id, dataset, record_kpis=False)  # a fleet view only reads
        for unit, detection in result.units.items():
            cutoff = last.get(unit)
            for r in detection.anomalies:
                if cutoff is None or _time_value(r.end) >= _time_value(cutoff) - window:
                    found.setdefault(unit, []).append(
                        {
                            "sensor": result.target,
                            "version_id": int(version_id),
                            "start": _plain(r.start),
                            "end": _plain(r.end),
                            "score": float(r.score),
                        }
                    )
    return found


def _verdicts(
    ws: Workspace, dataset: Dataset, rul_version: int, anomaly_versions: Sequence[int]
) -> list[dict[str, Any]]:
    """The applicability verdict of each version on ``dataset`` (reads only; nothing is stored)."""
    out = []
    for role, version_id in [("rul", rul_version)] + [("anomaly", v) for v in anomaly_versions]:
        record = ws.registry.get(int(version_id))
        verdict = check_applicability(ws, record, dataset)
        out.append(
            {
                "version_id": int(version_id),
                "label": record.label,
                "role": role,
                "verdict": verdict.verdict,
                "reasons": list(verdict.reasons),
                "used": role == "rul" or verdict.verdict != OUT_OF_SCOPE,
            }
        )
    return out


def verdict_line(verdict: dict[str, Any]) -> str:
    """One version's applicability on one file: ``label: verdict (first reason)``."""
    reason = f" ({verdict['reasons'][0]})" if verdict.get("reasons") else ""
    left_out = "" if verdict.get("used", True) else ", left out"
    return f"{verdict['label']}: {verdict['verdict'].replace('_', ' ')}{left_out}{reason}"


def _time_value(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float(np.datetime64(value, "s").astype(np.int64))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def assess(
    ws: Workspace,
    files: Sequence[str | Path | Dataset],
    *,
    rul_version: int | None = None,
    anomaly_versions: Sequence[int] = (),
    anomaly_window: int = DEFAULT_ANOMALY_WINDOW,
    drift: bool = True,
    calibrate: bool = True,
    accept_out_of_scope: bool = False,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FleetAssessment:
    """Assess every unit of ``files`` (paths, or datasets already read) with one RUL version.

    ``rul_version`` None: :func:`default_rul_version` of the first file. Every file must carry the
    version's sensors (IncompatibleDataError naming the file otherwise). ``drift``: each file is checked
    against the RUL version's training statistics (nothing is stored: a fleet view only reads). Each
    file gets the applicability verdict of every version used; a file out of the RUL version's scope is
    refused unless ``accept_out_of_scope``, an anomaly version out of a file's scope is left out of that
    file (and says so). ``calibrate``: the lower tail of the predictive distribution is widened as the
    version's held-out training engines ask (:mod:`~turbofan_desktop.services.fleet_calibration`).
    """
    from turbofan_desktop.services._common import raise_if_stopped, stop_checker

    started = time.perf_counter()
    stop = stop_checker(should_stop)
    report = progress or no_progress
    if not files:
        raise ConfigError("A fleet needs at least one data file.")
    if int(anomaly_window) < 0:
        raise ConfigError(
            f"The anomaly window must be a number of cycles of at least 0, not {anomaly_window}."
        )
    datasets = [f if isinstance(f, Dataset) else load_dataset(ws, Path(f)) for f in files]
    version_id = int(rul_version) if rul_version is not None else default_rul_version(ws, datasets[0])
    record = ws.registry.get(version_id)
    model_for(ws, version_id)  # once, before the files (a wrong version fails before any work)
    anomaly_labels = {int(v): ws.registry.get(int(v)).label for v in anomaly_versions}
    engines: list[EngineAssessment] = []
    fleet_files: list[FleetFile] = []
    levels: np.ndarray | None = None
    blocks: list[np.ndarray] = []
    interval = 0.0
    for index, dataset in enumerate(datasets):
        raise_if_stopped(stop)
        where = str(dataset.source) if dataset.source else (dataset.name or f"file {index + 1}")
        report(ProgressEvent("fleet", index / len(datasets), message=f"RUL of {Path(where).name}"))
        verdicts = _verdicts(ws, dataset, version_id, anomaly_versions)
        try:
            result = predict_rul(ws, version_id, dataset, accept_out_of_scope=accept_out_of_scope)
        except IncompatibleDataError as exc:  # a fleet has many files: say which one
            raise type(exc)(exc.args[0] if where in str(exc) else f"{where}: {exc}") from None
        if not result.units:
            raise IncompatibleDataError(f"{where} has no unit long enough for version {version_id}.")
        file_levels, values = _levels_and_values(result)
        if levels is not None and not np.allclose(levels, file_levels):
            raise IncompatibleDataError(f"{where}: version {version_id} gave other quantile levels.")
        levels, interval = file_levels, float(result.interval)
        blocks.append(values)
        raise_if_stopped(stop)
        usable = [v["version_id"] for v in verdicts if v["role"] == "anomaly" and v["used"]]
        anomalies = _recent_anomalies(ws, usable, dataset, int(anomaly_window)) if usable else {}
        checked = check_drift(ws, version_id, dataset, store=False) if drift else None
        drifted = list(checked.drifted) if checked is not None else []
        fleet_file = FleetFile(
            path=where,
            data_hash=dataset.data_hash,
            file_sha256=dataset.file_sha256,
            units=len(result.units),
            drift_checked=checked is not None,
            drifted=drifted,
            applicability=verdicts,
        )
        fleet_files.append(fleet_file)
        last = dataset.frame.groupby(UNIT, sort=False)[dataset.time_col].max()
        for u in result.units:
            engines.append(
                EngineAssessment(
                    file=where,
                    unit=_plain(u.unit),
                    last_cycle=_plain(last.get(u.unit)),
                    rul=float(u.rul),
                    lower=float(u.lower),
                    upper=float(u.upper),
                    true_rul=None if u.true_rul is None else float(u.true_rul),
                    anomalies=anomalies.get(u.unit, []),
                    drift=drifted,
                    applicability=fleet_file.verdict,
                )
            )
    raw = np.concatenate(blocks, axis=0)
    calibration = None
    quantiles, levels = raw, np.asarray(levels)
    if calibrate:
        report(ProgressEvent("fleet", 0.99, message="tail calibration on held-out training engines"))
        calibration = tail_calibration(ws, version_id)
        quantiles = calibration.apply(levels, raw)
        _show_calibrated_interval(engines, levels, quantiles, interval)
        levels, quantiles = calibration.with_tail(levels, quantiles)
    report(ProgressEvent("fleet", 1.0, message=f"{len(engines)} engines assessed"))
    return FleetAssessment(
        rul_version=version_id,
        rul_version_label=record.label,
        interval=interval,
        levels=levels,
        quantiles=quantiles,
        engines=engines,
        files=fleet_files,
        anomaly_versions=[int(v) for v in anomaly_versions],
        anomaly_window=int(anomaly_window),
        seconds=time.perf_counter() - started,
        raw_quantiles=raw,
        calibration=calibration,
        anomaly_labels=anomaly_labels,
    )


def _show_calibrated_interval(
    engines: list[EngineAssessment], levels: np.ndarray, quantiles: np.ndarray, interval: float
) -> None:
    """The engines' lower bound at the interval's level, from the calibrated quantiles (when the
    model's quantiles include that level), so the table shows the distribution the plan uses."""
    hits = np.flatnonzero(np.isclose(levels, (1.0 - interval) / 2.0))
    if not len(hits):
        return
    for engine, value in zip(engines, quantiles[:, int(hits[0])], strict=True):
        engine.lower = float(value)


__all__ = [
    "ACTIONS",
    "DEFAULT_COST_FAILURE",
    "DEFAULT_COST_VISIT",
    "DEFAULT_HORIZON",
    "MONITOR",
    "PLAN",
    "SERVICE_NOW",
    "EngineAssessment",
    "FleetAssessment",
    "FleetFile",
    "MaintenancePlan",
    "alarm_rule_summary",
    "assess",
    "anomaly_versions_for",
    "default_anomaly_versions",
    "newest_validated_anomaly_versions",
    "default_rul_version",
    "expected_life_beyond",
    "failure_probability",
    "plan",
    "plan_curves",
    "plan_from_curves",
    "realised_cost",
    "rul_versions",
    "validate_plan_settings",
    "verdict_line",
    "worst_verdict",
]
