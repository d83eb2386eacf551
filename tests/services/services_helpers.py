"""Helpers shared by the service tests: tiny model configs, plugin readiness, small FD001 files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from turbofan_desktop.plugins.manager import get_plugin_manager

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "resources" / "sample"
TRAIN_UNITS = 10
TEST_UNITS = 6

# the self-test and the tests train the same tiny models: the "tiny" preset each plugin declares
TINY = {name: spec.preset("tiny") for name, spec in get_plugin_manager().models().items()}


def plugin_ready(module: str) -> bool:
    """A built-in plugin is ready when its model module exists (its spec may land before it)."""
    return importlib.util.find_spec(module) is not None


def require_plugin(name: str) -> None:
    module = f"turbofan_{name}.model"
    if not plugin_ready(f"turbofan_{name}") or not plugin_ready(module):
        pytest.skip(f"the {name} plugin is not ready yet ({module} cannot be imported)")


def first_lines(source: Path, units: int) -> str:
    kept = []
    for line in source.read_text().splitlines():
        fields = line.split()
        if fields and int(fields[0]) <= units:
            kept.append(line)
    return "\n".join(kept) + "\n"


# three flight conditions: (altitude kft, Mach, throttle) and how much they move the sensors
REGIMES = [((0.0, 0.0, 100.0), 1.0), ((20.0, 0.7, 100.0), 0.8), ((42.0, 0.84, 100.0), 0.6)]


def multi_regime_copy(source: Path, target: Path) -> Path:
    """The rows of ``source`` with each cycle flown in one of three regimes (sensors scaled by it)."""
    rng = np.random.default_rng(3)
    lines = []
    for line in source.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        settings, factor = REGIMES[int(rng.integers(len(REGIMES)))]
        sensors = [float(v) * factor for v in fields[5:]]
        lines.append(" ".join([*fields[:2], *(f"{v:g}" for v in settings), *(f"{v:.4f}" for v in sensors)]))
    target.write_text("\n".join(lines) + "\n")
    return target
