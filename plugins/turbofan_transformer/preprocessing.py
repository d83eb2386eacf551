"""Feature scaling for the Transformer, built on the data layer's regime normaliser.

Fitted on training units only and saved with the model (``to_dict`` / ``from_dict`` give plain JSON).
Multi-regime data (FD002: six flight conditions) hide degradation behind regime jumps, so every sensor
is z-scored with the mean and spread of its own operating regime
(:class:`turbofan_desktop.data.preprocess.RegimeNormalizer`; on single-regime data that is a plain
z-score), and on multi-regime data the regime also enters the network as one-hot inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.data.preprocess import RegimeNormalizer, detect_constant_sensors

REGIME = "__regime__"  # column of transform()'s frame holding each row's regime index


def informative_sensors(data: Dataset) -> list[str]:
    """Sensors that carry signal: not constant within the operating regimes, nor flagged by the reader."""
    constant = set(data.constant_sensors) | set(detect_constant_sensors(data))
    return [s for s in data.sensors if s not in constant]


class FeatureScaler:
    """Per-regime z-scores of the selected sensors + one-hot regimes (multi-regime data only)."""

    def __init__(self, normalizer: RegimeNormalizer):
        self.normalizer = normalizer

    @property
    def sensors(self) -> list[str]:
        return list(self.normalizer.sensors or [])

    @property
    def n_regimes(self) -> int:
        assert self.normalizer.regimes is not None
        return self.normalizer.regimes.n_regimes

    @property
    def feature_names(self) -> list[str]:
        extra = [f"regime_{k}" for k in range(self.n_regimes)] if self.n_regimes > 1 else []
        return [*self.sensors, *extra]

    @classmethod
    def fit(cls, train: Dataset, sensors: list[str]) -> FeatureScaler:
        return cls(RegimeNormalizer(sensors).fit(train))

    def transform(self, data: Dataset) -> pd.DataFrame:
        """A frame with ``unit``, the scaled features and each row's regime, in the data's row order."""
        assert self.normalizer.regimes is not None
        labels = self.normalizer.regimes.assign(data.frame)
        scaled = self.normalizer.transform(data).frame
        out = pd.DataFrame({UNIT: data.frame[UNIT].to_numpy()}, index=data.frame.index)
        for sensor in self.sensors:
            out[sensor] = scaled[sensor].to_numpy(np.float64)
        if self.n_regimes > 1:
            for k in range(self.n_regimes):
                out[f"regime_{k}"] = (labels == k).astype(float)
        out[REGIME] = labels
        return out

    def inverse(self, sensor: str, values: np.ndarray, regime: np.ndarray | int | None = None) -> np.ndarray:
        """Back to engineering units with the statistics of ``regime`` (per value, per row or one)."""
        assert self.normalizer.mean is not None and self.normalizer.scale is not None
        j = self.sensors.index(sensor)
        values = np.asarray(values)
        r = np.asarray(0 if regime is None else regime)
        mean, scale = self.normalizer.mean[r, j], self.normalizer.scale[r, j]
        while mean.ndim < values.ndim:
            mean, scale = mean[..., None], scale[..., None]
        return values * scale + mean

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "regime-normalised z-scores", "normalizer": self.normalizer.to_dict()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureScaler:
        return cls(RegimeNormalizer.from_dict(state["normalizer"]))
