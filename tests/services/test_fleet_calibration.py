"""The fleet's lower-tail calibration: the conformal order statistic, the cuts, the fitted bounds."""

from __future__ import annotations

import numpy as np
import pytest

from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.fleet_calibration import (
    TailCalibration,
    conformal_quantile,
    cut_snapshots,
    fit_tail,
)

LEVELS = np.array([0.1, 0.5, 0.9])


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    scores = np.arange(1.0, 100.0)  # 99 scores
    assert conformal_quantile(scores, 0.1) == 90.0  # ceil(100 * 0.9) = 90th smallest
    assert conformal_quantile(scores[:5], 0.1) == 5.0  # too few for the level: the largest
    shuffled = np.random.default_rng(1).permutation(scores)
    assert conformal_quantile(shuffled, 0.1) == 90.0


def test_cuts_keep_the_history_and_know_the_life_they_lost(tmp_path, fd001_small):
    with Workspace.open(tmp_path) as ws:
        data = load_dataset(ws, fd001_small["train"])
    cuts = cut_snapshots(data, cuts_per_unit=4, min_history=30, seed=3)
    assert len(cuts.units) == 4 * len(data.units)
    lives = data.unit_lengths()
    for i, unit in enumerate(cuts.units):
        source = data.units[i // 4]
        rows = cuts.unit_frame(unit)
        kept = len(rows)
        assert 30 <= kept < lives[source]
        assert cuts.rul[unit] == lives[source] - kept
        # the cut is the start of the source engine's own history
        original = data.unit_frame(source).iloc[:kept]
        assert np.allclose(rows["s_2"].to_numpy(), original["s_2"].to_numpy())
    again = cut_snapshots(data, cuts_per_unit=4, min_history=30, seed=3)
    assert list(again.rul) == list(cuts.rul)  # seeded


def test_a_collapsed_lower_spread_is_widened_to_a_share_of_the_median():
    rng = np.random.default_rng(0)
    median = rng.uniform(10, 120, 400)
    truth = median * rng.uniform(0.6, 1.3, 400)  # errors grow with the remaining life
    values = np.column_stack([median, median, median + 10])  # the 10 % quantile collapsed onto the median
    levels, scales, shares = fit_tail(LEVELS, values, truth)
    assert levels == (0.1,) and scales[0] >= 1.0 and 0.0 < shares[0] < 0.4
    calibration = TailCalibration(1, levels=levels, scales=scales, shares=shares, cuts=400)
    after = calibration.apply(LEVELS, values)
    assert (truth < values[:, 0]).mean() > 0.25  # the model's tail: far too many below it
    assert (truth < after[:, 0]).mean() <= 0.1 + 1e-9  # calibrated on these cuts: at most the level
    assert np.array_equal(after[:, 1:], values[:, 1:])  # median and upper untouched
    assert np.all(after[:, 0] <= values[:, 0])  # only ever wider


def test_an_honest_tail_is_left_alone_and_no_calibration_changes_nothing():
    rng = np.random.default_rng(2)
    median = rng.uniform(20, 100, 500)
    truth = median + rng.normal(0, 5, 500)
    lower = median - 40  # far wider than the errors
    values = np.column_stack([lower, median, median + 40])
    levels, scales, shares = fit_tail(LEVELS, values, truth)
    assert scales == (1.0,)  # never narrowed
    after = TailCalibration(1, levels=levels, scales=scales, shares=shares, cuts=500).apply(LEVELS, values)
    assert np.allclose(after, values)
    untouched = TailCalibration(1, note="no held-out training engines: gone")
    assert np.array_equal(untouched.apply(LEVELS, values), values)
    assert "as the model gives it" in untouched.summary() and "gone" in untouched.summary()
    with pytest.raises(AssertionError):
        assert untouched.calibrated
