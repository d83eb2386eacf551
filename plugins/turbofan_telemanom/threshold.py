"""Nonparametric dynamic thresholding of prediction errors (Hundman et al., KDD 2018, section 3.2).

Pure numpy/pandas, no torch: given the 1-step prediction errors of one series and the actual values
they were scored against, find anomalous sequences the way the authors ran it
(``shared/telemanom_spec.md``):

1. smooth the errors with an EWMA; the first ``l_s`` smoothed values become the mean of the first
   ``2 l_s`` (the model had no history there);
2. walk overlapping windows of ``window_size * batch`` errors advancing ``batch`` (the last window runs
   to the end); per window search the threshold ``eps = mu + z sigma`` that best separates the errors,
   once on the errors and once on their inversion ``2 mu - e_s`` (drops);
3. flag points above the threshold when the window's errors are meaningful, plus a buffer; after the
   first window only points no earlier window covered can be newly flagged;
4. prune sequences whose peak is not clearly above the next one (relative drop ``p``) and score each.

User feedback can enter as two masks over the errors (``exclude_labelled``, see :func:`find_anomalies`):
``known`` marks errors inside ranges labelled true or missed anomaly; they are left out of each
window's mean, spread and threshold search, so one known large anomaly no longer inflates sigma and
hides smaller ones (the known points are still flagged when they cross the threshold). ``dismissed``
marks errors inside ranges labelled false alarm; they stay in the statistics (they are normal
behaviour) but never start a flagged sequence.

Indices here are into the error series; the model adds ``l_s`` to map them onto the data's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MEANINGFUL_SHARE = 0.05  # errors must reach 5 % of the values' spread to be worth searching
MIN_SMOOTHED_ERROR = 0.05  # ... and exceed this absolute level
MAX_SEQUENCES = 5  # a threshold that splits a window into more sequences is implausible
MAX_ANOMALOUS_SHARE = 0.5  # ... as is one that flags half the window


@dataclass(frozen=True)
class ThresholdParams:
    """The settings the threshold needs (a subset of the Telemanom config)."""

    l_s: int = 250
    batch: int = 70
    window_size: int = 30
    smoothing_window: int = 105
    error_buffer: int = 100
    p: float = 0.13
    z_candidates: tuple[float, ...] = tuple(np.arange(2.5, 12.01, 0.5).round(10))
    z_fallback: float = 12.0
    ignore_first: int = -1  # -1: the authors' rule (see ignored_prefix)

    @classmethod
    def from_config(cls, config: Any) -> ThresholdParams:
        return cls(
            l_s=config.l_s,
            batch=config.predict_batch_size,
            window_size=config.window_size,
            smoothing_window=config.smoothing_window,
            error_buffer=config.error_buffer,
            p=config.p,
            z_candidates=tuple(config.z_candidates()),
            z_fallback=config.z_max,
            ignore_first=config.ignore_first,
        )

    def ignored_prefix(self, n_errors: int) -> int:
        """Errors at the start never flagged: the authors skip 2 l_s on long series, l_s on medium."""
        if self.ignore_first >= 0:
            return self.ignore_first
        if n_errors >= 2500:
            return 2 * self.l_s
        if n_errors >= 1800:
            return self.l_s
        return 0


@dataclass
class WindowThreshold:
    """What one threshold window decided."""

    start: int
    end: int  # exclusive
    mu: float
    sigma: float
    z: float
    epsilon: float
    z_inverse: float
    epsilon_inverse: float
    searched: bool  # False when the errors were too small to be meaningful


@dataclass
class Sequence:
    """An anomalous sequence in error indices (inclusive)."""

    start: int
    end: int
    score: float
    direction: str  # "high" or "low" (found by the inverted pass only)


@dataclass
class ThresholdResult:
    errors: np.ndarray
    smoothed: np.ndarray
    threshold: np.ndarray  # upper threshold in force for each error (from the window that judged it)
    lower_threshold: np.ndarray  # the inverted pass's threshold expressed on the smoothed errors
    sequences: list[Sequence] = field(default_factory=list)
    windows: list[WindowThreshold] = field(default_factory=list)

    @property
    def anomalous(self) -> np.ndarray:
        mask = np.zeros(len(self.errors), dtype=bool)
        for seq in self.sequences:
            mask[seq.start : seq.end + 1] = True
        return mask


# -- smoothing -------------------------------------------------------------------------------------
def smooth_errors(errors: np.ndarray, span: int, l_s: int) -> np.ndarray:
    """pandas-style EWMA (adjust=True); the first ``l_s`` values replaced by the mean of the first 2 l_s."""
    errors = np.asarray(errors, dtype=float)
    if len(errors) == 0:
        return errors.copy()
    smoothed = pd.Series(errors).ewm(span=max(1, span)).mean().to_numpy(copy=True)
    head = min(l_s, len(smoothed))
    if head > 0:
        smoothed[:head] = smoothed[: 2 * l_s].mean()
    return smoothed


# -- helpers -----------------------------------------------------------------------------------------
def _dilate(mask: np.ndarray, buffer: int) -> np.ndarray:
    """Every point within ``buffer`` steps of a True point becomes True."""
    if buffer <= 0 or not mask.any():
        return mask.copy()
    counts = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    n = len(mask)
    idx = np.arange(n)
    lo = np.clip(idx - buffer, 0, n)
    hi = np.clip(idx + buffer + 1, 0, n)
    return (counts[hi] - counts[lo]) > 0


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of each run of True values, single points included."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(s), int(e) - 1) for s, e in zip(changes[::2], changes[1::2], strict=True)]


def _sequences(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of two or more points: single flagged points do not form a sequence."""
    return [(s, e) for s, e in _runs(mask) if e > s]


# -- the threshold search ----------------------------------------------------------------------------
class ThresholdSearch:
    """Chooses ``z`` for one window: the candidate whose removal shrinks mean and spread the most,
    per sequence squared and per flagged point, within the plausibility limits."""

    def __init__(self, params: ThresholdParams):
        self.params = params

    def find(self, values: np.ndarray, mu: float, sigma: float) -> tuple[float, float]:
        """(z, epsilon) for ``values`` (errors or inverted errors) whose window has mean mu, std sigma."""
        params = self.params
        best_score, best_z = -np.inf, params.z_fallback
        if sigma <= 0 or mu == 0:
            return best_z, mu + best_z * sigma
        for z in params.z_candidates:
            epsilon = mu + z * sigma
            above = values >= epsilon
            if not above.any():
                continue
            flagged = _dilate(above, params.error_buffer)
            below = values[~above]
            n_sequences = len(_sequences(flagged))
            n_flagged = int(flagged.sum())
            mean_drop = (mu - below.mean()) / mu if len(below) else 0.0
            std_drop = (sigma - below.std()) / sigma if len(below) else 0.0
            score = (mean_drop + std_drop) / (n_sequences**2 + n_flagged)
            if (
                score >= best_score
                and n_sequences <= MAX_SEQUENCES
                and n_flagged < len(values) * MAX_ANOMALOUS_SHARE
            ):
                best_score, best_z = score, z  # >=: ties go to the larger z
        return best_z, mu + best_z * sigma


def _prune(values: np.ndarray, flagged: np.ndarray, non_anomalous_max: float | None, p: float) -> np.ndarray:
    """Drop sequences whose peak is within ``p`` (relative) of the next lower peak, walking down the
    sorted peaks with the largest unflagged value appended; the sequences after the last big drop go."""
    sequences = _sequences(flagged)
    if not sequences:
        return flagged
    peaks = np.array([values[s : e + 1].max() for s, e in sequences])
    order = np.argsort(-peaks, kind="stable")
    ladder = list(peaks[order])
    if non_anomalous_max is not None:
        ladder.append(non_anomalous_max)
    remove: list[int] = []
    for rank in range(len(ladder) - 1):
        high, low = ladder[rank], ladder[rank + 1]
        drop = (high - low) / high if high != 0 else 0.0
        if drop < p:
            remove.append(int(order[rank]))
        else:
            remove = []
    keep = np.zeros_like(flagged)
    for k, (s, e) in enumerate(sequences):
        if k not in remove:
            keep[s : e + 1] = True
    return flagged & keep


def _mask(mask: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if mask is None:
        return np.zeros(n, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"the '{name}' mask has shape {mask.shape}, expected ({n},) like the errors")
    return mask


def find_anomalies(
    errors: np.ndarray,
    actual: np.ndarray,
    params: ThresholdParams,
    *,
    known: np.ndarray | None = None,
    dismissed: np.ndarray | None = None,
) -> ThresholdResult:
    """Smooth ``errors`` and run the windowed threshold; ``actual`` are the values they were scored on.

    ``known`` (bool per error): labelled anomalies, left out of each window's mu, sigma and z search;
    ``dismissed`` (bool per error): labelled false alarms, never flagged again (see the module text).
    """
    errors = np.asarray(errors, dtype=float)
    actual = np.asarray(actual, dtype=float)
    n = len(errors)
    known = _mask(known, n, "known")
    dismissed = _mask(dismissed, n, "dismissed")
    smoothed = smooth_errors(errors, params.smoothing_window, params.l_s)
    threshold = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    result = ThresholdResult(errors, smoothed, threshold, lower)
    if n == 0:
        return result

    batch = max(1, params.batch)
    window_len = params.window_size * batch
    n_windows = max(0, int((n - window_len) / batch))
    search = ThresholdSearch(params)
    flagged_all = np.zeros(n, dtype=bool)
    high_all = np.zeros(n, dtype=bool)
    pieces: list[tuple[int, int, float]] = []  # (start, end, score) per window, global indices
    covered_until = 0

    for i in range(n_windows + 1):
        start = i * batch
        end = n if i == n_windows else window_len + i * batch
        window = smoothed[start:end]
        clean = ~known[start:end]
        if not clean.any():  # a window wholly inside labelled anomalies: nothing normal to learn from
            clean = np.ones(end - start, dtype=bool)
        mu, sigma = float(window[clean].mean()), float(window[clean].std())
        inverted = 2 * mu - window
        z, epsilon = search.find(window[clean], mu, sigma)
        z_inv, epsilon_inv = search.find(inverted[clean], mu, sigma)
        eligible_from = params.ignored_prefix(n) if i == 0 else covered_until
        threshold[max(start, covered_until) : end] = epsilon
        lower[max(start, covered_until) : end] = 2 * mu - epsilon_inv
        covered_until = end

        y = actual[start:end]
        spread = float(np.percentile(y, 95) - np.percentile(y, 5)) if len(y) else 0.0
        meaningful = (
            sigma > 0
            and (sigma > MEANINGFUL_SHARE * float(np.std(y)) or window.max() > MEANINGFUL_SHARE * spread)
            and window.max() > MIN_SMOOTHED_ERROR
        )
        result.windows.append(
            WindowThreshold(start, end, mu, sigma, z, epsilon, z_inv, epsilon_inv, meaningful)
        )
        if not meaningful:
            continue

        offset = np.arange(start, end)
        passes = {}
        for direction, values, eps in (("high", window, epsilon), ("low", inverted, epsilon_inv)):
            above = (values >= eps) & (values > MEANINGFUL_SHARE * spread) & ~dismissed[start:end]
            flagged = (
                _dilate(above, params.error_buffer) & (offset >= eligible_from) if above.any() else above
            )
            unflagged = ~(flagged | flagged_all[start:end])
            non_max = float(values[unflagged].max()) if unflagged.any() else None
            passes[direction] = (values, flagged, non_max)
        if not any(f.any() for _, f, _ in passes.values()):
            continue
        kept = {d: _prune(v, f, m, params.p) for d, (v, f, m) in passes.items()}
        window_flags = kept["high"] | kept["low"]
        if not window_flags.any():
            continue
        for s, e in _runs(window_flags):
            score_high = np.abs(window[s : e + 1] - epsilon).max()
            score_low = np.abs(inverted[s : e + 1] - epsilon_inv).max()
            pieces.append((start + s, start + e, float(max(score_high, score_low) / (mu + sigma))))
        flagged_all[start:end] |= window_flags
        high_all[start:end] |= kept["high"]

    for s, e in _sequences(flagged_all):
        score = max((sc for ps, pe, sc in pieces if pe >= s and ps <= e), default=0.0)
        direction = "high" if high_all[s : e + 1].any() else "low"
        result.sequences.append(Sequence(s, e, score, direction))
    return result
