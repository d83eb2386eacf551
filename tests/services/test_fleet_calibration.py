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


def test_a_linear_tail_puts_the_lowest_levels_mass_evenly_over_its_depth():
    from turbofan_desktop.services.fleet import failure_probability
    from turbofan_desktop.services.fleet_calibration import tail_knots

    values = np.array([[60.0, 100.0, 140.0]])  # spread u = 40 cycles
    levels, knots = tail_knots(LEVELS, values, "linear", 2.0)  # 80 cycles deep: down to -20
    assert list(levels) == [0.0, 0.1, 0.5, 0.9] and knots[0, 0] == -20.0
    assert np.array_equal(knots[:, 1:], values)  # the model's own levels do not move
    p = failure_probability(levels, knots, np.array([[60.0, 40.0, 20.0, 0.0]]))
    assert p[0] == pytest.approx([0.1, 0.1 * 60 / 80, 0.1 * 40 / 80, 0.1 * 20 / 80])  # mass below 0: now
    # the model's own tail ends a quarter of the spread below q_1 (10 cycles): nothing at 40
    assert failure_probability(LEVELS, values, np.array([[40.0]]))[0, 0] == 0.0
    same_levels, same = tail_knots(LEVELS, values, "model", 0.0)
    assert np.array_equal(same_levels, LEVELS) and np.array_equal(same, values)


def test_an_exponential_tail_is_monotone_and_its_mass_matches_the_level():
    from turbofan_desktop.services.fleet import failure_probability
    from turbofan_desktop.services.fleet_calibration import tail_knots

    values = np.array([[60.0, 100.0, 140.0]])
    levels, knots = tail_knots(LEVELS, values, "exponential", 0.5)  # scale 20 cycles
    assert np.all(np.diff(levels) > 0) and np.all(np.diff(knots[0]) >= 0)
    depths = np.array([[0.0, 10.0, 20.0, 40.0]])
    p = failure_probability(levels, knots, 60.0 - depths)
    assert p[0, 0] == pytest.approx(0.1)
    assert p[0, 2] == pytest.approx(0.1 * np.exp(-1.0), rel=0.02)  # one scale below q_1
    assert np.all(np.diff(p[0]) < 0)


def test_the_tail_shape_is_chosen_on_the_cuts_where_the_model_tail_is_too_thin():
    from turbofan_desktop.services.fleet import failure_probability
    from turbofan_desktop.services.fleet_calibration import fit_tail_shape, tail_knots

    rng = np.random.default_rng(5)
    n = 3000
    median = rng.uniform(30, 120, n)
    spread = 0.3 * median
    values = np.column_stack([median - spread, median, median + spread])
    # the truth: 10 % below q_1, spread over an exponential tail of one spread, else above q_1
    below = rng.random(n) < 0.1
    truth = np.where(
        below,
        values[:, 0] - rng.exponential(1.0, n) * spread,
        rng.uniform(values[:, 0], values[:, 2] + 10),
    )
    shape, size, before, after = fit_tail_shape(LEVELS, values, truth)
    assert shape != "model" and after < before
    # engines whose q_1 sits 5-30 cycles above H = 30: the chosen tail's P is near the observed share
    near = (values[:, 0] > 35) & (values[:, 0] < 60)
    observed = (truth[near] <= 30).mean()
    levels, knots = tail_knots(LEVELS, values, shape, size)
    chosen = failure_probability(levels, knots, 30.0)[near].mean()
    own = failure_probability(LEVELS, values, 30.0)[near].mean()
    assert abs(chosen - observed) < 0.5 * abs(own - observed)


def test_a_calibration_from_cuts_scores_only_the_known_lives_and_needs_twenty_of_them():
    from turbofan_desktop.services.fleet_calibration import calibration_from_cuts, fit_tail_shape

    rng = np.random.default_rng(7)
    median = rng.uniform(20, 120, 60)
    truth = median * rng.uniform(0.5, 1.3, 60)
    values = np.column_stack([median - 5, median, median + 20])
    unknown = truth.copy()
    unknown[::2] = np.nan  # 30 cuts scored
    calibration = calibration_from_cuts(3, LEVELS, values, unknown, units=6, engines="test")
    scored = np.isfinite(unknown)
    assert calibration.calibrated and calibration.cuts == 30 and calibration.units == 6
    assert (calibration.levels, calibration.scales, calibration.shares) == fit_tail(
        LEVELS, values[scored], truth[scored]
    )
    after = calibration.apply(LEVELS, values[scored])
    shape, size, _, _ = fit_tail_shape(LEVELS, after, truth[scored])
    assert (calibration.tail_shape, calibration.tail_size) == (shape, size)
    assert calibration.below_after == pytest.approx((truth[scored] < after[:, 0]).mean())
    few = calibration_from_cuts(3, LEVELS, values[:19], truth[:19], units=2, engines="val")
    assert not few.calibrated and "too few scored cuts (19)" in few.note
    assert np.array_equal(few.apply(LEVELS, values), values)
