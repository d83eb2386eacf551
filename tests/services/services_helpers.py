"""Helpers shared by the service tests: tiny model configs, plugin readiness, small FD001 files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
