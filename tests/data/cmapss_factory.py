"""Tiny hand-made C-MAPSS text for the data-layer tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def cmapss_row(unit: int, cycle: int, offset: float = 0.0) -> list[str]:
    """One plausible 26-column C-MAPSS row as text tokens."""
    settings = ["-0.0007", "-0.0004", "100.0"]
    sensors = [518.67, 641.82 + offset, 1589.70, 1400.60, 14.62, 21.61, 554.36, 2388.06, 9046.19, 1.30,
               47.47, 521.66, 2388.02, 8138.62, 8.4195, 0.03, 392, 2388, 100.00, 39.06, 23.4190]  # fmt: skip
    return [str(unit), str(cycle), *settings, *[f"{v:.4f}" for v in sensors]]


def cmapss_lines(units: int = 2, cycles: int = 5) -> list[str]:
    rng = np.random.default_rng(0)
    return [
        " ".join(cmapss_row(u, c, float(rng.normal(0, 0.5)))) + "  "
        for u in range(1, units + 1)
        for c in range(1, cycles + 1)
    ]


REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "resources" / "sample"
CMAPSS_DIR = Path(os.environ.get("TURBOFAN_SHARED_DATA", REPO.parent / "shared" / "data")) / "cmapss"
