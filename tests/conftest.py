"""Suite-wide fixtures: headless Qt, an isolated TURBOFAN_HOME, paths to the real NASA data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "resources" / "sample"
SHARED_DATA = Path(os.environ.get("TURBOFAN_SHARED_DATA", REPO.parent / "shared" / "data"))
CMAPSS_DIR = SHARED_DATA / "cmapss"
SMAP_MSL_DIR = SHARED_DATA / "smap_msl"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own registry, settings and log folder; the user's are never touched."""
    home = tmp_path_factory.mktemp("turbofan_home")
    monkeypatch.setenv("TURBOFAN_HOME", str(home))
    monkeypatch.setenv("TURBOFAN_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("TURBOFAN_TORCH_THREADS", "1")
    return home


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture
def cmapss_dir() -> Path:
    if not CMAPSS_DIR.is_dir():
        pytest.skip(f"C-MAPSS data not found at {CMAPSS_DIR}")
    return CMAPSS_DIR


@pytest.fixture
def smap_msl_dir() -> Path:
    if not SMAP_MSL_DIR.is_dir():
        pytest.skip(f"SMAP/MSL data not found at {SMAP_MSL_DIR}")
    return SMAP_MSL_DIR
