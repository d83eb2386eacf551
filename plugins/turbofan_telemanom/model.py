"""The Telemanom model: an LSTM next-step predictor for one target sensor plus dynamic thresholds.

This module and ``sharded.py`` (imported only from here) are the plugin's only modules that import
torch; the plugin manager reaches this one through the spec's factory string when a model is built. One instance serves one target sensor (no state shared
between sensors). The network follows the authors' Keras model (LSTM 80 -> dropout -> LSTM 80 ->
dropout -> dense n_predictions, Keras' initialisers on whole matrices, one LSTM bias, Keras' Adam
update with epsilon 1e-7: see ``benchmarks/telemanom_fidelity.py``); training follows their
``fit`` call (windows shuffled before Keras' ``validation_split`` takes the last share, i.e. a random
held-out share; shuffled batches; early stopping on validation loss without restoring the best weights).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.validation import dataset_label
from turbofan_desktop.errors import (
    Cancelled,
    ConfigError,
    IncompatibleDataError,
    InsufficientDataError,
    ModelNotTrainedError,
)
from turbofan_desktop.plugins.contract import (
    BATCH_REPORTS_PER_EPOCH,
    AnomalyRange,
    DetectionResult,
    FitResult,
    ProgressCallback,
    ProgressEvent,
    ShouldStop,
    UnitDetection,
    batch_progress,
    never_stop,
    no_progress,
)
from turbofan_telemanom.config import TelemanomConfig, scaled_for
from turbofan_telemanom.pot import find_anomalies_pot
from turbofan_telemanom.sharded import ShardedRunner
from turbofan_telemanom.threshold import ThresholdParams, find_anomalies, smooth_errors

META_FILE = "meta.json"
WEIGHTS_FILE = "weights.pt"
FORMAT_VERSION = 1
PREDICT_CHUNK = 1024  # windows per inference forward pass (no effect on results, only on speed)
UNSCALED_LIMIT = 10.0  # 'auto' scaling: data whose magnitude exceeds this is not pre-normalised


# -- threads -----------------------------------------------------------------------------------------
def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads to ``threads`` (the services pass the ``torch_threads`` setting;
    0 = every usable core) and return the count.

    One pool sized to the cores, never more: oversubscribing 2 cores costs more than it gains.
    """
    wanted = int(threads)
    if wanted <= 0:
        try:
            wanted = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            wanted = os.cpu_count() or 1
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


# -- the optimiser -----------------------------------------------------------------------------------
class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras updates it (Keras 2.1.5 in the authors' run and Keras 3 alike): epsilon is
    added to sqrt(v) and the bias corrections scale the step ("epsilon hat" in Kingma and Ba).

    ``torch.optim.Adam`` adds epsilon after dividing v by its bias correction: an effective epsilon
    up to 30x smaller in the first steps. We follow the authors' update; README (Telemanom) gives the
    measured effect (``benchmarks/telemanom_fidelity.py``, variant ``ours-torchadam``).
    """

    def __init__(
        self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7
    ):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ARG002 - the Optimizer signature
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:  # frozen (bias_hh) or unused
                    continue
                state = self.state[param]
                if not state:
                    state["t"] = 0
                    state["m"] = torch.zeros_like(param)
                    state["v"] = torch.zeros_like(param)
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.lerp_(param.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                alpha = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                param.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-alpha)


# -- the network -------------------------------------------------------------------------------------
class TelemanomNet(nn.Module):
    """Stacked LSTMs, dropout after each, a linear head predicting ``n_predictions`` steps."""

    def __init__(self, n_features: int, units: tuple[int, ...], dropout: float, n_predictions: int):
        super().__init__()
        sizes = [n_features, *units]
        self.lstms = nn.ModuleList(
            nn.LSTM(sizes[i], sizes[i + 1], batch_first=True) for i in range(len(units))
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(units[-1], n_predictions)
        self._keras_init()

    def _keras_init(self) -> None:
        """Keras' LSTM defaults, drawn on whole matrices as Keras draws them (not per gate block).

        PyTorch's ``weight_ih`` (4·hidden × inputs) is Keras' kernel (inputs × 4·hidden) transposed:
        one Glorot-uniform draw with limit sqrt(6 / (inputs + 4·hidden)). ``weight_hh``
        (4·hidden × hidden) is Keras' recurrent kernel transposed: one orthogonal matrix, so each
        gate's block is a quarter of it. Drawing per gate instead made the input weights about 1.8×
        and the recurrent blocks about 2× larger than the authors' network started with.
        Keras has one bias per LSTM (zeros, forget gate 1); PyTorch adds two, so ``bias_hh`` stays
        zero and frozen: two trainable copies would move the effective bias twice as fast under Adam.
        """
        for lstm in self.lstms:
            hidden = lstm.hidden_size
            for name, param in lstm.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(param.data)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(param.data)
                elif name.startswith("bias_ih"):
                    param.data.zero_()
                    param.data[hidden : 2 * hidden] = 1.0  # PyTorch gate order: input, forget, cell, output
                else:
                    param.data.zero_()
                    param.requires_grad_(False)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The plain path (the reference): dropout draws its masks as it goes."""
        for index, lstm in enumerate(self.lstms):
            x, _ = lstm(x)
            if index < len(self.lstms) - 1:
                x = self.dropout(x)
        return self.head(self.dropout(x[:, -1, :]))

    # The sharded path (issue 22, sharded.py) splits a batch over threads, so the masks cannot be drawn
    # inside forward (the threads would draw them in a random order): they are drawn first, exactly as
    # forward's nn.Dropout calls would draw them, and applied by forward_masked.
    def dropout_masks(self, batch: int, steps: int) -> list[torch.Tensor | None]:
        """The multipliers forward's dropout calls draw in training, in their order: one per LSTM
        output but the last (batch, steps, units), then one for the head's input (batch, units).

        As ``F.dropout`` on CPU: a Bernoulli(1 - p) draw filled in the memory order of the tensor
        dropped (torch's batch-first LSTM output lies time-major in memory), divided by 1 - p;
        nothing is drawn when p is 0.
        """
        p = self.dropout.p
        if p == 0.0:
            return [None] * len(self.lstms)
        keep = 1.0 - p
        time_major = self._outputs_time_major()
        masks: list[torch.Tensor | None] = []
        for lstm in self.lstms[:-1]:
            shape = (steps, batch) if time_major else (batch, steps)
            mask = torch.empty(*shape, lstm.hidden_size).bernoulli_(keep).div_(keep)
            masks.append(mask.transpose(0, 1) if time_major else mask)
        masks.append(torch.empty(batch, self.lstms[-1].hidden_size).bernoulli_(keep).div_(keep))
        return masks

    def _outputs_time_major(self) -> bool:
        """Whether torch's LSTM hands back a time-major tensor seen batch-first (probed once)."""
        if not hasattr(self, "_time_major"):
            lstm = self.lstms[0]
            with torch.enable_grad():  # the layout of training, when the masks are used
                out, _ = lstm(torch.zeros(2, 3, lstm.input_size))
            self._time_major = out.stride(1) > out.stride(0)
        return self._time_major

    def forward_masked(self, x: torch.Tensor, masks: list[torch.Tensor | None]) -> torch.Tensor:
        """``forward`` with the dropout masks given (rows of ``dropout_masks``' for these windows)."""
        for index, lstm in enumerate(self.lstms):
            x, _ = lstm(x)
            if index < len(self.lstms) - 1 and masks[index] is not None:
                x = x * masks[index]
        last = x[:, -1, :]
        return self.head(last if masks[-1] is None else last * masks[-1])


# -- data preparation --------------------------------------------------------------------------------
@dataclass
class _Series:
    """Units concatenated into one scaled array, with the window starts that stay inside a unit."""

    values: np.ndarray  # (rows, features), scaled, float32
    offsets: dict[Any, tuple[int, int]]  # unit -> (first row, length)

    def window_starts(self, need: int, units: list[Any] | None = None) -> dict[Any, np.ndarray]:
        starts = {}
        for unit, (offset, length) in self.offsets.items():
            if units is not None and unit not in units:
                continue
            count = length - need + 1
            starts[unit] = offset + np.arange(max(0, count), dtype=np.int64)
        return starts


def _is_run_to_failure(data: Dataset) -> bool:
    """Cycle-indexed units without a paired RUL file are taken to run until failure (C-MAPSS train)."""
    flagged = data.metadata.get("run_to_failure") if isinstance(data.metadata, dict) else None
    if flagged is not None:
        return bool(flagged)
    return data.time_kind == "cycle" and data.rul is None


def _failure_times(data: Dataset) -> dict[Any, float] | None:
    """The time of failure per unit: the last cycle on run-to-failure data, last + RUL on test data."""
    if data.time_kind != "cycle":
        return None
    last = data.frame.groupby("unit", sort=False)[data.time_col].max()
    if data.rul is not None:
        return {u: float(last[u] + data.rul[u]) for u in last.index if u in data.rul.index}
    if _is_run_to_failure(data):
        return {u: float(v) for u, v in last.items()}
    return None


class TelemanomModel:
    """Telemanom for one target sensor. Built by ``spec.build(config, target)``."""

    # "auto": batches split over the allowed torch threads (sharded.py); "reference": the plain loop,
    # one batch at a time through TelemanomNet.forward (kept for tests and the speed benchmark).
    training_path = "auto"

    def __init__(self, config: TelemanomConfig, target: str, threads: int = 0):
        self.config = config
        self.target = target
        self.threads = int(threads)  # torch intra-op threads; 0 = every usable core
        self.features: list[str] = []
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.net: TelemanomNet | None = None
        self.threshold_stats: dict[str, float] = {}
        self.fit_notes: list[str] = []

    # -- inputs --------------------------------------------------------------------------------
    def _choose_features(self, data: Dataset) -> list[str]:
        if self.target not in data.frame.columns:
            raise IncompatibleDataError(
                f"The data has no sensor '{self.target}'; its sensors are {', '.join(data.sensors)}."
            )
        settings = [s for s in data.settings if s != self.target]
        others = [s for s in data.informative_sensors if s != self.target]
        choice = self.config.features
        if choice == "target":
            return [self.target]
        if choice == "target_settings":
            return [self.target, *settings]
        return [self.target, *settings, *others]

    def _fit_scaler(self, frame_values: np.ndarray) -> None:
        n = frame_values.shape[1]
        mode = self.config.scaling
        if mode == "auto":
            mode = "standard" if np.nanmax(np.abs(frame_values)) > UNSCALED_LIMIT else "none"
        if mode == "standard":
            mean = np.nanmean(frame_values, axis=0)
            std = np.nanstd(frame_values, axis=0)
            std = np.where(std > 1e-12, std, 1.0)
        else:
            mean, std = np.zeros(n), np.ones(n)
        self.mean, self.std = mean.astype(np.float64), std.astype(np.float64)
        self.fit_notes.append(f"input scaling: {mode}")

    def _blocks(self, data: Dataset, healthy: bool) -> list[tuple[Any, np.ndarray]]:
        """Raw feature rows per unit; on ``healthy`` only the first ``healthy_fraction`` of each life."""
        missing = [f for f in self.features if f not in data.frame.columns]
        if missing:
            raise IncompatibleDataError(
                f"{dataset_label(data)} lacks column(s) {', '.join(missing)} that this model was trained on."
            )
        blocks = []
        for unit, frame in data.iter_units():
            values = frame[self.features].to_numpy(dtype=np.float64)
            if healthy:
                values = values[: max(1, int(math.ceil(len(values) * self.config.healthy_fraction)))]
            blocks.append((unit, values))
        return blocks

    def _series(self, data: Dataset, healthy: bool, blocks: list | None = None) -> _Series:
        """Units scaled and concatenated (gaps carried forward)."""
        parts, offsets, row = [], {}, 0
        for unit, raw in blocks if blocks is not None else self._blocks(data, healthy):
            values = (raw - self.mean) / self.std
            if np.isnan(values).any():
                values = _fill_gaps(values)
            parts.append(values.astype(np.float32))
            offsets[unit] = (row, len(values))
            row += len(values)
        stacked = np.concatenate(parts) if parts else np.zeros((0, len(self.features)), np.float32)
        return _Series(stacked, offsets)

    # -- training ------------------------------------------------------------------------------
    def _effective_config(self, train: Dataset) -> TelemanomConfig:
        config = self.config
        if config.auto_scale and train.time_kind == "cycle" and len(train.frame):
            shortest = int(train.unit_lengths().min())
            scaled = scaled_for(config, shortest)
            if scaled != config:
                changed = {
                    f.name: getattr(scaled, f.name)
                    for f in dataclasses.fields(scaled)
                    if getattr(scaled, f.name) != getattr(config, f.name)
                }
                self.fit_notes.append(f"scaled for cycle data (shortest unit {shortest}): {changed}")
            config = scaled
        config.validate()
        return config

    def fit(
        self,
        train: Dataset,
        val: Dataset | None,
        *,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
    ) -> FitResult:
        """Train on ``train`` (the healthy early life of each unit on run-to-failure data)."""
        self.fit_notes = []
        self.config = self._effective_config(train)
        config = self.config
        threads = configure_threads(self.threads)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)

        self.features = self._choose_features(train)
        healthy = _is_run_to_failure(train) and config.healthy_fraction < 1.0
        if healthy:
            self.fit_notes.append(f"trained on the first {config.healthy_fraction:.0%} of each unit's life")
        blocks = self._blocks(train, healthy)
        self._fit_scaler(np.concatenate([raw for _, raw in blocks]))
        series = self._series(train, healthy, blocks)
        need = config.l_s + config.n_predictions
        starts = series.window_starts(need)
        if sum(len(s) for s in starts.values()) == 0:
            longest = max((length for _, length in series.offsets.values()), default=0)
            raise InsufficientDataError(
                f"Every unit's training part is shorter than the model window: the longest has {longest} "
                f"rows but l_s + n_predictions = {need} are needed; lower l_s or use longer units."
            )
        train_idx, val_idx, val_series = self._split(series, starts, val, need, rng)
        self.fit_notes.append(
            f"{len(train_idx)} training windows, {len(val_idx)} validation windows "
            f"({config.validation_pick if val_series is None else 'given units'}), {threads} torch threads"
        )

        self.net = TelemanomNet(len(self.features), config.lstm_units, config.dropout, config.n_predictions)
        optimiser = KerasAdam(self.net.parameters(), lr=config.lr)
        loss_fn = nn.MSELoss()
        train_values = torch.from_numpy(series.values)
        val_values = torch.from_numpy(val_series.values) if val_series is not None else train_values

        history: list[dict[str, float]] = []
        best, best_epoch, wait, stopped_early = math.inf, 0, 0, False
        monitor = "val_loss" if len(val_idx) else "train_loss"
        runner = self._runner(threads)
        if runner is not None:
            self.fit_notes.append(f"batches split over {runner.shards} threads")
        with runner or contextlib.nullcontext():
            for epoch in range(1, config.epochs + 1):
                began = time.perf_counter()
                self.net.train()
                order = rng.permutation(train_idx)
                total, count = 0.0, 0
                batches = max(1, math.ceil(len(order) / config.batch_size))
                report_every = max(1, batches // BATCH_REPORTS_PER_EPOCH)
                for number, first in enumerate(range(0, len(order), config.batch_size)):
                    if should_stop():
                        raise Cancelled()
                    if number and number % report_every == 0:  # progress within the epoch
                        progress(batch_progress(epoch, config.epochs, number / batches))
                    batch = torch.from_numpy(order[first : first + config.batch_size])
                    if runner is not None:
                        following = len(order[first + config.batch_size : first + 2 * config.batch_size])
                        loss_value = runner.train_step(
                            batch,
                            lambda part: self._gather(train_values, part),
                            config.l_s,
                            optimiser,
                            next_batch=following or None,
                        )
                    else:  # the reference path: the plain loop
                        x, y = self._gather(train_values, batch)
                        optimiser.zero_grad()
                        loss = loss_fn(self.net(x), y)
                        loss.backward()
                        optimiser.step()
                        loss_value = loss.item()
                    total += loss_value * len(batch)
                    count += len(batch)
                train_loss = total / max(count, 1)
                val_loss = self._loss(val_values, val_idx, should_stop, runner) if len(val_idx) else None
                seconds = time.perf_counter() - began
                history.append(
                    {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds}
                )
                progress(
                    ProgressEvent(
                        "fit",
                        epoch / config.epochs,
                        epoch=epoch,
                        epochs=config.epochs,
                        train_loss=train_loss,
                        val_loss=val_loss,
                        message=f"epoch {epoch}/{config.epochs}",
                    )
                )
                current = val_loss if val_loss is not None else train_loss
                if current < best - config.min_delta:  # Keras EarlyStopping: improvement beyond min_delta
                    best, best_epoch, wait = current, epoch, 0
                else:
                    wait += 1
                    if wait >= config.patience:
                        stopped_early = True
                        self.fit_notes.append(
                            f"early stopping fired after epoch {epoch}: {monitor} did not improve by "
                            f"min_delta={config.min_delta:g} on {best:.3g} (epoch {best_epoch}) for "
                            f"{config.patience} epochs; the last weights are kept, as in the reference"
                        )
                        break
            self.threshold_stats = self._error_stats(
                val_values, val_idx if len(val_idx) else train_idx, runner
            )
        if not stopped_early:
            self.fit_notes.append(
                f"ran all {config.epochs} epochs; best {monitor} {best:.3g} at epoch {best_epoch}"
            )
        return FitResult(
            history=history,
            epochs_run=len(history),
            best_epoch=best_epoch,
            stopped_early=stopped_early,
            seed=config.seed,
            notes=list(self.fit_notes),
        )

    def _split(
        self,
        series: _Series,
        starts: dict[Any, np.ndarray],
        val: Dataset | None,
        need: int,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, _Series | None]:
        """Training and validation window starts: the given validation units when there are any,
        else a ``validation_split`` share of the training windows (see :func:`split_windows`)."""
        if val is not None and len(val.frame):
            val_series = self._series(val, _is_run_to_failure(val) and self.config.healthy_fraction < 1.0)
            val_starts = val_series.window_starts(need)
            val_idx = np.concatenate([*val_starts.values(), np.zeros(0, np.int64)])
            if len(val_idx):
                train_idx = np.concatenate(list(starts.values()))
                return train_idx, val_idx, val_series
            self.fit_notes.append("validation units too short for a window: split the training units instead")
        train_idx, val_idx = split_windows(
            starts, self.config.validation_split, self.config.validation_pick, rng
        )
        return train_idx, val_idx, None

    def _gather(self, values: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        l_s, n_pred = self.config.l_s, self.config.n_predictions
        steps = torch.arange(l_s)
        x = values[starts[:, None] + steps[None, :]]
        y = values[starts[:, None] + l_s + torch.arange(n_pred)[None, :], 0]
        return x, y

    def _runner(self, threads: int) -> ShardedRunner | None:
        """The sharded path (batches split over ``threads`` worker threads) where it applies: more
        than one thread allowed, the network on the CPU and ``training_path`` left at "auto"."""
        if self.training_path == "reference" or threads < 2 or self.net is None:
            return None
        if next(self.net.parameters()).device.type != "cpu":
            return None
        return ShardedRunner(self.net, threads)

    def _outputs(
        self, values: torch.Tensor, batch: torch.Tensor, runner: ShardedRunner | None
    ) -> torch.Tensor:
        """The network's outputs (eval mode) for the windows starting at ``batch``."""
        steps = torch.arange(self.config.l_s)
        if runner is None:
            return self.net(values[batch[:, None] + steps[None, :]])
        return runner.forward(lambda part: values[batch[part, None] + steps[None, :]], len(batch))

    @torch.inference_mode()
    def _loss(
        self,
        values: torch.Tensor,
        starts: np.ndarray,
        should_stop: ShouldStop,
        runner: ShardedRunner | None = None,
    ) -> float:
        self.net.eval()
        total = 0.0
        for first in range(0, len(starts), PREDICT_CHUNK):
            if should_stop():
                raise Cancelled()
            batch = torch.from_numpy(starts[first : first + PREDICT_CHUNK])
            _, y = self._gather(values, batch)
            total += float(((self._outputs(values, batch, runner) - y) ** 2).mean()) * len(batch)
        return total / max(len(starts), 1)

    @torch.inference_mode()
    def _error_stats(
        self, values: torch.Tensor, starts: np.ndarray, runner: ShardedRunner | None = None
    ) -> dict[str, float]:
        """1-step error statistics on held-out windows, kept with the model for reports and drift."""
        if not len(starts):
            return {}
        predicted = self._predict_first(values, starts, never_stop, runner)
        actual = values[torch.from_numpy(starts) + self.config.l_s, 0].numpy()
        errors = np.abs(predicted - actual)
        return {
            "windows": int(len(errors)),
            "error_mean": float(errors.mean()),
            "error_std": float(errors.std()),
            "error_p95": float(np.percentile(errors, 95)),
        }

    # -- prediction ----------------------------------------------------------------------------
    @torch.inference_mode()
    def _predict_first(
        self,
        values: torch.Tensor,
        starts: np.ndarray,
        should_stop: ShouldStop,
        runner: ShardedRunner | None = None,
    ) -> np.ndarray:
        """The 1-step-ahead prediction of each window (the only one scored)."""
        self.net.eval()
        out = np.empty(len(starts), dtype=np.float64)
        for first in range(0, len(starts), PREDICT_CHUNK):
            if should_stop():
                raise Cancelled()
            batch = torch.from_numpy(starts[first : first + PREDICT_CHUNK])
            out[first : first + len(batch)] = self._outputs(values, batch, runner)[:, 0].numpy()
        return out

    def _require_trained(self) -> None:
        if self.net is None or self.mean is None:
            raise ModelNotTrainedError(
                f"The Telemanom model for '{self.target}' has not been trained or loaded."
            )

    def detect(
        self,
        data: Dataset,
        *,
        units: list[Any] | None = None,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
        labels: list[dict[str, Any]] | None = None,
    ) -> DetectionResult:
        """Per unit: 1-step errors, smoothed errors, thresholds and anomaly ranges on the data's time axis.

        ``actual``/``predicted`` are in the sensor's units; errors and thresholds in the model's
        (scaled) units. Rows before the first full input window (the first ``l_s``) are not scored;
        a unit no longer than ``l_s`` gets empty arrays. Every later row gets an error, but only the
        windows whose whole ``n_predictions`` target lies in the data are thresholded, as the authors
        built their test windows: the last ``n_predictions`` errors carry no threshold and are never
        flagged (this count also decides the authors' ignored prefix and the last threshold window).

        ``labels``: the user's feedback on this data (dicts with ``unit``, ``start``, ``end``,
        ``label`` on the data's time axis); used only with ``exclude_labelled`` and the
        nonparametric threshold (see :func:`~turbofan_telemanom.threshold.find_anomalies`).
        """
        self._require_trained()
        runner = self._runner(configure_threads(self.threads))
        config = self.config
        wanted = list(units) if units is not None else None
        subset = data if wanted is None else data.subset(wanted)
        series = self._series(subset, healthy=False)
        values = torch.from_numpy(series.values)
        params = ThresholdParams.from_config(config)
        results: dict[Any, UnitDetection] = {}
        frames = dict(subset.iter_units())
        for position, (unit, (offset, length)) in enumerate(series.offsets.items()):
            if should_stop():
                raise Cancelled()
            times = frames[unit][subset.time_col].to_numpy()
            n_scored = max(0, length - config.l_s)
            starts = offset + np.arange(n_scored, dtype=np.int64)
            with runner or contextlib.nullcontext():
                predicted = self._predict_first(values, starts, should_stop, runner)
            actual = series.values[offset + config.l_s : offset + length, 0].astype(np.float64)
            errors = np.abs(predicted - actual)
            judged = max(0, n_scored - config.n_predictions)
            if config.threshold_method == "pot":
                found = find_anomalies_pot(errors[:judged], actual[:judged], params)
            else:
                known, dismissed = (
                    label_masks(labels, unit, times[config.l_s : config.l_s + judged])
                    if config.exclude_labelled and labels
                    else (None, None)
                )
                found = find_anomalies(
                    errors[:judged], actual[:judged], params, known=known, dismissed=dismissed
                )
            tail = smooth_errors(errors, params.smoothing_window, params.l_s)[judged:]
            ranges = []
            for seq in found.sequences:
                first_row, last_row = seq.start + config.l_s, seq.end + config.l_s
                ranges.append(
                    AnomalyRange(
                        start=_plain(times[first_row]),
                        end=_plain(times[last_row]),
                        score=seq.score,
                        start_index=int(first_row),
                        end_index=int(last_row),
                        direction=seq.direction,
                        probability=getattr(seq, "probability", None),
                    )
                )
            results[unit] = UnitDetection(
                unit=unit,
                time=times[config.l_s :],
                actual=actual * self.std[0] + self.mean[0],
                predicted=predicted * self.std[0] + self.mean[0],
                errors=errors,
                smoothed=np.concatenate([found.smoothed, tail]),
                threshold=np.concatenate([found.threshold, np.full(len(tail), np.nan)]),
                anomalies=ranges,
            )
            progress(ProgressEvent("detect", (position + 1) / len(series.offsets), message=f"unit {unit}"))
        return DetectionResult(target=self.target, units=results, threshold_method=config.threshold_method)

    def evaluate(
        self,
        data: Dataset,
        *,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
    ) -> dict[str, float]:
        """Held-out metrics: 1-step prediction MSE, share of scored steps flagged and, where the failure
        time is known (run-to-failure or RUL-paired data), the median first-alarm lead time before
        failure and the share of units with a (false) alarm in the first half of their life."""
        detection = self.detect(data, progress=progress, should_stop=should_stop)
        scored = [d for d in detection.units.values() if len(d.errors)]
        if not scored:
            raise InsufficientDataError(
                f"No unit of the evaluation data is longer than the model window (l_s = {self.config.l_s})."
            )
        errors = np.concatenate([d.errors for d in scored])
        flagged = sum(int(sum(r.end_index - r.start_index + 1 for r in d.anomalies)) for d in scored)
        metrics: dict[str, float] = {
            "prediction_mse": float(np.mean(errors**2)),
            "anomaly_share": flagged / len(errors),
            "units_scored": float(len(scored)),
        }
        failures = _failure_times(data)
        if failures:
            metrics.update(lead_time_metrics(detection, failures, data))
        return metrics

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """The network's state dict as numpy arrays (what ``models reproduce`` hashes)."""
        self._require_trained()
        return {name: t.detach().cpu().numpy() for name, t in self.net.state_dict().items()}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """``weights.pt`` (a state dict) and ``meta.json``: data only, nothing that executes on load."""
        self._require_trained()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), directory / WEIGHTS_FILE)
        meta = {
            "format_version": FORMAT_VERSION,
            "model": "telemanom",
            "target": self.target,
            "features": self.features,
            "scaler": {"mean": self.mean.tolist(), "std": self.std.tolist()},
            "config": dataclasses.asdict(self.config),
            "threshold_stats": self.threshold_stats,
            "fit_notes": self.fit_notes,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(
        cls, directory: Path, *, config: Any = None, target: str | None = None, threads: int = 0
    ) -> TelemanomModel:
        """Rebuild from :meth:`save`; the stored (effective) config wins over ``config``."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelNotTrainedError(f"{directory}: no readable Telemanom model ({exc}).") from None
        stored = dict(meta["config"])
        stored["lstm_units"] = tuple(stored["lstm_units"])
        try:
            effective = TelemanomConfig(**stored)
        except TypeError as exc:
            raise ConfigError(
                f"{directory}: the stored Telemanom settings do not match this version ({exc})."
            ) from None
        model = cls(effective, meta["target"] if target is None else target, threads)
        model.features = list(meta["features"])
        model.mean = np.asarray(meta["scaler"]["mean"], dtype=np.float64)
        model.std = np.asarray(meta["scaler"]["std"], dtype=np.float64)
        model.threshold_stats = dict(meta.get("threshold_stats", {}))
        model.fit_notes = list(meta.get("fit_notes", []))
        model.net = TelemanomNet(
            len(model.features), effective.lstm_units, effective.dropout, effective.n_predictions
        )
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        model.net.load_state_dict(state)
        model.net.eval()
        return model


def lead_time_metrics(
    detection: DetectionResult, failures: dict[Any, float], data: Dataset
) -> dict[str, float]:
    """Alarm timing against the known failure time of each scored unit.

    ``lead_time_median``: failure time minus the start of the first alarm (median over alarmed units);
    ``late_lead_time_median``: the same for the first alarm in the second half of life (ignoring early
    false alarms); ``alarmed_share``: units with any alarm; ``false_alarm_share``: units with an alarm
    starting in the first half of life, when a healthy engine should raise none.
    """
    starts = data.frame.groupby("unit", sort=False)[data.time_col].min()
    leads, late_leads, early, units = [], [], 0, 0
    for unit, found in detection.units.items():
        if unit not in failures or not len(found.errors):
            continue
        units += 1
        life_start, failure = float(starts[unit]), failures[unit]
        halfway = life_start + (failure - life_start) / 2
        alarms = sorted(float(r.start) for r in found.anomalies)
        if alarms:
            leads.append(failure - alarms[0])
            early += alarms[0] <= halfway
            late = [a for a in alarms if a > halfway]
            if late:
                late_leads.append(failure - late[0])
    nan = float("nan")
    return {
        "lead_time_median": float(np.median(leads)) if leads else nan,
        "late_lead_time_median": float(np.median(late_leads)) if late_leads else nan,
        "alarmed_share": len(leads) / units if units else nan,
        "false_alarm_share": early / units if units else nan,
    }


KNOWN_LABELS = ("true_anomaly", "missed_anomaly")
DISMISSED_LABELS = ("false_alarm",)


def _comparable(values: Any, kind_of: np.ndarray) -> np.ndarray:
    """Label bounds in the dtype of the time axis (timestamps arrive as ISO text from the registry)."""
    if np.issubdtype(kind_of.dtype, np.datetime64):
        return pd.to_datetime(values).to_numpy().astype(kind_of.dtype)
    return np.asarray(values, dtype=np.float64)


def label_masks(labels: list[dict[str, Any]], unit: Any, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(known, dismissed) bool masks over ``times`` from the labels of ``unit``: known = inside a
    range labelled true or missed anomaly, dismissed = inside a range labelled false alarm."""
    known = np.zeros(len(times), dtype=bool)
    dismissed = np.zeros(len(times), dtype=bool)
    if not len(times):
        return known, dismissed
    axis = times if np.issubdtype(times.dtype, np.datetime64) else times.astype(np.float64)
    for label in labels:
        if str(label.get("unit")) != str(unit) or label.get("start") is None or label.get("end") is None:
            continue
        target = known if label.get("label") in KNOWN_LABELS else None
        target = dismissed if label.get("label") in DISMISSED_LABELS else target
        if target is None:
            continue
        try:
            start, end = _comparable([label["start"], label["end"]], axis)
        except (TypeError, ValueError):
            continue  # a bound this axis cannot hold (e.g. a timestamp on a cycle axis)
        target |= (axis >= start) & (axis <= end)
    return known, dismissed


def split_windows(
    starts: dict[Any, np.ndarray], share: float, pick: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) window starts, ``share`` of them held out.

    ``random`` is what the authors ran: their windows are shuffled when built, and Keras'
    ``validation_split`` then holds out the last share, i.e. a random share of windows spread over
    the whole series (split at ``int(n * (1 - share))`` as Keras does). ``newest`` holds out the
    end of each unit's series instead (a temporal split; the model never trains on that stretch).
    """
    if pick == "newest":
        train_parts, val_parts = [], []
        for unit_starts in starts.values():
            n_val = int(len(unit_starts) * share)
            train_parts.append(unit_starts[: len(unit_starts) - n_val])
            val_parts.append(unit_starts[len(unit_starts) - n_val :])
        return np.concatenate(train_parts), np.concatenate(val_parts)
    shuffled = rng.permutation(np.concatenate([*starts.values(), np.zeros(0, np.int64)]))
    split_at = min(len(shuffled), max(1, int(len(shuffled) * (1.0 - share))))  # train on >= 1 window
    return np.sort(shuffled[:split_at]), np.sort(shuffled[split_at:])


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """Carry the last value forward over missing values (zero before the first one, in scaled units)."""
    filled = values.copy()
    for column in range(filled.shape[1]):
        col = filled[:, column]
        mask = np.isnan(col)
        if mask.all():
            col[:] = 0.0
            continue
        index = np.where(~mask, np.arange(len(col)), 0)
        np.maximum.accumulate(index, out=index)
        col[:] = col[index]
        col[np.isnan(col)] = 0.0
    return filled


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
