"""The lower tail of a RUL version's predictive distribution, calibrated for fleet snapshots.

A RUL model's interval is calibrated on training windows; a fleet is a set of *snapshots* — every engine
cut at some cycle, its remaining life unknown. Whether the 10 % quantile really holds 10 % of the
engines that fail early decides P(failure within H) and so the plan. :func:`tail_calibration` checks
it on the version's own **held-out training engines** (the units its registry split kept out of
training, read again from its training file; never a test file): each is cut at random cycles, as a
test file cuts its engines, the version predicts every cut, and the true remaining life of each cut is
known.

The rule: two split-conformal lower bounds, and the lower of them. For a cut with median m, a quantile q
at a level p < 0.5 and true remaining life T,

* the model's own spread, scaled: the score ``(m - T) / (m - q)``, its scale ``s`` the
  ``ceil((n + 1)(1 - p))``-th smallest of the n scores (never below 1: the version's own interval is
  never narrowed on a few dozen engines);
* a share of the median: the score ``(m - T) / m``, its share ``f`` the same order statistic. This
  bound matters where the model's spread collapses (lower quantile = median, so P(T <= H) = 0 even
  for an engine a few cycles from the horizon): an error that grows with the remaining life.

:meth:`TailCalibration.apply` moves each quantile below the median to ``min(m - s (m - q), m (1 - f))``;
the median and the upper quantiles stay. Each bound alone leaves at most a share p of the held-out cuts
below it; the lower of the two is wider, so the calibrated tail errs on the side of planning a visit.
The held-out engines are the version's test units when its split kept some: a RUL version trained by
the app keeps half of its held-out units apart as calibration engines, never fitted on and never seen
by early stopping or the plugin's interval calibration (``services.training.training_split``). A
version without test units (trained before that, or with a test fraction of 0) is calibrated on its
validation units, which training also used for early stopping and the interval's own calibration, so
they flatter the model's tail; the summary says so (``engines``: ``"test"`` or ``"val"``). That is
another reason for the wider of the two bounds.

**The tail below the lowest quantile.** The predictive distribution is linear between quantiles; below
the lowest one (``q_1`` at level ``p_1``) the model says nothing, and the default tail (the density of
the next segment, ending ``p_1 / (p_2 - p_1)`` spreads below ``q_1``) is thin: an engine whose ``q_1``
sits a few cycles above the horizon gets almost no P(T <= H). :func:`fit_tail_shape` chooses the
shape of that tail on the same held-out cuts, in units of each cut's calibrated spread
``u = max(m - q_1, 1)``: the default linear tail, a longer linear one (depth ``L u``, density
``p_1 / (L u)``), or an exponential one (``F(t) = p_1 exp(-(q_1 - t) / (b u))``, drawn as knots),
whichever gives the lowest Brier score of P(T <= h) over the cuts for h = 5, 10, ..., 60 cycles (the
horizons a planner asks about). :meth:`TailCalibration.with_tail` adds the chosen tail as extra knots
at levels below ``p_1``; the quantiles at the model's own levels do not move.

Pure numpy + the services (the model runs through :func:`~turbofan_desktop.services.inference.predict_rul`).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.errors import TurbofanError

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

DEFAULT_CUTS_PER_UNIT = 10
DEFAULT_MIN_HISTORY = 30  # cycles an engine has run at least when it is cut (as in the C-MAPSS test files)
TAIL_HORIZONS = np.arange(5.0, 61.0, 5.0)  # cycles: the horizons the tail's shape is scored on
LINEAR_DEPTHS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # linear tail depths tried, in spreads
EXPONENTIAL_SCALES = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # exponential tail scales tried, in spreads
_EXP_STEPS = np.arange(0.5, 5.01, 0.5)  # the exponential tail's knots, in scales below q_1
_MIN_CUTS = 20  # fewer scored cuts than this: no calibration (the scale would be noise)
_CACHE: OrderedDict[tuple, TailCalibration] = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class TailCalibration:
    """How one version's lower tail is widened for fleet snapshots (no levels: unchanged). Per level
    below the median (``levels``): the spread's scale and the share of the median (module docstring)."""

    version_id: int
    levels: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()
    shares: tuple[float, ...] = ()
    units: int = 0  # held-out engines
    engines: str = ""  # which: "test" (kept apart from fitting and early stopping) or "val" (validation)
    cuts: int = 0  # snapshots scored
    below_before: float | None = None  # share of cuts with T below the model's lowest quantile
    below_after: float | None = None  # ... below the calibrated one
    note: str = ""
    tail_shape: str = "model"  # below the lowest quantile: "model" (the default), "linear", "exponential"
    tail_size: float = 0.0  # linear: depth in spreads; exponential: scale in spreads
    brier_before: float | None = None  # held-out Brier of P(T <= h) over TAIL_HORIZONS, model's tail
    brier_after: float | None = None  # ... with the chosen tail

    @property
    def calibrated(self) -> bool:
        return bool(self.levels)

    def apply(self, levels: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
        """The quantiles (N, K) at ``levels`` (K,) with each calibrated level below the median moved
        to the lower of its two bounds; the others unchanged."""
        q = np.asarray(quantiles, dtype=np.float64)
        out = q.copy()
        median = _median_index(levels)
        if median is None or not self.calibrated:
            return out
        m = q[:, median]
        for k, level in enumerate(np.asarray(levels, dtype=np.float64)):
            hits = [i for i, own in enumerate(self.levels) if np.isclose(own, level)]
            if level < 0.5 and hits:
                i = hits[0]
                out[:, k] = np.minimum(m - self.scales[i] * (m - q[:, k]), m * (1.0 - self.shares[i]))
        return out

    def with_tail(self, levels: np.ndarray, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``levels`` and ``quantiles`` (N, K) with the chosen tail's knots put in front (levels below
        the lowest); unchanged for the model's own tail. Apply :meth:`apply` first."""
        return tail_knots(levels, quantiles, self.tail_shape, self.tail_size)

    def tail_text(self) -> str:
        if self.tail_shape == "linear":
            return f"below it a linear tail {self.tail_size:g} spreads deep"
        if self.tail_shape == "exponential":
            return f"below it an exponential tail of scale {self.tail_size:g} spreads"
        return "below it the model's own tail"

    def summary(self) -> str:
        """One sentence for the panel, the CLI and the report."""
        if not self.calibrated:
            return (
                f"lower tail as the model gives it ({self.note})" if self.note else "lower tail uncalibrated"
            )
        return (
            f"lower {self.levels[0]:.0%} quantile: the lower of the model's spread x{self.scales[0]:.2f} and "
            f"{1 - self.shares[0]:.0%} of the median, {self.tail_text()}, from {self.cuts} cuts of "
            f"{self.units} held-out training engines{self.engines_text()} ({self.below_before:.0%} of them "
            f"below the model's quantile, {self.below_after:.0%} after)"
        )

    def engines_text(self) -> str:
        if self.engines == "test":
            return " kept apart from fitting and early stopping"
        if self.engines == "val":
            return (
                " — its validation engines, also used for early stopping, which flatters the tail "
                "(a version trained now keeps calibration engines apart)"
            )
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "scales": list(self.scales),
            "shares": list(self.shares),
            "units": self.units,
            "engines": self.engines,
            "cuts": self.cuts,
            "below_before": self.below_before,
            "below_after": self.below_after,
            "note": self.note,
            "tail_shape": self.tail_shape,
            "tail_size": self.tail_size,
            "brier_before": self.brier_before,
            "brier_after": self.brier_after,
            "summary": self.summary(),
        }


def _median_index(levels: Any) -> int | None:
    levels = np.asarray(levels, dtype=np.float64)
    hits = np.flatnonzero(np.isclose(levels, 0.5))
    return int(hits[0]) if len(hits) and (levels < 0.5).any() else None


def cut_snapshots(
    dataset: Dataset,
    *,
    cuts_per_unit: int = DEFAULT_CUTS_PER_UNIT,
    min_history: int = DEFAULT_MIN_HISTORY,
    seed: int = 0,
) -> Dataset:
    """Every run-to-failure unit cut at ``cuts_per_unit`` random cycles (each after at least
    ``min_history`` rows, before its last): one new unit per cut, its true RUL the rows it lost."""
    rng = np.random.default_rng(seed)
    frames, ruls, new_id = [], {}, 0
    for unit in dataset.units:
        rows = dataset.unit_frame(unit)
        life = len(rows)
        low = min(min_history, life - 1)
        if life < 2 or low < 1:
            continue
        for cut in np.sort(rng.integers(low, life, size=cuts_per_unit)):
            new_id += 1
            part = rows.iloc[: int(cut)].copy()
            part[UNIT] = new_id
            frames.append(part)
            ruls[new_id] = float(life - int(cut))
    if not frames:
        return dataset.with_frame(dataset.frame.iloc[:0], {"step": "fleet calibration cuts"}, rul=None)
    frame = pd.concat(frames, ignore_index=True)
    return dataset.with_frame(
        frame,
        {"step": "fleet calibration cuts", "cuts_per_unit": cuts_per_unit, "seed": seed},
        rul=pd.Series(ruls, name="rul"),
        rul_source=None,
        source=None,
        name=f"{dataset.name or 'held-out'} (cuts)",
    )


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1)(1 - level))``-th smallest score: at most a share ``level`` of exchangeable
    new scores exceed it (the largest score when n is too small for that)."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(ordered)
    k = math.ceil((n + 1) * (1.0 - level))
    return float(ordered[min(max(k, 1), n) - 1])


def fit_tail(
    levels: np.ndarray, values: np.ndarray, truth: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per level below the median: (levels, spread scales >= 1, shares of the median in [0, 1))."""
    median = _median_index(levels)
    if median is None:
        return (), (), ()
    m = values[:, median]
    out_levels, scales, shares = [], [], []
    for k, level in enumerate(levels):
        if level >= 0.5:
            continue
        spread = np.maximum(m - values[:, k], 1.0)  # cycles: a collapsed spread still scores finitely
        scale = max(1.0, conformal_quantile((m - truth) / spread, float(level)))
        share = conformal_quantile((m - truth) / np.maximum(m, 1.0), float(level))
        out_levels.append(float(level))
        scales.append(scale)
        shares.append(float(min(max(share, 0.0), 0.99)))
    return tuple(out_levels), tuple(scales), tuple(shares)


def tail_knots(
    levels: np.ndarray, quantiles: np.ndarray, shape: str, size: float
) -> tuple[np.ndarray, np.ndarray]:
    """The tail of ``shape`` ("model", "linear", "exponential") and ``size`` (spreads) below the
    lowest quantile as extra knots in front of ``levels`` / ``quantiles`` (module docstring)."""
    levels = np.asarray(levels, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    median = _median_index(levels)
    if shape == "model" or median is None or size <= 0:
        return levels, q
    p1, q1 = float(levels[0]), q[:, :1]
    unit = np.maximum(q[:, median : median + 1] - q1, 1.0)
    if shape == "linear":
        steps, tail_levels = np.array([size]), np.array([0.0])
    elif shape == "exponential":
        steps = np.append(_EXP_STEPS, _EXP_STEPS[-1] + 1.0) * size
        tail_levels = np.append(p1 * np.exp(-_EXP_STEPS), 0.0)
    else:
        raise ValueError(f"unknown tail shape {shape!r}")
    order = np.argsort(tail_levels)
    knots = q1 - steps[order][None, :] * unit
    return np.concatenate([tail_levels[order], levels]), np.concatenate([knots, q], axis=1)


def tail_brier(levels: np.ndarray, values: np.ndarray, truth: np.ndarray, shape: str, size: float) -> float:
    """Mean Brier score of P(T <= h) over the cuts and :data:`TAIL_HORIZONS` with that tail."""
    from turbofan_desktop.services.fleet import failure_probability

    ext_levels, ext = tail_knots(levels, values, shape, size)
    grid = np.broadcast_to(TAIL_HORIZONS, (len(truth), len(TAIL_HORIZONS)))
    p = failure_probability(ext_levels, ext, grid)
    return float(np.mean((p - (truth[:, None] <= grid)) ** 2))


def fit_tail_shape(
    levels: np.ndarray, values: np.ndarray, truth: np.ndarray
) -> tuple[str, float, float, float]:
    """The tail below the lowest quantile with the lowest held-out Brier score (ties keep the model's,
    then the smaller tail): (shape, size, Brier with the model's tail, Brier with the chosen one)."""
    own = tail_brier(levels, values, truth, "model", 0.0)
    best = ("model", 0.0, own)
    for shape, sizes in (("linear", LINEAR_DEPTHS), ("exponential", EXPONENTIAL_SCALES)):
        for size in sizes:
            score = tail_brier(levels, values, truth, shape, size)
            if score < best[2] - 1e-12:
                best = (shape, float(size), score)
    return best[0], best[1], own, best[2]


def calibration_from_cuts(
    version_id: int,
    levels: np.ndarray,
    values: np.ndarray,
    truth: np.ndarray,
    *,
    units: int = 0,
    engines: str = "",
) -> TailCalibration:
    """The calibration the module docstring describes, from a version's quantiles ``values`` (N, K) at
    ``levels`` for N held-out cuts and their true remaining lives ``truth`` (N,; NaN: not scored).
    Uncalibrated, with a note, when the levels have no median or fewer than 20 cuts are scored."""
    levels = np.asarray(levels, dtype=np.float64)
    values, truth = np.asarray(values, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    scored = np.isfinite(truth)
    if _median_index(levels) is None or scored.sum() < _MIN_CUTS:
        return TailCalibration(
            int(version_id), units=units, engines=engines, note=f"too few scored cuts ({int(scored.sum())})"
        )
    values, truth = values[scored], truth[scored]
    fitted_levels, scales, shares = fit_tail(levels, values, truth)
    calibration = TailCalibration(
        version_id=int(version_id),
        levels=fitted_levels,
        scales=scales,
        shares=shares,
        units=units,
        engines=engines,
        cuts=int(scored.sum()),
    )
    after = calibration.apply(levels, values)
    shape, size, brier_before, brier_after = fit_tail_shape(levels, after, truth)
    return replace(
        calibration,
        below_before=float((truth < values[:, 0]).mean()),
        below_after=float((truth < after[:, 0]).mean()),
        tail_shape=shape,
        tail_size=size,
        brier_before=brier_before,
        brier_after=brier_after,
    )


def tail_calibration(
    ws: Workspace,
    version_id: int,
    *,
    cuts_per_unit: int = DEFAULT_CUTS_PER_UNIT,
    min_history: int = DEFAULT_MIN_HISTORY,
    seed: int = 0,
) -> TailCalibration:
    """The lower-tail calibration of ``version_id`` on its held-out training engines (cached per
    version). Never raises for data it cannot get: the calibration then says why it is missing."""
    from turbofan_desktop.services.fleet import _levels_and_values
    from turbofan_desktop.services.inference import predict_rul
    from turbofan_desktop.services.validation import held_out_data

    record = ws.registry.get(int(version_id))
    key = (
        str(ws.registry.path),
        int(record.id),
        record.created,
        record.artifact_sha256,
        cuts_per_unit,
        min_history,
        seed,
    )
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    try:
        held = held_out_data(ws, record)
        split = record.provenance.split
        engines = "test" if split is not None and split.test else "val"
        cuts = cut_snapshots(held, cuts_per_unit=cuts_per_unit, min_history=min_history, seed=seed)
        if not len(cuts.units):
            return TailCalibration(int(version_id), note="no held-out training engine to cut")
        result = predict_rul(ws, int(version_id), cuts)
    except TurbofanError as exc:
        return TailCalibration(int(version_id), note=f"no held-out training engines: {exc}")
    levels, values = _levels_and_values(result)
    truth = np.array([np.nan if u.true_rul is None else float(u.true_rul) for u in result.units])
    calibration = calibration_from_cuts(
        int(version_id), levels, values, truth, units=len(held.units), engines=engines
    )
    if not calibration.calibrated:
        return calibration
    with _CACHE_LOCK:
        _CACHE[key] = calibration
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return calibration


__all__ = [
    "TailCalibration",
    "calibration_from_cuts",
    "conformal_quantile",
    "cut_snapshots",
    "fit_tail",
    "fit_tail_shape",
    "tail_brier",
    "tail_calibration",
    "tail_knots",
]
