"""Optional feature engineering: rolling statistics, lags and first differences, per unit.

Computed within each unit (a window never reaches into the previous engine) and free of NaN: a
rolling window is partial at a unit's start, a lag repeats the unit's first value, a first difference
starts at 0. The step is recorded in ``preprocessing`` and therefore in the lineage and data hash.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.errors import ConfigError


def _positive_ints(name: str, values: Sequence[int]) -> list[int]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be whole numbers of at least 1, got {value!r}.")
        out.append(value)
    return sorted(set(out))


def add_features(
    ds: Dataset,
    *,
    rolling: Sequence[int] = (),
    lags: Sequence[int] = (),
    diffs: bool = False,
    sensors: Sequence[str] | None = None,
) -> Dataset:
    """New sensor columns ``<s>_mean<w>``, ``<s>_std<w>``, ``<s>_lag<k>``, ``<s>_diff`` per unit.

    ``sensors`` defaults to the informative (non-constant) sensors.
    """
    windows = _positive_ints("rolling windows", rolling)
    shifts = _positive_ints("lags", lags)
    base = list(sensors) if sensors is not None else ds.informative_sensors
    unknown = [s for s in base if s not in ds.frame.columns]
    if unknown:
        raise ConfigError(f"Cannot add features for unknown sensor(s): {', '.join(unknown)}.")
    if not (windows or shifts or diffs) or not base:
        return ds
    frame = ds.frame
    grouped = frame[base].groupby(frame[UNIT], sort=False)
    new: dict[str, pd.Series] = {}
    for w in windows:
        roll = grouped.rolling(w, min_periods=1)
        means = roll.mean().reset_index(level=0, drop=True).sort_index()
        stds = roll.std(ddof=0).reset_index(level=0, drop=True).sort_index().fillna(0.0)
        for s in base:
            new[f"{s}_mean{w}"] = means[s]
            new[f"{s}_std{w}"] = stds[s]
    if shifts:
        first = grouped.transform("first")
        for k in shifts:
            lagged = grouped.shift(k).fillna(first)
            for s in base:
                new[f"{s}_lag{k}"] = lagged[s]
    if diffs:
        delta = grouped.diff().fillna(0.0)
        for s in base:
            new[f"{s}_diff"] = delta[s]
    clash = [name for name in new if name in frame.columns]
    if clash:
        raise ConfigError(f"Feature column(s) already exist: {', '.join(clash[:5])}.")
    added = pd.DataFrame(new, index=frame.index)
    out = pd.concat([frame, added], axis=1)
    step = {
        "step": "features",
        "rolling": windows,
        "lags": shifts,
        "diffs": bool(diffs),
        "sensors": base,
        "added": list(new),
    }
    return ds.with_frame(out, step, sensors=[*ds.sensors, *new])
