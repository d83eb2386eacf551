"""Peaks-over-threshold (POT / SPOT) thresholds for prediction errors (Siffer et al., KDD 2017).

Extreme value theory says the excesses of a variable over a high enough threshold ``t`` follow a
generalized Pareto distribution (GPD) whatever the variable's own distribution. Fitting that GPD to
the excesses of the smoothed errors over their ``level`` quantile (0.98) gives the threshold
``z_q`` that an error exceeds with probability ``q`` (the *risk*, 1e-3):

    z_q = t + sigma / gamma * ((q n / N_t) ** -gamma - 1)      (gamma != 0)
    z_q = t - sigma * ln(q n / N_t)                              (gamma == 0)

with ``n`` observations of which ``N_t`` exceed ``t``. Any error then has a tail probability
``P(X > x)``, which makes a score a probability: ``1 - P(X > x)``.

SPOT streams: after calibration on an initial batch, each new value above ``z_q`` is an alarm (and
is *not* learnt from), a value between ``t`` and ``z_q`` is a new peak that refits the GPD and moves
``z_q``, anything else only increases ``n``.

The GPD is fitted by maximum likelihood through Grimshaw's reduction to one parameter: with
``theta = gamma / sigma`` the profile log-likelihood is ``n (ln(theta / v) - v - 1)`` where
``v(theta) = mean(ln(1 + theta y))`` and ``gamma = v``; it is maximised on a grid over the admissible
``theta`` (``1 + theta y_max > 0``), refined by a golden-section search between the best grid
point's neighbours, and compared with the exponential limit ``gamma = 0``. Shapes below -1 (where the likelihood is unbounded) are not
considered.

Pure numpy (the app does not ship scipy), no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from turbofan_telemanom.threshold import (
    MIN_SMOOTHED_ERROR,
    Sequence,
    ThresholdParams,
    ThresholdResult,
    _dilate,
    _sequences,
    smooth_errors,
)

DEFAULT_RISK = 1e-3
DEFAULT_LEVEL = 0.98
MIN_PEAKS = 5  # fewer excesses than this cannot define a tail: the threshold is the largest value
MIN_TAIL = 10  # on short calibration data the level drops (not below 0.5) so ~10 values exceed t
MIN_CALIBRATION = 100  # a series shorter than this after its ignored prefix is calibrated as a whole
_TINY = 1e-300


# -- the GPD fit ----------------------------------------------------------------------------------
def _profile(theta: float, peaks: np.ndarray) -> tuple[float, float]:
    """(log-likelihood, gamma) of the GPD at ``theta`` (profiled over sigma); -inf when inadmissible."""
    if theta == 0.0:
        mean = float(peaks.mean())
        return (-peaks.size * (math.log(mean) + 1.0), 0.0) if mean > 0 else (-math.inf, 0.0)
    scaled = theta * peaks
    if np.any(scaled <= -1.0):
        return -math.inf, 0.0
    v = float(np.mean(np.log1p(scaled)))  # log1p: exact for the small theta next to the exponential
    if v == 0.0 or v < -1.0 or (v / theta) <= 0:
        return -math.inf, v
    return peaks.size * (math.log(theta / v) - v - 1.0), v


def _golden_section_max(
    func, lo: float, hi: float, *, rel_tol: float = 1e-7, max_steps: int = 200
) -> tuple[float, float]:
    """``(x, func(x))`` at the maximum of a unimodal ``func`` on ``[lo, hi]`` by golden-section search.

    Each step keeps the part of the bracket holding the better of two interior points and shrinks it
    by 0.618, reusing one evaluation; it stops when the bracket is narrower than ``rel_tol`` of its
    magnitude (about 35 steps from a grid cell). The grid in :func:`fit_gpd` has already bracketed
    the maximum, so this only polishes it.
    """
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f_left, f_right = func(left), func(right)
    for _ in range(max_steps):
        if hi - lo <= rel_tol * max(abs(lo), abs(hi)):
            break
        if f_left >= f_right:  # the maximum lies in [lo, right]
            hi, right, f_right = right, left, f_left
            left = hi - ratio * (hi - lo)
            f_left = func(left)
        else:  # in [left, hi]
            lo, left, f_left = left, right, f_right
            right = lo + ratio * (hi - lo)
            f_right = func(right)
    return (left, f_left) if f_left >= f_right else (right, f_right)


def fit_gpd(peaks: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``(gamma, sigma)`` of a GPD for positive excesses ``peaks``."""
    peaks = np.asarray(peaks, dtype=np.float64)
    peaks = peaks[np.isfinite(peaks) & (peaks > 0)]
    if peaks.size == 0:
        return 0.0, _TINY
    mean, top = float(peaks.mean()), float(peaks.max())
    if peaks.size < 2 or top <= 0:
        return 0.0, max(mean, _TINY)
    lowest = -1.0 / top
    grid = np.concatenate(
        [
            lowest * (1.0 - np.logspace(-6, 0, 30, endpoint=False)),  # gamma < 0: bounded tails
            np.logspace(-4, 3, 40) / mean,  # gamma > 0: heavy tails
        ]
    )
    thetas = np.sort(np.append(grid, 0.0))  # 0 is the exponential limit, a cell boundary
    profile = [_profile(float(theta), peaks)[0] for theta in thetas]
    best = int(np.argmax(profile))
    best_ll, best_theta = profile[best], float(thetas[best])
    # polish in the grid cell on either side of the best point (both: the maximum may lie in either)
    for lo, hi in (
        (thetas[max(best - 1, 0)], best_theta),
        (best_theta, thetas[min(best + 1, len(thetas) - 1)]),
    ):
        if hi > lo:
            theta, ll = _golden_section_max(lambda t: _profile(t, peaks)[0], float(lo), float(hi))
            if ll > best_ll:
                best_ll, best_theta = ll, theta
    if best_theta == 0.0:
        return 0.0, max(mean, _TINY)
    _, gamma = _profile(best_theta, peaks)
    return float(gamma), float(gamma / best_theta)


# -- the threshold ----------------------------------------------------------------------------------
@dataclass
class PeaksOverThreshold:
    """A GPD tail above the initial threshold ``t``: the ``z_q`` threshold and tail probabilities.

    ``calibration`` keeps 101 quantiles of the calibration values so values below ``t`` still get
    an (empirical) tail probability.
    """

    risk: float = DEFAULT_RISK
    level: float = DEFAULT_LEVEL
    t: float = 0.0
    gamma: float = 0.0
    sigma: float = 1.0
    n: int = 0
    peaks: list[float] = field(default_factory=list)
    calibration: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def calibrate(
        cls, values: np.ndarray, *, risk: float = DEFAULT_RISK, level: float = DEFAULT_LEVEL
    ) -> PeaksOverThreshold:
        """Initial batch: ``t`` = the ``level`` quantile, GPD fitted to the excesses over it.

        With fewer than ``MIN_TAIL / (1 - level)`` values the level is lowered (to at least 0.5)
        so about :data:`MIN_TAIL` values exceed ``t``; ``level`` records what was used.
        """
        if not 0 < risk < 1 or not 0 < level < 1:
            raise ValueError(f"POT needs 0 < risk < 1 and 0 < level < 1, got {risk} and {level}.")
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError("POT needs at least one finite value to calibrate on.")
        # 2 % of 100 values is 2 excesses, too few for a GPD: lower the level to keep ~MIN_TAIL
        level = min(level, max(0.5, 1.0 - MIN_TAIL / values.size))
        t = float(np.quantile(values, level))
        pot = cls(
            risk=risk,
            level=level,
            t=t,
            n=int(values.size),
            peaks=[float(v - t) for v in values[values > t]],
            calibration=np.quantile(values, np.linspace(0, 1, 101)),
        )
        pot.refit()
        return pot

    def refit(self) -> None:
        if len(self.peaks) >= MIN_PEAKS:
            self.gamma, self.sigma = fit_gpd(np.asarray(self.peaks))
        else:
            self.gamma, self.sigma = 0.0, max(float(np.mean(self.peaks)) if self.peaks else 0.0, _TINY)

    @property
    def threshold(self) -> float:
        """``z_q``: exceeded with probability ``risk`` under the fit (never below ``t``)."""
        n_t = len(self.peaks)
        if n_t < MIN_PEAKS:
            top = self.t + (max(self.peaks) if self.peaks else 0.0)
            return float(top)
        ratio = self.risk * self.n / n_t
        if ratio >= 1.0:
            return float(self.t)
        if abs(self.gamma) < 1e-12:
            return float(self.t - self.sigma * math.log(ratio))
        return float(self.t + self.sigma / self.gamma * (ratio ** (-self.gamma) - 1.0))

    def tail_probability(self, x: np.ndarray | float) -> np.ndarray:
        """``P(X > x)``: the GPD tail above ``t``, the calibration quantiles below it."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        share = len(self.peaks) / max(self.n, 1)
        excess = x - self.t
        out = np.empty_like(x)
        above = excess > 0
        if abs(self.gamma) < 1e-12:
            tail = np.exp(-excess[above] / self.sigma)
        else:
            base = np.maximum(1.0 + self.gamma * excess[above] / self.sigma, 0.0)
            with np.errstate(divide="ignore"):
                tail = np.where(base > 0, base ** (-1.0 / self.gamma), 0.0)
        out[above] = share * tail
        if (~above).any():
            probs = np.linspace(0, 1, len(self.calibration)) if len(self.calibration) else np.array([1.0])
            below = (
                1.0 - np.interp(x[~above], self.calibration, probs)
                if len(self.calibration)
                else np.ones(int((~above).sum()))
            )
            out[~above] = np.maximum(below, share)
        return np.clip(out, 0.0, 1.0)

    def anomaly_probability(self, x: np.ndarray | float) -> np.ndarray:
        """``1 - P(X > x)``: how surely ``x`` lies beyond what the fit expects."""
        return 1.0 - self.tail_probability(x)

    def update(self, value: float) -> bool:
        """SPOT step: True when ``value`` is an alarm (not learnt), else learn it (a peak refits)."""
        if not math.isfinite(value):
            return False
        if value > self.threshold:
            return True
        self.n += 1
        if value > self.t:
            self.peaks.append(float(value - self.t))
            self.refit()
        return False


def spot(
    values: np.ndarray,
    n_init: int,
    *,
    risk: float = DEFAULT_RISK,
    level: float = DEFAULT_LEVEL,
    stream: bool = True,
) -> tuple[np.ndarray, np.ndarray, PeaksOverThreshold]:
    """Thresholds and alarms for every value: calibrate on the first ``n_init``, then stream.

    Returns ``(threshold per value, alarm mask, the final fit)``. The calibration values are
    judged against the initial threshold; with ``stream=False`` the rest are too (batch POT).
    """
    values = np.asarray(values, dtype=np.float64)
    n_init = int(min(max(n_init, 1), len(values)))
    pot = PeaksOverThreshold.calibrate(values[:n_init], risk=risk, level=level)
    thresholds = np.empty(len(values))
    alarms = np.zeros(len(values), dtype=bool)
    initial = pot.threshold
    thresholds[:n_init] = initial
    alarms[:n_init] = values[:n_init] > initial
    for i in range(n_init, len(values)):
        thresholds[i] = pot.threshold
        alarms[i] = pot.update(float(values[i])) if stream else values[i] > initial
    return thresholds, alarms, pot


# -- Telemanom errors ---------------------------------------------------------------------------------
@dataclass
class POTSequence(Sequence):
    """An anomalous sequence with its smallest tail probability under the fit."""

    probability: float = 0.0


@dataclass
class POTResult(ThresholdResult):
    """:class:`ThresholdResult` plus the anomaly probability of every error and the final fit."""

    probability: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fit: PeaksOverThreshold | None = None


def find_anomalies_pot(
    errors: np.ndarray,
    actual: np.ndarray,
    params: ThresholdParams,
    *,
    risk: float = DEFAULT_RISK,
    level: float = DEFAULT_LEVEL,
    init_share: float = 0.3,
    calibration: np.ndarray | None = None,
) -> POTResult:
    """Smoothed errors above a SPOT threshold, as sequences like :func:`find_anomalies` returns.

    Calibration: ``calibration`` (e.g. smoothed errors on validation data) when given; otherwise the
    first ``init_share`` of the series after its ignored prefix (at least :data:`MIN_CALIBRATION`
    values; a shorter series is calibrated as a whole), then the rest streams through SPOT. Flags
    need the same absolute floor as the nonparametric threshold (``MIN_SMOOTHED_ERROR``) and the
    same error buffer; single points are not sequences. Only high errors are flagged (the errors
    are absolute values). A sequence's score is ``-log10`` of its smallest tail probability (3 at
    the threshold when risk = 1e-3); its ``probability`` is one minus that tail probability.
    """
    del actual  # the nonparametric threshold's spread test has no POT counterpart
    errors = np.asarray(errors, dtype=np.float64)
    n = len(errors)
    smoothed = smooth_errors(errors, params.smoothing_window, params.l_s)
    result = POTResult(errors, smoothed, np.full(n, np.nan), np.full(n, np.nan))
    if n == 0:
        return result
    prefix = min(params.ignored_prefix(n), n - 1)
    if calibration is not None and np.isfinite(np.asarray(calibration, dtype=np.float64)).any():
        pot = PeaksOverThreshold.calibrate(np.asarray(calibration), risk=risk, level=level)
        thresholds = np.empty(n)
        alarms = np.zeros(n, dtype=bool)
        for i in range(n):
            thresholds[i] = pot.threshold
            alarms[i] = pot.update(float(smoothed[i])) if i >= prefix else False
    else:
        scored = smoothed[prefix:]
        n_init = max(MIN_CALIBRATION, int(init_share * len(scored)))
        stream = len(scored) > n_init
        tail_thresholds, tail_alarms, pot = spot(scored, n_init, risk=risk, level=level, stream=stream)
        thresholds = np.concatenate([np.full(prefix, tail_thresholds[0]), tail_thresholds])
        alarms = np.concatenate([np.zeros(prefix, dtype=bool), tail_alarms])
    result.threshold[:] = thresholds
    result.fit = pot
    result.probability = pot.anomaly_probability(smoothed)
    above = alarms & (smoothed > MIN_SMOOTHED_ERROR)
    flagged = _dilate(above, params.error_buffer) & (np.arange(n) >= prefix)
    for start, end in _sequences(flagged):
        tail = float(pot.tail_probability(smoothed[start : end + 1]).min())
        score = -math.log10(max(tail, _TINY))
        result.sequences.append(POTSequence(start, end, score, "high", probability=1.0 - tail))
    return result
