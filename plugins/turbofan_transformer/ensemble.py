"""An ensemble of Transformer models: what the plugin builds, trains, saves and loads.

One Transformer's RUL error swings with its seed: the seed picks the held-out validation units, the
initial weights and the epoch early stopping keeps. Members trained with different seeds (and, when no
validation units are given, on different unit splits) and averaged cancel much of that. Each member is a whole
:class:`~turbofan_transformer.model.TransformerModel` with its own scaler and its own conformal
calibration; the ensemble averages the members' calibrated lower, median and upper values (RUL and
forecasts alike), so every bound stays a calibrated quantile estimate.

Member ``i`` uses seed ``seed + 1000 * i``; with ``ensemble = 1`` the single member is exactly the
model that seed gives, saved in the single model's layout. With several members, all of them train at
once, each in its own thread with one torch thread (the operating system shares the cores among them):
on two cores two members train in about 1.6 times the time of one, where one after the other (two
torch threads each) takes 2.0 times as long, and three members do not leave a core idle for the third
as a pool of two would. Each member draws its weights and dropout from its own generator (see
:func:`~turbofan_transformer.model._seeded_network`), so a seed gives the same ensemble however the
threads are scheduled. When the caller passes validation units, every member uses them (and differs from
the others only by its weights, dropout and window order).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import Cancelled, ModelNotTrainedError
from turbofan_desktop.plugins.contract import (
    ALL_TARGETS,
    FitResult,
    ProgressCallback,
    ProgressEvent,
    ShouldStop,
    never_stop,
    no_progress,
)
from turbofan_transformer.config import TransformerConfig
from turbofan_transformer.model import TransformerModel, _Tasks, _torch_runtime

ENSEMBLE_FILE = "ensemble.json"
SEED_STRIDE = 1000  # member i trains with seed + SEED_STRIDE * i


def member_seed(seed: int, index: int) -> int:
    return seed + SEED_STRIDE * index


class TransformerEnsemble(_Tasks):
    """``config.ensemble`` Transformer members averaged; fulfils the plugin Model protocol."""

    def __init__(self, config: TransformerConfig | None = None, target: str = ALL_TARGETS, threads: int = 0):
        self.config = config if config is not None else TransformerConfig()
        self.config.validate()
        self.target = target
        self.threads = int(threads)  # torch threads of a member working alone; 0 = every core
        self.members = [
            TransformerModel(
                dataclasses.replace(self.config, seed=member_seed(self.config.seed, i), ensemble=1),
                target,
                threads,
            )
            for i in range(self.config.ensemble)
        ]

    # -- what the members share ----------------------------------------------------------------
    @property
    def forecast_sensors(self) -> list[str]:
        return self.members[0].forecast_sensors

    @property
    def input_sensors(self) -> list[str]:
        return self.members[0].input_sensors

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every member's epochs, each row tagged with its member."""
        return [{**row, "member": i} for i, m in enumerate(self.members) for row in m.history]

    @property
    def val_units(self) -> list[Any]:
        """Units no member trained on (empty unless the members' held-out units overlap)."""
        common = set(self.members[0].val_units)
        for member in self.members[1:]:
            common &= set(member.val_units)
        return [u for u in self.members[0].val_units if u in common]

    def _require_trained(self) -> None:
        if any(m.net is None or m.scaler is None for m in self.members):
            raise ModelNotTrainedError("The Transformer model has not been trained or loaded yet.")

    def _check_compatible(self, data: Dataset) -> None:
        self.members[0]._check_compatible(data)

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        train: Dataset,
        val: Dataset | None = None,
        *,
        progress: ProgressCallback = no_progress,
        should_stop: ShouldStop = never_stop,
    ) -> FitResult:
        """Train every member; progress and ``should_stop`` are only ever called on this thread."""
        if len(self.members) == 1:
            return self.members[0].fit(train, val, progress=progress, should_stop=should_stop)
        results = self._fit_side_by_side(train, val, progress, should_stop)
        notes = [f"ensemble of {len(self.members)} members (seeds {self._seeds()}), predictions averaged"]
        for i, result in enumerate(results):
            notes += [f"member {i + 1}: {note}" for note in result.notes]
        return FitResult(
            history=self.history,
            epochs_run=sum(r.epochs_run for r in results),
            best_epoch=results[0].best_epoch,
            stopped_early=all(r.stopped_early for r in results),
            seed=self.config.seed,
            notes=notes,
        )

    def _fit_side_by_side(
        self, train: Dataset, val: Dataset | None, progress: ProgressCallback, should_stop: ShouldStop
    ) -> list[FitResult]:
        """Every member in its own thread with one torch thread; their events are relayed from a queue."""
        count = len(self.members)
        events: queue.Queue[tuple[int, ProgressEvent]] = queue.Queue()
        stop = threading.Event()
        fractions = [0.0] * count

        def relay(timeout: float) -> None:
            try:
                index, event = events.get(timeout=timeout)
            except queue.Empty:
                return
            fractions[index] = event.fraction
            progress(_ensemble_event(index, count, event, sum(fractions) / count))

        def reporter(index: int) -> ProgressCallback:
            return lambda event: events.put((index, event))

        with _torch_runtime(self.config.seed, threads=1), ThreadPoolExecutor(max_workers=count) as pool:
            futures = [
                pool.submit(
                    member._fit,
                    train,
                    val,
                    progress=reporter(i),
                    should_stop=stop.is_set,
                    threads=1,
                )
                for i, member in enumerate(self.members)
            ]
            while not all(f.done() for f in futures):
                if should_stop() or any(f.done() and f.exception() for f in futures):
                    stop.set()  # a cancel, or one member failed: the others stop within a batch
                relay(timeout=0.1)
                for i, future in enumerate(futures):
                    if future.done():
                        fractions[i] = 1.0  # early stopping ends a member before its last epoch
            while not events.empty():
                relay(timeout=0.0)
        errors = [f.exception() for f in futures]
        failures = [e for e in errors if e is not None and not isinstance(e, Cancelled)]
        if failures:
            raise failures[0]  # the member that failed, not the ones stopped because of it
        if any(errors):
            raise Cancelled("Training was cancelled.")
        return [f.result() for f in futures]

    def _seeds(self) -> str:
        return ", ".join(str(m.config.seed) for m in self.members)

    # -- the primitives the tasks are built from: the members' averages ---------------------------
    def _rul_at_last_rows(self, data: Dataset) -> tuple[list[Any], np.ndarray]:
        parts = [m._rul_at_last_rows(data) for m in self.members]
        return parts[0][0], np.mean([rul for _, rul in parts], axis=0)

    def _rul_at_every_row(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        parts = [m._rul_at_every_row(data) for m in self.members]
        return np.mean([rul for rul, _ in parts], axis=0), parts[0][1]

    def _forecast_at_last_rows(self, data: Dataset, horizon: int) -> dict[str, np.ndarray]:
        parts = [m._forecast_at_last_rows(data, horizon) for m in self.members]
        return {name: np.mean([p[name] for p in parts], axis=0) for name in parts[0]}

    def _forecast_at_origins(self, data: Dataset) -> dict[str, dict[str, np.ndarray]]:
        parts = [m._forecast_at_origins(data) for m in self.members]
        if not parts[0]:
            return {}
        averaged = ("lower", "median", "upper")
        return {
            name: {
                key: (np.mean([p[name][key] for p in parts], axis=0) if key in averaged else value)
                for key, value in first.items()
            }
            for name, first in parts[0].items()
        }

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Every member's weights; a single member's names as the single model has them."""
        if len(self.members) == 1:
            return self.members[0].weight_arrays()
        return {
            f"member-{i}/{name}": array
            for i, member in enumerate(self.members)
            for name, array in member.weight_arrays().items()
        }

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """One member: the single model's files. Several: ensemble.json and member-<i>/ folders."""
        self._require_trained()
        directory = Path(directory)
        if len(self.members) == 1:
            self.members[0].save(directory)
            return
        directory.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save(directory / f"member-{i}")
        meta = {
            "model": "transformer-ensemble",
            "target": self.target,
            "members": len(self.members),
            "member_seeds": [m.config.seed for m in self.members],
            "combination": "mean of the members' calibrated lower, median and upper values",
        }
        (directory / ENSEMBLE_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        config: TransformerConfig | None = None,
        target: str = ALL_TARGETS,
        threads: int = 0,
    ):
        """Rebuild from :meth:`save` output, or from a single model saved before ensembles existed."""
        directory = Path(directory)
        meta_file = directory / ENSEMBLE_FILE
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            members = [
                TransformerModel.load(directory / f"member-{i}", target=target, threads=threads)
                for i in range(int(meta["members"]))
            ]
        else:
            members = [TransformerModel.load(directory, config=config, target=target, threads=threads)]
        for member in members:  # a model saved before ensembles existed has no ensemble setting
            member.config = dataclasses.replace(member.config, ensemble=1)
        ensemble = cls.__new__(cls)
        ensemble.config = dataclasses.replace(members[0].config, ensemble=len(members))
        ensemble.target = members[0].target
        ensemble.threads = int(threads)
        ensemble.members = members
        return ensemble


def _ensemble_event(index: int, count: int, event: ProgressEvent, fraction: float) -> ProgressEvent:
    """A member's event as the ensemble's: overall fraction; the loss curve is the first member's."""
    first = index == 0
    return dataclasses.replace(
        event,
        fraction=fraction,
        epoch=event.epoch if first else None,
        epochs=event.epochs if first else None,
        train_loss=event.train_loss if first else None,
        val_loss=event.val_loss if first else None,
        message=f"member {index + 1}/{count}: {event.message}" if event.message else "",
    )
