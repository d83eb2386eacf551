"""The cluster deployment docs stay in step with the project: the worker image installs the torch
range and the extra that pyproject declares, and docs/cluster.md names settings that exist."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from turbofan_desktop.config import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docs" / "worker.Dockerfile"
GUIDE = REPO / "docs" / "cluster.md"


def _project() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]


def _build_arg(name: str) -> str:
    match = re.search(rf'^ARG {name}="?([^"\n]*)"?$', DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"docs/worker.Dockerfile has no ARG {name}"
    return match.group(1)


def test_the_worker_image_installs_the_torch_range_pyproject_tests():
    torch = [d for d in _project()["dependencies"] if d.startswith("torch")]
    assert torch == [_build_arg("TORCH_SPEC")]


def test_the_worker_image_installs_the_cluster_extra_and_checks_its_plugins():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "[cluster]" in text and "get_plugin_manager().models()" in text
    extras = _project()["optional-dependencies"]
    dask = [d for d in extras["cluster"] if d.startswith("dask")]
    assert dask and set(dask) <= set(extras["test"]), "the test extra runs the Dask tests with the same Dask"


def test_the_guide_names_only_settings_that_exist():
    block = re.search(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "docs/cluster.md shows its settings in a toml block"
    named = set(tomllib.loads(block.group(1)))
    assert named and named <= {f.name for f in fields(Settings)}
