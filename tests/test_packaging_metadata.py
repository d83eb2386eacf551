"""The package list in pyproject.toml names every package in the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _declared() -> tuple[set[str], dict[str, str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    return set(config["packages"]), config.get("package-dir", {})


def test_every_source_package_is_declared():
    declared, package_dir = _declared()
    found = set()
    for init in (REPO / "turbofan_desktop").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(REPO).parts))
    for name, folder in package_dir.items():
        for init in (REPO / folder).rglob("__init__.py"):
            found.add(".".join([name, *init.parent.relative_to(REPO / folder).parts]))
    assert found - declared == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_builtin_plugins_are_entry_points():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = config["project"]["entry-points"]["turbofan_desktop.plugins"]
    assert set(entry_points.values()) == {"turbofan_telemanom", "turbofan_transformer"}
