"""The numpy Kolmogorov tail (the drift KS p-value) against scipy's ``kstwo``, which the app no longer ships."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from turbofan_desktop.data.kolmogorov import kolmogorov_sf, smirnov_sf

# Every method region of kolmogorov_sf: small n (matrix or one-sided), the matrix region of a large n,
# the Pelz-Good region (n d^1.5 > 1.4 and n d^2 < 2.2), the one-sided far tail, and n past 100000.
SIZES = (1, 2, 7, 40, 140, 141, 1429, 20_000, 150_000)
SCALED = (0.05, 0.3, 0.6, 0.9, 1.1, 1.36, 1.6, 2.0, 3.0, 5.0)  # sqrt(n) * d


def _points():
    for n in SIZES:
        for z in SCALED:
            yield n, z / math.sqrt(n)
        for d in (0.4 / n, 0.75 / n, 1.0 / n, 1.0 - 1.5 / n, 0.5, 0.8, 0.999):
            if 0.0 < d < 1.0:
                yield n, d


def test_agrees_with_scipy_kstwo_everywhere():
    """Absolute agreement within 1e-9 (p-values are compared with thresholds like 0.05)."""
    worst = 0.0
    for n, d in _points():
        ours, reference = kolmogorov_sf(d, n), float(stats.kstwo.sf(d, n))
        assert 0.0 <= ours <= 1.0
        worst = max(worst, abs(ours - reference))
        assert ours == pytest.approx(reference, abs=1e-9), (n, d)
    assert worst < 1e-9


def test_far_tail_keeps_relative_accuracy():
    for n, d in ((1429, 0.08), (20_000, 0.03), (140, 0.4)):
        reference = float(stats.kstwo.sf(d, n))
        assert 0.0 < reference < 1e-6
        assert kolmogorov_sf(d, n) == pytest.approx(reference, rel=1e-6)


def test_one_sided_tail_matches_scipy_smirnov():
    for n, d in ((1, 0.3), (10, 0.25), (500, 0.05), (500, 0.5), (20_000, 0.01)):
        assert smirnov_sf(d, n) == pytest.approx(float(stats.ksone.sf(d, n)), rel=1e-9, abs=1e-14)


def test_edges_and_monotonicity():
    assert kolmogorov_sf(0.0, 10) == 1.0 and kolmogorov_sf(-1.0, 10) == 1.0
    assert kolmogorov_sf(1.0, 10) == 0.0 and kolmogorov_sf(0.04, 10) == 1.0  # d <= 1/(2n)
    assert math.isnan(kolmogorov_sf(float("nan"), 10))
    with pytest.raises(ValueError, match="n >= 1"):
        kolmogorov_sf(0.1, 0)
    tail = [kolmogorov_sf(d, 1429) for d in np.linspace(0.001, 0.2, 200)]
    assert np.all(np.diff(tail) <= 1e-12)
