"""The Transformer forecast + RUL model (the only module of this plugin that imports torch).

One encoder reads a window of the selected sensors, z-scored per operating regime (plus one-hot
regime inputs on multi-regime data and, optionally, the engine's age) and feeds two heads trained
jointly with the pinball loss:

- a forecast head: lower / median / upper quantile of every selected sensor for 1..H steps ahead,
  predicted as an offset from the mean of the last observed rows (so "no change" is the easy answer
  the network must beat);
- a RUL head: lower / median / upper quantile of min(remaining rows, rul_cap), scaled by rul_cap; the
  median also gets a squared-error term (``rul_mse_weight``): where degradation has barely begun the
  targets pile up at the cap, and a pure median then leans to the cap and over-predicts mid-life units.

Early stopping restores the epoch with the best validation RUL RMSE (``stop_on``) by default.

Units shorter than the window are left-padded by repeating their first row; the padded positions are
masked out of attention (``src_key_padding_mask``) and of the pooling, so padding never looks like data.
Quantiles are ordered by construction (median +- softplus), and the intervals are conformally
calibrated on the validation units (split conformal; for RUL one offset per bound and band of the
predicted RUL; recorded in meta.json).

Weights and dropout come from generators seeded by ``seed`` alone, so models trained side by side in
threads (the members of :mod:`turbofan_transformer.ensemble`) are reproducible too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.data.validation import dataset_label
from turbofan_desktop.errors import (
    Cancelled,
    ConfigError,
    IncompatibleDataError,
    InsufficientDataError,
    ModelNotTrainedError,
)
from turbofan_desktop.plugins.contract import (
    ALL_TARGETS,
    BATCH_REPORTS_PER_EPOCH,
    FitResult,
    ForecastResult,
    ProgressCallback,
    ProgressEvent,
    RULResult,
    SensorForecast,
    ShouldStop,
    UnitForecast,
    UnitRUL,
    batch_progress,
    never_stop,
    no_progress,
)
from turbofan_transformer.config import TransformerConfig
from turbofan_transformer.preprocessing import REGIME, FeatureScaler, informative_sensors

META_VERSION = 1
AGE_SCALE = 100.0  # rows; keeps the age input in the same range as the z-scored sensors
# Windows per batch when nothing is learned (validation, calibration, prediction): attention over 2048
# windows took ~360 MB at once, and ensemble members evaluate side by side.
EVAL_BATCH = 512
# Fewest validation windows a band of predicted RUL needs for its own interval offsets.
MIN_BAND_WINDOWS = 50


# -- runtime settings -------------------------------------------------------------------------------
def usable_threads(threads: int = 0) -> int:
    """``threads`` torch threads (the services pass the ``torch_threads`` setting); 0: every core."""
    return int(threads) if int(threads) > 0 else max(1, os.cpu_count() or 1)


@contextmanager
def _torch_runtime(seed: int | None = None, threads: int = 0):
    """:func:`usable_threads` for torch and, when seeded, deterministic kernels; both restored afterwards."""
    previous_threads = torch.get_num_threads()
    previous_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(usable_threads(threads))
    if seed is not None:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_det)


# -- the network ------------------------------------------------------------------------------------
def _ordered_quantiles(raw: torch.Tensor) -> torch.Tensor:
    """Map the last axis (3 raw outputs) to lower <= median <= upper."""
    median = raw[..., 1]
    lower = median - nn.functional.softplus(raw[..., 0])
    upper = median + nn.functional.softplus(raw[..., 2])
    return torch.stack([lower, median, upper], dim=-1)


class _SeededDropout(nn.Module):
    """Dropout that draws from its network's own generator.

    ``nn.Dropout`` draws from torch's single global generator; two ensemble members training side by
    side in threads would then take each other's draws in an order set by the scheduler, and a seed
    would no longer give one result.
    """

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p = float(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class _Network(nn.Module):
    def __init__(
        self, n_inputs: int, n_forecast: int, cfg: TransformerConfig, generator: torch.Generator | None = None
    ):
        super().__init__()
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        d = cfg.d_model
        self.horizon = cfg.horizon
        self.n_forecast = n_forecast
        self.embed = nn.Linear(n_inputs, d)
        self.position = nn.Parameter(torch.zeros(1, cfg.window, d))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=cfg.heads,
            dim_feedforward=2 * d,
            dropout=cfg.dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=cfg.layers, enable_nested_tensor=False)
        for block in self.encoder.layers:
            # own-generator dropout on the residual and feed-forward paths; attention weights are not
            # dropped (that dropout runs inside torch's attention kernel, on the global generator)
            block.dropout = _SeededDropout(cfg.dropout, generator)
            block.dropout1 = _SeededDropout(cfg.dropout, generator)
            block.dropout2 = _SeededDropout(cfg.dropout, generator)
            block.self_attn.dropout = 0.0
        self.norm = nn.LayerNorm(d)
        self.trunk = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), _SeededDropout(cfg.dropout, generator))
        self.rul_head = nn.Linear(d, 3)
        self.forecast_head = nn.Linear(d, max(n_forecast, 1) * cfg.horizon * 3)

    def forward(
        self, x: torch.Tensor, pad: torch.Tensor, base: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, W, F); pad (B, W) True where padded; base (B, S) forecast anchor per sensor."""
        h = self.embed(x) + self.position[:, : x.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=pad))
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        z = self.trunk(torch.cat([h[:, -1], pooled], dim=-1))
        rul = _ordered_quantiles(self.rul_head(z))
        fc = self.forecast_head(z).view(-1, self.horizon, max(self.n_forecast, 1), 3)
        fc = _ordered_quantiles(fc)[:, :, : self.n_forecast]
        return rul, fc + base[:, None, :, None]


_BUILD_LOCK = threading.Lock()
_WINDOWS_LOCK = threading.Lock()


def _seeded_network(n_inputs: int, n_forecast: int, cfg: TransformerConfig, seed: int) -> _Network:
    """A network whose initial weights and dropout draws depend on ``seed`` alone.

    torch initialises weights from its global generator, so seeding and building happen under one lock:
    members built at the same moment in different threads still get the weights their seeds give.
    """
    with _BUILD_LOCK:
        torch.manual_seed(seed)
        return _Network(n_inputs, n_forecast, cfg, generator=torch.Generator().manual_seed(seed))


def _pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Pinball loss per element; pred (..., 3), target (...)."""
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * diff, (quantiles - 1.0) * diff).mean(-1)


# -- windows ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Windows:
    """Windows cut from every unit, as arrays ready for the network."""

    x: np.ndarray  # (N, W, F) float32
    pad: np.ndarray  # (N, W) bool, True where the row is padding
    base: np.ndarray  # (N, S) mean of the last observed rows of the forecast sensors
    unit_index: np.ndarray  # (N,) position of the unit in `units`
    end: np.ndarray  # (N,) row index (within its unit) of the window's last row
    remaining: np.ndarray  # (N,) rows after the window's last row (run-to-failure units)
    future: np.ndarray  # (N, H, S) scaled future values of the forecast sensors (0 where missing)
    future_mask: np.ndarray  # (N, H) True where the future row exists
    regime_last: np.ndarray  # (N,) operating regime of the window's last row
    regime_future: np.ndarray  # (N, H) regime of each future row (the last row's where missing)
    units: list[Any]

    def __len__(self) -> int:
        return len(self.end)


def _since_baseline(feats: np.ndarray, n_sensors: int, cycles: int) -> np.ndarray:
    """Each row's scaled sensors minus their mean over the unit's first ``cycles`` rows."""
    sensors = feats[:, :n_sensors]
    return (sensors - sensors[: max(1, min(cycles, len(sensors)))].mean(0)).astype(np.float32)


def _unit_windows(features: np.ndarray, window: int, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows ending at ``ends``; rows before the unit's start repeat its first row and are masked."""
    padded = np.concatenate([np.repeat(features[:1], window - 1, axis=0), features], axis=0)
    index = ends[:, None] + np.arange(window)[None, :]  # into `padded`
    x = padded[index]
    pad = (ends[:, None] + np.arange(window)[None, :]) < (window - 1)
    return x, pad


# -- the tasks --------------------------------------------------------------------------------------
class _Tasks:
    """The Model protocol's task methods, written once over six primitives (``_require_trained``,
    ``_check_compatible``, ``_rul_at_last_rows``, ``_rul_at_every_row``, ``_forecast_at_last_rows``,
    ``_forecast_at_origins``): a single model computes them, an ensemble averages its members'."""

    config: TransformerConfig
    forecast_sensors: list[str]

    def predict_rul(self, data: Dataset) -> RULResult:
        """RUL of each unit at its last row, with the calibrated interval (true_rul when paired)."""
        self._require_trained()
        self._check_compatible(data)
        units, rul = self._rul_at_last_rows(data)
        truth = data.rul
        # each bound is calibrated on its own, to its own quantile level
        levels = tuple(float(q) for q in self.config.quantiles)
        out = []
        for i, unit in enumerate(units):
            true_rul = float(truth[unit]) if truth is not None and unit in truth.index else None
            out.append(
                UnitRUL(
                    unit=unit,
                    rul=float(rul[i, 1]),
                    lower=float(rul[i, 0]),
                    upper=float(rul[i, 2]),
                    true_rul=true_rul,
                    quantiles={level: float(rul[i, k]) for k, level in enumerate(levels)},
                )
            )
        return RULResult(interval=self.config.interval, units=out)

    def forecast(
        self, data: Dataset, *, horizon: int | None = None, units: Sequence[Any] | None = None
    ) -> ForecastResult:
        """Quantile forecast of each sensor after each unit's last row, on the unit's own time axis."""
        self._require_trained()
        self._check_compatible(data)
        horizon = self.config.horizon if horizon is None else int(horizon)
        if not 1 <= horizon <= self.config.horizon:
            raise ConfigError(
                f"Forecast horizon {horizon} is outside 1..{self.config.horizon}, the horizon this model "
                "was trained for."
            )
        if units is not None:
            wanted = list(units)
            unknown = [u for u in wanted if u not in set(data.units)]
            if unknown:
                raise IncompatibleDataError(f"Unit(s) {unknown} are not in the data.")
            data = data.subset(wanted)
        values = self._forecast_at_last_rows(data, horizon)
        result: dict[Any, UnitForecast] = {}
        q_low, q_mid, q_high = (float(q) for q in self.config.quantiles)
        for i, (unit, rows) in enumerate(data.iter_units()):
            future_time = _continue_time(rows[data.time_col], horizon)
            sensors = {}
            for name in self.forecast_sensors:
                unit_values = values[name][i]  # (H, 3)
                sensors[name] = SensorForecast(
                    sensor=name,
                    time=future_time,
                    median=unit_values[:, 1],
                    lower=unit_values[:, 0],
                    upper=unit_values[:, 2],
                    quantiles={q_low: unit_values[:, 0], q_mid: unit_values[:, 1], q_high: unit_values[:, 2]},
                )
            result[unit] = UnitForecast(unit=unit, sensors=sensors)
        return ForecastResult(horizon=horizon, interval=self.config.interval, units=result)

    def evaluate(
        self, data: Dataset, *, progress: ProgressCallback = no_progress, should_stop: ShouldStop = never_stop
    ) -> dict[str, float]:
        """RUL and forecast metrics.

        RUL: with a paired RUL file (``data.rul``) the last window of each unit is scored against the
        true, uncapped RUL; without one the units are taken as run to failure (as training files are)
        and every window is scored against min(remaining cycles, rul_cap). ``rul_score`` is the NASA
        score sum(exp(-d/13)-1 if d<0 else exp(d/10)-1), d = predicted - true.
        Forecast: origins every ``eval_stride`` rows with a full horizon ahead; ``forecast_mase_hH`` is the
        model's mean absolute error over steps 1..H divided by that of the persistence forecast (the
        last observed value) at the same origins, per sensor and averaged.
        """
        self._require_trained()
        self._check_compatible(data)
        metrics: dict[str, float] = {}
        progress(ProgressEvent(stage="evaluate", fraction=0.0, message="scoring RUL"))
        if data.rul is not None:
            result = self.predict_rul(data)
            scored = [u for u in result.units if u.true_rul is not None]
            pred = np.array([u.rul for u in scored])
            true = np.array([u.true_rul for u in scored])
            lower = np.array([u.lower for u in scored])
            upper = np.array([u.upper for u in scored])
        else:
            rul, true = self._rul_at_every_row(data)
            pred, lower, upper = rul[:, 1], rul[:, 0], rul[:, 2]
        if should_stop():
            raise Cancelled("Evaluation was cancelled.")
        if len(true):
            metrics.update(rul_metrics(pred, true, lower, upper))
        progress(ProgressEvent(stage="evaluate", fraction=0.5, message="scoring forecasts"))
        metrics.update(self._forecast_metrics(data))
        progress(ProgressEvent(stage="evaluate", fraction=1.0, message="done"))
        return metrics

    def forecast_errors(self, data: Dataset) -> dict[str, Any]:
        """Per-sensor absolute errors of the model and of persistence at every scored origin."""
        self._require_trained()
        return {
            name: {
                "model_abs": np.abs(o["median"] - o["truth"]),
                "persistence_abs": np.abs(o["persistence"] - o["truth"]),
                "covered": (o["truth"] >= o["lower"]) & (o["truth"] <= o["upper"]),
            }
            for name, o in self._forecast_at_origins(data).items()
        }

    def _forecast_metrics(self, data: Dataset) -> dict[str, float]:
        errors = self.forecast_errors(data)
        if not errors:
            return {}
        h = self.config.horizon
        metrics: dict[str, float] = {}
        mases, covers = [], []
        for name, e in errors.items():
            denom = float(e["persistence_abs"].mean())
            mase = float(e["model_abs"].mean()) / denom if denom > 0 else float("nan")
            metrics[f"forecast_mase_h{h}_{name}"] = mase
            metrics[f"forecast_coverage80_{name}"] = float(e["covered"].mean())
            mases.append(mase)
            covers.append(float(e["covered"].mean()))
        metrics[f"forecast_mase_h{h}"] = float(np.nanmean(mases))
        metrics["forecast_coverage80"] = float(np.mean(covers))
        return metrics


# -- the model --------------------------------------------------------------------------------------
class TransformerModel(_Tasks):
    """Forecast + RUL Transformer fulfilling :class:`turbofan_desktop.plugins.contract.Model`."""

    def __init__(self, config: TransformerConfig | None = None, target: str = ALL_TARGETS, threads: int = 0):
        self.config = config if config is not None else TransformerConfig()
        self.config.validate()
        self.target = target
        self.threads = int(threads)  # torch threads; 0 = every core
        self.net: _Network | None = None
        self.scaler: FeatureScaler | None = None
        self.input_sensors: list[str] = []
        self.forecast_sensors: list[str] = []
        self.calibration: dict[str, Any] = {}
        self.history: list[dict[str, float]] = []
        self.val_units: list[Any] = []

    # -- helpers -------------------------------------------------------------------------------
    @property
    def _quantiles(self) -> torch.Tensor:
        return torch.tensor([float(q) for q in self.config.quantiles], dtype=torch.float32)

    def _require_trained(self) -> None:
        if self.net is None or self.scaler is None:
            raise ModelNotTrainedError("The Transformer model has not been trained or loaded yet.")

    def _choose_sensors(self, train: Dataset) -> None:
        available = informative_sensors(train)
        wanted = list(self.config.sensors) or available
        missing = [s for s in wanted if s not in train.sensors]
        if missing:
            raise ConfigError(
                f"Setting 'sensors' names {', '.join(missing)}, not in the data; "
                f"available sensors: {', '.join(train.sensors)}."
            )
        if not wanted:
            raise InsufficientDataError(
                "Every sensor in the training data is constant; nothing to learn from."
            )
        self.input_sensors = wanted
        if self.target == ALL_TARGETS:
            self.forecast_sensors = list(wanted)
        elif self.target in train.sensors:
            self.forecast_sensors = [self.target]
            if self.target not in self.input_sensors:
                self.input_sensors = [*self.input_sensors, self.target]
        else:
            raise ConfigError(
                f"Target {self.target!r} is not a sensor of the data; use '*' or one of {', '.join(train.sensors)}."
            )

    def _check_compatible(self, data: Dataset) -> None:
        missing = [s for s in self.input_sensors if s not in data.frame.columns]
        if missing:
            raise IncompatibleDataError(
                f"{dataset_label(data)} lacks sensor(s) {', '.join(missing)} that this model was trained on."
            )

    def _make_windows(
        self, data: Dataset, *, last_only: bool, stride: int = 1, cap_per_unit: int = 0, min_history: int = 1
    ) -> _Windows:
        assert self.scaler is not None
        cfg = self.config
        w, horizon = cfg.window, cfg.horizon
        scaled = self.scaler.transform(data)
        sensor_cols = [self.scaler.feature_names.index(s) for s in self.forecast_sensors]
        n_sensors = len(self.scaler.sensors)  # the scaled sensors come first, then regime one-hots
        pads, bases, unit_idx, ends, remaining, futures, fmasks = [], [], [], [], [], [], []
        reg_last, reg_future = [], []
        # one numpy pass instead of a pandas selection per unit: inference on 100 units stays well under 1 s
        all_feats = scaled[self.scaler.feature_names].to_numpy(np.float32)
        all_regimes = scaled[REGIME].to_numpy()
        codes, uniques = pd.factorize(scaled[UNIT], sort=False)
        order = np.argsort(codes, kind="stable")
        blocks = np.split(order, np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1])
        units = list(uniques)
        plans = [
            self._window_ends(len(rows), last_only, stride, cap_per_unit, min_history) for rows in blocks
        ]
        if not plans:
            raise InsufficientDataError("The data holds no units to window.")
        # the windows are the bulk of the memory (rows x window x features): filled into one array
        # instead of concatenated from per-unit pieces, which would need twice the space at once
        x: np.ndarray | None = None
        filled = 0
        for k, (rows, unit_ends) in enumerate(zip(blocks, plans, strict=True)):
            feats = all_feats[rows]
            n = len(feats)
            if cfg.baseline_cycles:
                feats = np.concatenate(
                    [feats, _since_baseline(feats, n_sensors, cfg.baseline_cycles)], axis=1
                )
            if cfg.use_age:
                age = (np.arange(n, dtype=np.float32) / AGE_SCALE)[:, None]
                feats = np.concatenate([feats, age], axis=1)
            if x is None:
                x = np.empty((sum(len(e) for e in plans), w, feats.shape[1]), dtype=np.float32)
            unit_x, pad = _unit_windows(feats, w, unit_ends)
            x[filled : filled + len(unit_ends)] = unit_x
            filled += len(unit_ends)
            sens = feats[:, sensor_cols]
            tail = np.stack([sens[max(0, e - 4) : e + 1].mean(0) for e in unit_ends])
            fut_index = unit_ends[:, None] + 1 + np.arange(horizon)[None, :]
            fmask = fut_index < n
            fut = sens[np.minimum(fut_index, n - 1)] * fmask[..., None]
            regime = all_regimes[rows]
            reg_last.append(regime[unit_ends])
            reg_future.append(
                np.where(fmask, regime[np.minimum(fut_index, n - 1)], regime[unit_ends][:, None])
            )
            pads.append(pad)
            bases.append(tail)
            unit_idx.append(np.full(len(unit_ends), k))
            ends.append(unit_ends)
            remaining.append(n - 1 - unit_ends)
            futures.append(fut.astype(np.float32))
            fmasks.append(fmask)
        assert x is not None
        return _Windows(
            x=x,
            pad=np.concatenate(pads),
            base=np.concatenate(bases, dtype=np.float32),
            unit_index=np.concatenate(unit_idx),
            end=np.concatenate(ends),
            remaining=np.concatenate(remaining).astype(np.float32),
            future=np.concatenate(futures),
            future_mask=np.concatenate(fmasks),
            regime_last=np.concatenate(reg_last),
            regime_future=np.concatenate(reg_future),
            units=units,
        )

    @staticmethod
    def _window_ends(n: int, last_only: bool, stride: int, cap_per_unit: int, min_history: int) -> np.ndarray:
        """Rows (within a unit of ``n`` rows) at which windows end."""
        if last_only:
            return np.array([n - 1])
        ends = np.arange(min(min_history, n) - 1, n, stride)
        if cap_per_unit and len(ends) > cap_per_unit:
            pick = np.linspace(0, len(ends) - 1, cap_per_unit).round().astype(int)
            ends = ends[pick]
        return ends

    def _split(self, train: Dataset) -> tuple[Dataset, Dataset | None]:
        units = train.units
        n_val = int(round(len(units) * self.config.val_fraction))
        if self.config.val_fraction > 0 and len(units) >= 2:
            n_val = min(max(n_val, 1), len(units) - 1)
        else:
            n_val = 0
        if n_val == 0:
            return train, None
        rng = np.random.default_rng(self.config.seed)
        order = rng.permutation(len(units))
        val_units = [units[i] for i in sorted(order[:n_val])]
        fit_units = [u for u in units if u not in set(val_units)]
        note = f"validation split by unit, seed {self.config.seed}"
        return train.subset(fit_units, note=note), train.subset(val_units, note=note)

    def _loss(self, batch: dict[str, torch.Tensor], rul: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        q = self._quantiles
        target = torch.clamp(batch["remaining"], max=self.config.rul_cap) / self.config.rul_cap
        rul_loss = _pinball(rul, target, q).mean()
        if self.config.rul_mse_weight > 0:
            rul_loss = rul_loss + self.config.rul_mse_weight * ((rul[:, 1] - target) ** 2).mean()
        if not self.forecast_sensors or self.config.forecast_weight == 0:
            return rul_loss
        per = _pinball(fc, batch["future"], q)  # (B, H, S)
        mask = batch["future_mask"].unsqueeze(-1).to(per.dtype)
        fc_loss = (per * mask).sum() / (mask.sum() * per.shape[-1]).clamp(min=1.0)
        return rul_loss + self.config.forecast_weight * fc_loss

    @staticmethod
    def _tensors(win: _Windows, index: np.ndarray | slice) -> dict[str, torch.Tensor]:
        return {
            "x": torch.from_numpy(win.x[index]),
            "pad": torch.from_numpy(win.pad[index]),
            "base": torch.from_numpy(win.base[index]),
            "remaining": torch.from_numpy(win.remaining[index]),
            "future": torch.from_numpy(win.future[index]),
            "future_mask": torch.from_numpy(win.future_mask[index]),
        }

    def _predict_windows(self, win: _Windows, batch_size: int = EVAL_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """RUL quantiles in cycles (N, 3) and forecast quantiles in scaled units (N, H, S, 3)."""
        assert self.net is not None
        self.net.eval()
        ruls, fcs = [], []
        with torch.no_grad():
            for start in range(0, len(win), batch_size):
                part = self._tensors(win, slice(start, start + batch_size))
                rul, fc = self.net(part["x"], part["pad"], part["base"])
                ruls.append(rul.numpy() * self.config.rul_cap)
                fcs.append(fc.numpy())
        return np.concatenate(ruls), np.concatenate(fcs)

    # -- training --------------------------------------------------------------------------------
    def fit(
        self,
        train: Dataset,
        val: Dataset | None = None,
        *,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
    ) -> FitResult:
        return self._fit(train, val, progress=progress, should_stop=should_stop)

    def _fit(
        self,
        train: Dataset,
        val: Dataset | None,
        *,
        progress: ProgressCallback,
        should_stop: ShouldStop,
        threads: int | None = None,
    ) -> FitResult:
        """:meth:`fit` on ``threads`` torch threads (default: the model's own, see :func:`usable_threads`)."""
        cfg = self.config
        notes: list[str] = []
        if val is None:
            train, val = self._split(train)
            if val is not None:
                notes.append(f"validation on {len(val.units)} held-out training units (seed {cfg.seed})")
        self.val_units = list(val.units) if val is not None else []
        self._choose_sensors(train)
        self.scaler = FeatureScaler.fit(train, self.input_sensors)
        with _torch_runtime(cfg.seed, self.threads if threads is None else threads):
            rng = np.random.default_rng(cfg.seed)
            with _WINDOWS_LOCK:  # members training side by side build their windows one at a time
                train_win, val_win = self._fit_windows(train, val)
            n_inputs = train_win.x.shape[-1]
            self.net = _seeded_network(n_inputs, len(self.forecast_sensors), cfg, cfg.seed)
            optimiser = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            per_epoch = len(train_win)
            if cfg.windows_per_epoch:
                per_epoch = min(per_epoch, cfg.windows_per_epoch)
            batches_per_epoch = math.ceil(per_epoch / cfg.batch_size)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimiser, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * batches_per_epoch), pct_start=0.15
            )
            report_every = max(1, batches_per_epoch // BATCH_REPORTS_PER_EPOCH)
            best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
            history: list[dict[str, float]] = []
            stopped_early = False
            for epoch in range(1, cfg.epochs + 1):
                started = time.perf_counter()
                self.net.train()
                order = rng.permutation(len(train_win))[:per_epoch]
                total, count = 0.0, 0
                for number, start in enumerate(range(0, len(order), cfg.batch_size)):
                    if should_stop():
                        raise Cancelled("Training was cancelled.")
                    if number and number % report_every == 0:  # progress within the epoch
                        progress(batch_progress(epoch, cfg.epochs, number / batches_per_epoch))
                    batch = self._tensors(train_win, order[start : start + cfg.batch_size])
                    rul, fc = self.net(batch["x"], batch["pad"], batch["base"])
                    loss = self._loss(batch, rul, fc)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                    optimiser.step()
                    scheduler.step()
                    total += float(loss.detach()) * len(batch["x"])
                    count += len(batch["x"])
                train_loss = total / max(count, 1)
                val_loss, val_rmse = (
                    self._eval_loss(val_win, should_stop) if val_win is not None else (train_loss, math.nan)
                )
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": train_loss,
                        "val_loss": val_loss,
                        "val_rul_rmse": val_rmse,
                        "seconds": time.perf_counter() - started,
                    }
                )
                progress(
                    ProgressEvent(
                        stage="fit",
                        fraction=epoch / cfg.epochs,
                        epoch=epoch,
                        epochs=cfg.epochs,
                        train_loss=train_loss,
                        val_loss=val_loss if val_win is not None else None,
                        message=f"epoch {epoch}/{cfg.epochs}, validation RUL RMSE {val_rmse:.2f}",
                    )
                )
                watched = val_rmse if (cfg.stop_on == "rul_rmse" and val_win is not None) else val_loss
                if watched < best_loss - 1e-6:
                    best_loss, best_epoch, stale = watched, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        stopped_early = True
                        notes.append(
                            f"early stopping after epoch {epoch}: validation {cfg.stop_on} did not improve for "
                            f"{cfg.patience} epochs (best {best_loss:.5f} at epoch {best_epoch})"
                        )
                        break
            if best_state is not None:
                self.net.load_state_dict(best_state)
            self.history = history
            self.calibration = self._calibrate(val_win) if (val_win is not None and cfg.calibrate) else {}
            if self.calibration:
                notes.append(f"intervals conformally calibrated on {self.calibration['rul_samples']} windows")
        return FitResult(
            history=history,
            epochs_run=len(history),
            best_epoch=best_epoch,
            stopped_early=stopped_early,
            seed=cfg.seed,
            notes=notes,
        )

    def _fit_windows(self, train: Dataset, val: Dataset | None) -> tuple[_Windows, _Windows | None]:
        cfg = self.config
        train_win = self._make_windows(
            train,
            last_only=False,
            stride=cfg.stride,
            cap_per_unit=cfg.max_windows_per_unit,
            min_history=cfg.min_history,
        )
        val_win = (
            self._make_windows(val, last_only=False, stride=cfg.stride, min_history=cfg.min_history)
            if val is not None
            else None
        )
        return train_win, val_win

    def _eval_loss(self, win: _Windows, should_stop: ShouldStop) -> tuple[float, float]:
        """Validation loss (what early stopping watches) and the median's RUL RMSE on capped targets."""
        assert self.net is not None
        self.net.eval()
        total, squared = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, len(win), EVAL_BATCH):
                if should_stop():
                    raise Cancelled("Training was cancelled.")
                batch = self._tensors(win, slice(start, start + EVAL_BATCH))
                rul, fc = self.net(batch["x"], batch["pad"], batch["base"])
                total += float(self._loss(batch, rul, fc)) * len(batch["x"])
                target = torch.clamp(batch["remaining"], max=self.config.rul_cap)
                squared += float(((rul[:, 1] * self.config.rul_cap - target) ** 2).sum())
        n = max(len(win), 1)
        return total / n, math.sqrt(squared / n)

    def _calibrate(self, win: _Windows) -> dict[str, Any]:
        """Split-conformal offsets that make each bound miss ~its nominal share on validation units.

        For the lower bound the score is ``lower - y`` and the offset its (1 - q_low) quantile
        (finite-sample corrected); the upper bound likewise with ``y - upper``. The RUL scores come from
        the windows within ``calibrate_rul_within`` x ``rul_cap`` cycles of failure, with the capped
        target for the lower bound and (with ``uncapped_upper``) the true remaining cycles for the upper
        one, and are split into ``calibrate_rul_bands`` bands of the predicted median, each with its own
        offsets (Mondrian conformal): coverage then holds near failure and mid-life alike, not only on
        average, whatever mix of ages a test file has. Forecast offsets are per sensor and horizon step.
        """
        q_low, _, q_high = (float(q) for q in self.config.quantiles)
        rul_all, fc = self._predict_windows(win)
        near = _near_failure(win.remaining, self.config.calibrate_rul_within * self.config.rul_cap)
        rul, remaining = rul_all[near], win.remaining[near]
        y_lower = np.minimum(remaining, self.config.rul_cap)
        y_upper = remaining if self.config.uncapped_upper else y_lower
        edges = _band_edges(self.config.rul_cap, self.config.calibrate_rul_bands)
        band = np.digitize(rul[:, 1], edges)
        lower_scores, upper_scores = rul[:, 0] - y_lower, y_upper - rul[:, 2]
        overall_lower = _conformal_offset(lower_scores, 1 - q_low)
        overall_upper = _conformal_offset(upper_scores, q_high)
        lower_by_band, upper_by_band = [], []
        for b in range(len(edges) + 1):
            inside = band == b
            enough = inside.sum() >= MIN_BAND_WINDOWS
            lower_by_band.append(
                _conformal_offset(lower_scores[inside], 1 - q_low) if enough else overall_lower
            )
            upper_by_band.append(_conformal_offset(upper_scores[inside], q_high) if enough else overall_upper)
        calibration: dict[str, Any] = {
            "method": "split conformal on validation units, by band of the predicted RUL",
            "rul_samples": int(len(remaining)),
            "rul_lower": overall_lower,
            "rul_upper": overall_upper,
            "rul_band_edges": [float(e) for e in edges],
            "rul_lower_by_band": lower_by_band,
            "rul_upper_by_band": upper_by_band,
        }
        mask = win.future_mask
        lower, upper = [], []
        for s in range(len(self.forecast_sensors)):
            lo_s, up_s = [], []
            for h in range(self.config.horizon):
                keep = mask[:, h]
                truth = win.future[keep, h, s]
                lo_s.append(_conformal_offset(fc[keep, h, s, 0] - truth, 1 - q_low))
                up_s.append(_conformal_offset(truth - fc[keep, h, s, 2], q_high))
            lower.append(lo_s)
            upper.append(up_s)
        calibration["forecast_lower"] = lower  # [sensor][step], scaled units
        calibration["forecast_upper"] = upper
        return calibration

    def _calibrated_rul(self, rul: np.ndarray) -> np.ndarray:
        out = rul.copy()
        calibration = self.calibration
        if calibration and "rul_lower_by_band" in calibration:
            band = np.digitize(rul[:, 1], np.asarray(calibration["rul_band_edges"], dtype=np.float64))
            out[:, 0] -= np.asarray(calibration["rul_lower_by_band"])[band]
            out[:, 2] += np.asarray(calibration["rul_upper_by_band"])[band]
        elif calibration:  # saved before the bands: one offset, and one more where the upper bound saturates
            out[:, 0] -= calibration["rul_lower"]
            out[:, 2] += calibration["rul_upper"]
            saturated = out[:, 2] >= self.config.rul_cap
            out[saturated, 2] += calibration.get("rul_upper_saturated", 0.0)
        out = np.maximum(out, 0.0)
        out[:, 0] = np.minimum(out[:, 0], out[:, 1])
        out[:, 2] = np.maximum(out[:, 2], out[:, 1])
        return out

    def _calibrated_forecast(self, fc: np.ndarray) -> np.ndarray:
        out = fc.copy()
        if self.calibration:
            h = out.shape[1]
            lower = np.asarray(self.calibration["forecast_lower"], dtype=np.float32).T[:h]  # (H, S)
            upper = np.asarray(self.calibration["forecast_upper"], dtype=np.float32).T[:h]
            out[..., 0] -= lower[None]
            out[..., 2] += upper[None]
        out[..., 0] = np.minimum(out[..., 0], out[..., 1])
        out[..., 2] = np.maximum(out[..., 2], out[..., 1])
        return out

    # -- what the tasks are built from (an ensemble averages these over its members) -------------
    def _rul_at_last_rows(self, data: Dataset) -> tuple[list[Any], np.ndarray]:
        """The units (in data order) and their calibrated RUL lower/median/upper (N, 3) at the last row."""
        with _torch_runtime(threads=self.threads):
            win = self._make_windows(data, last_only=True)
            rul, _ = self._predict_windows(win)
        return win.units, self._calibrated_rul(rul)

    def _rul_at_every_row(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated RUL (N, 3) at every row of run-to-failure units, and the capped truth (N,)."""
        cfg = self.config
        with _torch_runtime(threads=self.threads):
            win = self._make_windows(data, last_only=False, stride=1, min_history=cfg.min_history)
            rul, _ = self._predict_windows(win)
        return self._calibrated_rul(rul), np.minimum(win.remaining, cfg.rul_cap)

    def _forecast_at_last_rows(self, data: Dataset, horizon: int) -> dict[str, np.ndarray]:
        """Per forecast sensor, the calibrated lower/median/upper (units, horizon, 3) after each unit's
        last row, in the sensor's units; the future operating regime is unknown, so each unit is assumed
        to stay in its last one."""
        assert self.scaler is not None
        with _torch_runtime(threads=self.threads):
            win = self._make_windows(data, last_only=True)
            _, fc = self._predict_windows(win)
        fc = self._calibrated_forecast(fc)[:, :horizon]
        return {
            name: np.stack(
                [self.scaler.inverse(name, fc[i, :, s, :], win.regime_last[i]) for i in range(len(win))]
            )
            for s, name in enumerate(self.forecast_sensors)
        }

    def _forecast_at_origins(self, data: Dataset) -> dict[str, dict[str, np.ndarray]]:
        """Per forecast sensor, at origins every ``eval_stride`` rows with a whole horizon ahead: the truth,
        the calibrated lower/median/upper and the persistence forecast (the last observed value), each
        (origins, H) in the sensor's units under the known future regimes (a regime change is no error)."""
        assert self.scaler is not None
        cfg = self.config
        with _torch_runtime(threads=self.threads):
            win = self._make_windows(data, last_only=False, stride=cfg.eval_stride, min_history=cfg.window)
            full = win.future_mask.all(axis=1)
            if not full.any():
                return {}
            win = _take(win, full)
            _, fc = self._predict_windows(win)
        fc = self._calibrated_forecast(fc)
        last_col = [self.scaler.feature_names.index(s) for s in self.forecast_sensors]
        last = win.x[:, -1, :][:, last_col]  # (N, S) scaled last observation
        reg = win.regime_future
        out: dict[str, dict[str, np.ndarray]] = {}
        for s, name in enumerate(self.forecast_sensors):
            out[name] = {
                "truth": self.scaler.inverse(name, win.future[:, :, s], reg),
                "lower": self.scaler.inverse(name, fc[:, :, s, 0], reg),
                "median": self.scaler.inverse(name, fc[:, :, s, 1], reg),
                "upper": self.scaler.inverse(name, fc[:, :, s, 2], reg),
                "persistence": self.scaler.inverse(
                    name, np.repeat(last[:, s : s + 1], cfg.horizon, axis=1), reg
                ),
            }
        return out

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """The network's state dict as numpy arrays (what ``models reproduce`` hashes)."""
        self._require_trained()
        assert self.net is not None
        return {name: t.detach().cpu().numpy() for name, t in self.net.state_dict().items()}

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """weights.pt (a plain state dict) + meta.json (sensors, scaler, calibration, config)."""
        self._require_trained()
        assert self.net is not None and self.scaler is not None
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), directory / "weights.pt")
        meta = {
            "meta_version": META_VERSION,
            "model": "transformer",
            "target": self.target,
            "config": _jsonable_config(self.config),
            "input_sensors": self.input_sensors,
            "forecast_sensors": self.forecast_sensors,
            "n_inputs": int(self.net.embed.in_features),
            "scaler": self.scaler.to_dict(),
            "calibration": self.calibration,
            "history": self.history,
            "val_units": [_jsonable(u) for u in self.val_units],
            "padding": "units shorter than the window are left-padded with their first row, masked out",
        }
        (directory / "meta.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        config: TransformerConfig | None = None,
        target: str = ALL_TARGETS,
        threads: int = 0,
    ):
        """Rebuild from :meth:`save` output; the saved config defines the architecture."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        known = {f.name for f in dataclasses.fields(TransformerConfig)}
        values = {k: v for k, v in meta["config"].items() if k in known}
        saved = TransformerConfig(**{**values, "quantiles": tuple(values.get("quantiles", (0.1, 0.5, 0.9)))})
        model = cls(config=saved, target=meta.get("target", target), threads=threads)
        model.input_sensors = list(meta["input_sensors"])
        model.forecast_sensors = list(meta["forecast_sensors"])
        model.scaler = FeatureScaler.from_dict(meta["scaler"])
        model.calibration = meta.get("calibration") or {}
        model.history = meta.get("history", [])
        model.val_units = meta.get("val_units", [])
        model.net = _Network(int(meta["n_inputs"]), len(model.forecast_sensors), saved)
        state = torch.load(directory / "weights.pt", weights_only=True, map_location="cpu")
        model.net.load_state_dict(state)
        model.net.eval()
        return model


# -- small helpers ----------------------------------------------------------------------------------
def _near_failure(remaining: np.ndarray, within: float, min_windows: int = 50) -> np.ndarray:
    """Mask of the windows with at most ``within`` cycles left (every window when ``within`` is 0 or
    fewer than ``min_windows`` qualify: a handful of scores makes no quantile)."""
    near = remaining <= within if within > 0 else np.ones(len(remaining), dtype=bool)
    return near if near.sum() >= min_windows else np.ones(len(remaining), dtype=bool)


def _band_edges(cap: float, bands: int) -> np.ndarray:
    """Inner edges of ``bands`` equal bands of 0..``cap`` (none for one band)."""
    return cap * np.arange(1, bands) / bands


def _conformal_offset(scores: np.ndarray, level: float) -> float:
    """The finite-sample-corrected ``level`` quantile of conformity scores (0 when there are none)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return 0.0
    q = min(1.0, math.ceil((n + 1) * level) / n)
    return float(np.quantile(scores, q, method="higher"))


def rul_metrics(pred: np.ndarray, true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict[str, float]:
    """RMSE, NASA score (d = predicted - true) and interval coverage."""
    d = np.asarray(pred, float) - np.asarray(true, float)
    score = np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0).sum()
    covered = (np.asarray(true) >= lower) & (np.asarray(true) <= upper)
    return {
        "rul_rmse": float(np.sqrt(np.mean(d**2))),
        "rul_mae": float(np.mean(np.abs(d))),
        "rul_score": float(score),
        "rul_coverage80": float(covered.mean()),
    }


def _continue_time(times: pd.Series, horizon: int) -> np.ndarray:
    """The next ``horizon`` values of a unit's own time axis (cycles, steps or timestamps)."""
    values = times.to_numpy()
    if pd.api.types.is_datetime64_any_dtype(times):
        steps = np.diff(values)
        step = np.median(steps) if len(steps) else np.timedelta64(1, "s")
        return values[-1] + step * np.arange(1, horizon + 1)
    steps = np.diff(values.astype(float))
    step = np.median(steps) if len(steps) else 1.0
    future = values[-1] + step * np.arange(1, horizon + 1)
    return future.astype(values.dtype) if np.issubdtype(values.dtype, np.integer) else future


def _take(win: _Windows, keep: np.ndarray) -> _Windows:
    return dataclasses.replace(
        win,
        x=win.x[keep],
        pad=win.pad[keep],
        base=win.base[keep],
        unit_index=win.unit_index[keep],
        end=win.end[keep],
        remaining=win.remaining[keep],
        future=win.future[keep],
        future_mask=win.future_mask[keep],
        regime_last=win.regime_last[keep],
        regime_future=win.regime_future[keep],
    )


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _jsonable_config(config: TransformerConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    out["quantiles"] = [float(q) for q in config.quantiles]
    return out
