"""Cleaning and normalisation: constant sensors, operating regimes, z-scores, missing values.

Everything here is deterministic and numerically safe: a constant column scales by 1 (never divides
by zero), and every transform records itself in ``Dataset.preprocessing`` so lineage shows it.
Normalisers serialise to plain JSON (``to_dict`` / ``from_dict``) so models can store them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.data.validation import dataset_label
from turbofan_desktop.errors import ConfigError, IncompatibleDataError, ModelNotTrainedError

#: A column whose spread is below this fraction of its magnitude is constant (float noise only).
_RELATIVE_TINY = 1e-9
_FEW_DISTINCT = 10
_ROWS_PER_LEVEL = 50


# -- operating regimes ----------------------------------------------------------------------------
def _levels_1d(values: np.ndarray, gap_fraction: float, gap_factor: float, min_share: float) -> list[float]:
    """Centres of the separated value groups of one setting.

    A gap splits two groups when it is wider than ``gap_fraction`` of the range *and* than
    ``gap_factor`` times the median spacing of distinct values, so quantised noise (C-MAPSS FD001:
    steps of 0.0001) stays one group while real flight conditions (0, 10, 20, 25, 35, 42 kft) split.
    At most ten distinct values, each on 50+ rows on average, are judged by the range rule alone.
    Groups holding less than ``min_share`` of the rows join their nearest neighbour.
    """
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        return [0.0]
    spread = finite[-1] - finite[0]
    if spread <= _RELATIVE_TINY * max(1.0, abs(finite[0])):
        return [float(finite.mean())]
    distinct = np.unique(finite)
    # A few distinct values, each repeated on many rows, may all be exact levels ([0, 10]): judge
    # them by the range rule alone. Otherwise (many distinct values, or a handful of rows of
    # noise) the spacing of distinct values is the noise scale that a real gap must dwarf.
    exact_levels = distinct.size <= _FEW_DISTINCT and finite.size >= _ROWS_PER_LEVEL * distinct.size
    spacing = 0.0 if exact_levels else float(np.median(np.diff(distinct)))
    threshold = max(gap_fraction * spread, gap_factor * spacing)
    cuts = np.flatnonzero(np.diff(finite) > threshold) + 1
    groups = [g for g in np.split(finite, cuts)]
    while len(groups) > 1:
        sizes = np.array([g.size for g in groups])
        smallest = int(np.argmin(sizes))
        if sizes[smallest] >= min_share * finite.size:
            break
        centres = [float(g.mean()) for g in groups]
        neighbours = [i for i in (smallest - 1, smallest + 1) if 0 <= i < len(groups)]
        target = min(neighbours, key=lambda i: abs(centres[i] - centres[smallest]))
        low, high = sorted((smallest, target))
        groups[low : high + 1] = [np.concatenate([groups[low], groups[high]])]
    return [float(g.mean()) for g in groups]


@dataclass(frozen=True)
class RegimeModel:
    """Operating regimes as combinations of per-setting levels; assigns any frame's rows to them."""

    settings: tuple[str, ...]
    levels: tuple[tuple[float, ...], ...]
    regimes: tuple[tuple[int, ...], ...]

    @property
    def n_regimes(self) -> int:
        return len(self.regimes)

    def _level_index(self, frame: pd.DataFrame) -> np.ndarray:
        codes = np.zeros((len(frame), len(self.settings)), dtype=np.int64)
        for j, (name, centres) in enumerate(zip(self.settings, self.levels, strict=True)):
            if name not in frame.columns:
                raise IncompatibleDataError(f"The data has no setting column '{name}' to find its regime.")
            values = np.nan_to_num(frame[name].to_numpy(dtype=np.float64), nan=centres[0])
            codes[:, j] = np.argmin(np.abs(values[:, None] - np.asarray(centres)[None, :]), axis=1)
        return codes

    def _combo_keys(self, codes: np.ndarray) -> np.ndarray:
        """One int64 per level combination (mixed radix): 1-D uniques are far cheaper than rows."""
        radix = np.cumprod([1, *[len(levels) for levels in self.levels[:-1]]]).astype(np.int64)
        return codes @ radix

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """Regime id (0..n-1) of every row; an unseen combination goes to the nearest known regime."""
        if not self.settings or self.n_regimes == 1:
            return np.zeros(len(frame), dtype=np.int64)
        codes = self._level_index(frame)
        known = np.asarray(self.regimes, dtype=np.int64)
        _, first_row, inverse = np.unique(self._combo_keys(codes), return_index=True, return_inverse=True)
        combos = codes[first_row]
        scale = np.array([max(len(levels) - 1, 1) for levels in self.levels], dtype=np.float64)
        distance = np.abs(combos[:, None, :] - known[None, :, :]) / scale
        return np.argmin(distance.sum(axis=2), axis=1)[np.ravel(inverse)].astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": list(self.settings),
            "levels": [list(levels) for levels in self.levels],
            "regimes": [list(combo) for combo in self.regimes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeModel:
        return cls(
            settings=tuple(data["settings"]),
            levels=tuple(tuple(float(v) for v in levels) for levels in data["levels"]),
            regimes=tuple(tuple(int(i) for i in combo) for combo in data["regimes"]),
        )


def _regime_settings(ds: Dataset) -> list[str]:
    """Settings that define operating conditions (a reader may exclude some, e.g. telemetry commands)."""
    chosen = ds.metadata.get("regime_settings")
    return list(ds.settings if chosen is None else chosen)


def detect_regimes(
    ds: Dataset, *, gap_fraction: float = 0.05, gap_factor: float = 10.0, min_share: float = 0.01
) -> RegimeModel:
    """Operating regimes from the settings columns: FD001/FD003 -> 1, FD002 -> 6. Deterministic."""
    settings = _regime_settings(ds)
    if not settings or ds.frame.empty:
        return RegimeModel(settings=(), levels=(), regimes=((),))
    levels = tuple(
        tuple(_levels_1d(ds.frame[s].to_numpy(dtype=np.float64), gap_fraction, gap_factor, min_share))
        for s in settings
    )
    draft = RegimeModel(tuple(settings), levels, ((0,) * len(settings),))
    codes = draft._level_index(ds.frame)
    keys, first_row, counts = np.unique(draft._combo_keys(codes), return_index=True, return_counts=True)
    keep = counts >= min_share * len(codes)
    if not keep.any():
        keep = counts == counts.max()
    regimes = tuple(tuple(int(i) for i in codes[row]) for row in first_row[keep])
    return RegimeModel(tuple(settings), levels, regimes)


# -- constant sensors -------------------------------------------------------------------------------
def _is_near_constant(values: np.ndarray, share: float) -> bool:
    """Flat to float precision, or two values one of which fills ``share`` of the rows (no sorting)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return True
    low, high = values.min(), values.max()
    if high - low <= _RELATIVE_TINY * max(1.0, abs(low)):
        return True
    at_low = int(np.count_nonzero(values == low))
    at_high = int(np.count_nonzero(values == high))
    if at_low + at_high != values.size:
        return False  # a third value exists
    return max(at_low, at_high) >= share * values.size


def detect_constant_sensors(
    ds: Dataset, *, share: float | None = None, regimes: RegimeModel | None = None
) -> list[str]:
    """Sensors that carry no information within any operating regime.

    A sensor is near-constant when, in every regime, it is flat to float precision, or it takes at
    most two values and one of them covers ``share`` of the rows (FD001's s_6 flickers between
    21.60 and 21.61). Counting distinct values, not relative spread, keeps slow-moving but real
    sensors such as FD001's s_8 (2388 +- 0.07) informative. Judging per regime makes FD002's
    s_1, which only follows the flight condition, constant too. ``share`` defaults to 0.95, or to
    the reader's ``metadata["constant_share"]`` (1.0 for telemetry channels).
    """
    if ds.frame.empty:
        return []
    if share is None:
        share = float(ds.metadata.get("constant_share", 0.95))
    model = regimes if regimes is not None else detect_regimes(ds)
    labels = model.assign(ds.frame)
    groups = [np.flatnonzero(labels == r) for r in np.unique(labels)]
    constant = []
    for sensor in ds.sensors:
        values = ds.frame[sensor].to_numpy(dtype=np.float64)
        if all(_is_near_constant(values[rows], share) for rows in groups):
            constant.append(sensor)
    return constant


# -- normalisation ----------------------------------------------------------------------------------
def _safe_scale(std: np.ndarray, mean: np.ndarray, eps: float) -> np.ndarray:
    """Standard deviations to divide by: 1 where a column is flat or undefined (no division by ~0)."""
    flat = ~np.isfinite(std) | (std <= eps * np.maximum(1.0, np.abs(np.nan_to_num(mean))))
    return np.where(flat, 1.0, std)


def _require_sensors(ds: Dataset, sensors: Sequence[str], what: str) -> None:
    missing = [s for s in sensors if s not in ds.frame.columns]
    if missing:
        raise IncompatibleDataError(
            f"{dataset_label(ds)} lacks the sensor(s) {', '.join(missing)} that the {what} was fitted on."
        )


class SensorScaler:
    """Global z-score per sensor, fitted on training units only."""

    kind = "sensor_scaler"

    def __init__(self, sensors: Sequence[str] | None = None, *, eps: float = 1e-8):
        self.sensors = list(sensors) if sensors is not None else None
        self.eps = eps
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, train: Dataset) -> SensorScaler:
        sensors = self.sensors if self.sensors is not None else list(train.sensors)
        _require_sensors(train, sensors, "scaler")
        values = train.frame[sensors].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(sensors))
            std = np.nanstd(values, axis=0) if len(values) else np.ones(len(sensors))
        self.sensors = sensors
        self.mean = np.nan_to_num(mean, nan=0.0)
        self.scale = _safe_scale(std, self.mean, self.eps)
        return self

    def _check_fitted(self) -> None:
        if self.mean is None or self.scale is None or self.sensors is None:
            raise ModelNotTrainedError("The sensor scaler must be fitted on training data before use.")

    def transform(self, ds: Dataset) -> Dataset:
        self._check_fitted()
        _require_sensors(ds, self.sensors, "scaler")
        frame = ds.frame.copy()
        values = frame[self.sensors].to_numpy(dtype=np.float64)
        frame[self.sensors] = (values - self.mean) / self.scale
        return ds.with_frame(frame, {"step": "zscore", "sensors": list(self.sensors)})

    def fit_transform(self, ds: Dataset) -> Dataset:
        return self.fit(ds).transform(ds)

    def inverse(self, values: np.ndarray, sensor: str) -> np.ndarray:
        """Back to engineering units for one sensor (forecasts are made in z-space)."""
        self._check_fitted()
        j = self.sensors.index(sensor)
        return np.asarray(values, dtype=np.float64) * self.scale[j] + self.mean[j]

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "sensors": list(self.sensors),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "eps": self.eps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensorScaler:
        scaler = cls(data["sensors"], eps=float(data.get("eps", 1e-8)))
        scaler.mean = np.asarray(data["mean"], dtype=np.float64)
        scaler.scale = np.asarray(data["scale"], dtype=np.float64)
        return scaler


class RegimeNormalizer:
    """Z-score per operating regime per sensor: removes the flight condition from every sensor.

    Fit on training units only, then transform validation/test units with the same statistics.
    A regime/sensor that is flat scales by 1; a regime missing a sensor's values uses the global one.
    """

    kind = "regime_normalizer"

    def __init__(
        self,
        sensors: Sequence[str] | None = None,
        *,
        regimes: RegimeModel | None = None,
        eps: float = 1e-8,
    ):
        self.sensors = list(sensors) if sensors is not None else None
        self.regimes = regimes
        self.eps = eps
        self.mean: np.ndarray | None = None  # (n_regimes, n_sensors)
        self.scale: np.ndarray | None = None

    def fit(self, train: Dataset) -> RegimeNormalizer:
        sensors = self.sensors if self.sensors is not None else list(train.sensors)
        _require_sensors(train, sensors, "regime normaliser")
        regimes = self.regimes if self.regimes is not None else detect_regimes(train)
        labels = regimes.assign(train.frame)
        values = train.frame[sensors].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"):
            global_mean = np.nan_to_num(np.nanmean(values, axis=0), nan=0.0) if len(values) else None
        if global_mean is None:
            global_mean = np.zeros(len(sensors))
        mean = np.tile(global_mean, (regimes.n_regimes, 1))
        scale = np.ones((regimes.n_regimes, len(sensors)))
        for r in range(regimes.n_regimes):
            rows = values[labels == r]
            if not len(rows):
                continue
            with np.errstate(all="ignore"):
                m = np.nanmean(rows, axis=0)
                s = np.nanstd(rows, axis=0)
            mean[r] = np.where(np.isfinite(m), m, global_mean)
            scale[r] = _safe_scale(s, mean[r], self.eps)
        self.sensors, self.regimes, self.mean, self.scale = sensors, regimes, mean, scale
        return self

    def _check_fitted(self) -> None:
        if self.mean is None or self.scale is None or self.regimes is None or self.sensors is None:
            raise ModelNotTrainedError("The regime normaliser must be fitted on training data before use.")

    def transform(self, ds: Dataset) -> Dataset:
        self._check_fitted()
        _require_sensors(ds, self.sensors, "regime normaliser")
        labels = self.regimes.assign(ds.frame)
        frame = ds.frame.copy()
        values = frame[self.sensors].to_numpy(dtype=np.float64)
        frame[self.sensors] = (values - self.mean[labels]) / self.scale[labels]
        step = {
            "step": "regime_normalize",
            "regimes": self.regimes.n_regimes,
            "sensors": list(self.sensors),
        }
        return ds.with_frame(frame, step)

    def fit_transform(self, ds: Dataset) -> Dataset:
        return self.fit(ds).transform(ds)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": self.kind,
            "sensors": list(self.sensors),
            "regimes": self.regimes.to_dict(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "eps": self.eps,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegimeNormalizer:
        normalizer = cls(
            data["sensors"],
            regimes=RegimeModel.from_dict(data["regimes"]),
            eps=float(data.get("eps", 1e-8)),
        )
        normalizer.mean = np.asarray(data["mean"], dtype=np.float64).reshape(
            normalizer.regimes.n_regimes, len(normalizer.sensors)
        )
        normalizer.scale = np.asarray(data["scale"], dtype=np.float64).reshape(normalizer.mean.shape)
        return normalizer


# -- missing values ---------------------------------------------------------------------------------
def _value_columns(ds: Dataset) -> list[str]:
    return [c for c in (*ds.settings, *ds.sensors) if c in ds.frame.columns]


def missing_report(ds: Dataset) -> dict[str, Any]:
    """How many values are missing: ``{"total", "rows", "by_column": {name: count}}`` (non-zero only)."""
    columns = _value_columns(ds)
    if not columns:
        return {"total": 0, "rows": 0, "by_column": {}}
    mask = ds.frame[columns].isna()
    per_column = mask.sum()
    return {
        "total": int(per_column.sum()),
        "rows": int(mask.any(axis=1).sum()),
        "by_column": {str(k): int(v) for k, v in per_column.items() if v},
    }


FILL_METHODS = ("interpolate", "ffill", "median")


def fill_missing(ds: Dataset, method: str = "interpolate") -> Dataset:
    """Fill missing values within each unit (never across units) and record what was filled.

    ``interpolate``: linear in row order, edges take the nearest value; ``ffill``: last value carried
    forward, a unit's leading gap takes its first value; ``median``: the unit's median of the column.
    Whatever is still empty (a column with no value in a unit) takes the column median, then 0.
    """
    if method not in FILL_METHODS:
        raise ConfigError(f"Unknown fill method '{method}' (choose one of {', '.join(FILL_METHODS)}).")
    report = missing_report(ds)
    columns = _value_columns(ds)
    frame = ds.frame.copy()
    if report["total"] and columns:
        values = frame[columns]
        if method == "median":
            filled = values.groupby(frame[UNIT], sort=False).transform(lambda g: g.fillna(g.median()))
        else:
            grouped = values.groupby(frame[UNIT], sort=False)
            if method == "interpolate":
                filled = grouped.transform(lambda g: g.interpolate(limit_direction="both"))
            else:
                filled = grouped.transform(lambda g: g.ffill().bfill())
        medians = values.median().fillna(0.0)
        frame[columns] = filled.fillna(medians).fillna(0.0)
    step = {
        "step": "fill_missing",
        "method": method,
        "filled": report["total"],
        "by_column": report["by_column"],
    }
    return ds.with_frame(frame, step)
