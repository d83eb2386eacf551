"""Small models for the executor tests, importable by spawned workers (this folder is on the
``sys.path`` a spawned worker inherits): they need no torch, so the tests time the executor itself.

``behaviour`` picks what ``fit`` does: "sleep" for ``seconds`` in 50 ms steps and check
``should_stop`` ("stubborn": never check it), "segfault" (the worker dies by SIGSEGV), "mean"
(learn the target's mean at once).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from turbofan_desktop.errors import Cancelled
from turbofan_desktop.plugins.contract import FitResult, ModelSpec, ProgressEvent


@dataclass
class StubConfig:
    behaviour: str = "mean"
    seconds: float = 0.0


class StubModel:
    def __init__(self, config: StubConfig, target: str) -> None:
        self.config = config
        self.target = target
        self.mean = 0.0

    def fit(self, train, val, progress, should_stop) -> FitResult:
        behaviour = self.config.behaviour
        if behaviour == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        end = time.monotonic() + float(self.config.seconds)
        epoch = 0
        while time.monotonic() < end:
            epoch += 1
            if behaviour != "stubborn" and should_stop():
                raise Cancelled()
            progress(ProgressEvent(stage="fit", fraction=0.5, epoch=epoch, train_loss=1.0 / epoch))
            time.sleep(0.05)
        self.mean = float(train.frame[self.target].mean())
        progress(ProgressEvent(stage="fit", fraction=1.0, epoch=epoch + 1))
        return FitResult(history=[{"epoch": 1, "train_loss": 0.0}], epochs_run=epoch + 1, best_epoch=1)

    def evaluate(self, data, progress, should_stop) -> dict[str, float]:
        error = (data.frame[self.target] - self.mean).abs().mean()
        return {"mae": float(error)}

    def save(self, directory: Path) -> None:
        (Path(directory) / "stub.json").write_text(json.dumps({"mean": self.mean}), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, *, config: StubConfig, target: str) -> StubModel:
        model = cls(config, target)
        model.mean = json.loads((Path(directory) / "stub.json").read_text(encoding="utf-8"))["mean"]
        return model


STUB_SPEC = ModelSpec(
    name="stub",
    tasks=("anomaly",),
    config_class=StubConfig,
    factory="executor_models:StubModel",
    description="a model for executor tests",
    plugin="tests",
)
