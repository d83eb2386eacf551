"""The fleet plan's arithmetic on hand-made predictive distributions (no model, no registry)."""

from __future__ import annotations

import numpy as np
import pytest

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.services.fleet import (
    MONITOR,
    PLAN,
    SERVICE_NOW,
    expected_life_beyond,
    failure_probability,
    plan,
    realised_cost,
)

LEVELS = (0.1, 0.5, 0.9)


def sample(quantiles: tuple[float, float, float], n: int = 400_000, seed: int = 0) -> np.ndarray:
    """Draws of T from the piecewise-linear CDF with the documented tails, floored at 0."""
    q10, q50, q90 = quantiles
    lower_slope = (q50 - q10) / 0.4
    upper_slope = (q90 - q50) / 0.4
    x = [q10 - 0.1 * lower_slope, q10, q50, q90, q90 + 0.1 * upper_slope]
    u = np.random.default_rng(seed).uniform(size=n)
    return np.maximum(np.interp(u, [0.0, 0.1, 0.5, 0.9, 1.0], x), 0.0)


def test_cdf_is_linear_between_the_quantiles_and_continues_each_tail_with_its_segment_density():
    q = np.array([[10.0, 20.0, 30.0]])
    at = {10: 0.1, 15: 0.3, 20: 0.5, 25: 0.7, 30: 0.9}
    for h, expected in at.items():
        assert failure_probability(LEVELS, q, h)[0] == pytest.approx(expected)
    # tails: 25 cycles per unit of probability on both sides -> from 7.5 to 32.5 cycles
    assert failure_probability(LEVELS, q, 8.75)[0] == pytest.approx(0.05)
    assert failure_probability(LEVELS, q, 7.0)[0] == 0.0
    assert failure_probability(LEVELS, q, 31.25)[0] == pytest.approx(0.95)
    assert failure_probability(LEVELS, q, 40.0)[0] == 1.0
    assert failure_probability(LEVELS, q, -1.0)[0] == 0.0


def test_mass_the_lower_tail_puts_below_zero_is_a_failure_now():
    q = np.array([[1.0, 10.0, 20.0]])  # the tail starts at 1 - 0.1 * 22.5 = -1.25 cycles
    assert failure_probability(LEVELS, q, 0.0)[0] == pytest.approx(0.1 * 1.25 / 2.25)


def test_failure_probability_is_vectorised_over_engines_and_horizons():
    q = np.array([[10.0, 20.0, 30.0], [100.0, 150.0, 200.0], [5.0, 5.0, 5.0]])
    one_h = failure_probability(LEVELS, q, 20.0)
    per_engine = failure_probability(LEVELS, q, np.array([20.0, 20.0, 20.0]))
    grid = failure_probability(LEVELS, q, np.tile([0.0, 20.0, 200.0], (3, 1)))
    assert one_h == pytest.approx(per_engine)
    assert grid[:, 1] == pytest.approx(one_h)
    assert one_h[1] == 0.0 and grid[1, 2] == pytest.approx(0.9)
    assert grid[2, 0] == 0.0 and grid[2, 1] == 1.0  # a point forecast at 5 cycles


def test_crossing_quantiles_are_made_monotone():
    q = np.array([[30.0, 20.0, 40.0]])
    f = failure_probability(LEVELS, q, np.tile(np.arange(0.0, 60.0, 1.0), (1, 1)))
    assert np.all(np.diff(f[0]) >= 0)


@pytest.mark.parametrize("quantiles", [(10.0, 20.0, 30.0), (1.0, 10.0, 20.0), (40.0, 90.0, 200.0)])
def test_expected_life_beyond_matches_sampling(quantiles):
    draws = sample(quantiles)
    cycles = np.array([[0.0, 5.0, 15.0, 25.0, 60.0, 400.0]])
    exact = expected_life_beyond(LEVELS, np.array([quantiles]), cycles)[0]
    sampled = [np.maximum(draws - s, 0.0).mean() for s in cycles[0]]
    assert exact == pytest.approx(sampled, rel=0.01, abs=0.05)


def test_the_plan_services_an_engine_about_to_fail_plans_a_sure_one_and_monitors_a_healthy_one():
    q = np.array(
        [
            [0.5, 1.0, 2.0],  # may fail any cycle: service now
            [4.0, 5.0, 6.0],  # fails at about 5 cycles, nearly sure: plan just before
            [100.0, 150.0, 200.0],  # nothing within 30 cycles: monitor
        ]
    )
    result = plan(LEVELS, q, horizon=30, cost_failure=500, cost_visit=50)
    assert list(result.action) == [SERVICE_NOW, PLAN, MONITOR]
    assert result.service_at[0] == 0 and result.service_at[1] == 3 and np.isnan(result.service_at[2])
    assert result.p_fail[2] == 0.0 and result.p_fail[1] == 1.0
    assert result.counts() == {SERVICE_NOW: 1, PLAN: 1, MONITOR: 1}
    assert list(result.risk_order()) == [0, 1, 2]


def test_the_chosen_action_minimises_the_sampled_expected_cost():
    horizon, c_f, c_v = 30, 400.0, 60.0
    engines = [
        (0.5, 3.0, 9.0),
        (8.0, 20.0, 45.0),
        (20.0, 60.0, 100.0),
        (25.0, 45.0, 80.0),
        (90.0, 125.0, 180.0),
    ]
    result = plan(LEVELS, np.array(engines), horizon=horizon, cost_failure=c_f, cost_visit=c_v)
    for i, quantiles in enumerate(engines):
        t = sample(quantiles, n=200_000, seed=i)
        options = {0: c_v + t.mean()}  # a visit now finds the engine running
        for s in range(1, horizon + 1):
            options[s] = np.where(t < s, c_f, c_v + t - s).mean()
        monitor = np.where(t <= horizon, c_f, c_v).mean()
        best = min(min(options.values()), monitor)
        assert result.expected_cost[i] == pytest.approx(best, rel=0.02, abs=0.5)
        assert result.cost_monitor[i] == pytest.approx(monitor, rel=0.02, abs=0.5)
        assert result.cost_now[i] == pytest.approx(options[0], rel=0.01)


def test_dearer_failures_make_the_plan_more_cautious_and_monitoring_never_costs_more_than_a_plan_at_h():
    rng = np.random.default_rng(3)
    median = rng.uniform(5, 150, size=300)
    q = np.stack([median * 0.6, median, median * 1.5 + 5], axis=1)
    cheap = plan(LEVELS, q, horizon=30, cost_failure=100, cost_visit=50)
    dear = plan(LEVELS, q, horizon=30, cost_failure=5000, cost_visit=50)
    assert (dear.action != MONITOR).sum() > (cheap.action != MONITOR).sum()
    assert np.all(dear.expected_cost >= cheap.expected_cost - 1e-9)
    plan_at_h = (
        100 * cheap.p_fail
        + 50 * (1 - cheap.p_fail)
        + expected_life_beyond(LEVELS, q, np.full((300, 1), 30.0))[:, 0]
    )
    assert np.all(cheap.cost_monitor <= plan_at_h + 1e-9)
    assert np.all(cheap.service_at[cheap.action == PLAN] < 30)
    # and the plan is the same engine by engine as one engine at a time
    single = [plan(LEVELS, q[i : i + 1], horizon=30, cost_failure=5000, cost_visit=50) for i in range(20)]
    assert [s.action[0] for s in single] == list(dear.action[:20])


def test_realised_cost_counts_visits_wasted_life_and_failures():
    costs = realised_cost(
        np.array([0.0, 5.0, 5.0, np.nan, np.nan, 40.0]),
        np.array([12.0, 9.0, 3.0, 20.0, 80.0, 80.0]),
        horizon=30,
        cost_failure=500,
        cost_visit=50,
    )
    # now: 50 + 12 wasted; plan at 5 with 9 left: 50 + 4; failed at 3 before the visit at 5;
    # monitored through a failure at 20; monitored, serviced after the window; a visit beyond H = monitored
    assert list(costs) == [62.0, 54.0, 500.0, 500.0, 50.0, 50.0]


@pytest.mark.parametrize(
    ("horizon", "c_f", "c_v", "words"),
    [
        (0, 500, 50, "at least 1"),
        (2.5, 500, 50, "whole number"),
        ("soon", 500, 50, "whole number"),
        (30, 50, 500, "must exceed"),
        (30, -1, 50, "not negative"),
        (30, float("nan"), 50, "finite"),
    ],
)
def test_bad_plan_settings_are_one_sentence(horizon, c_f, c_v, words):
    with pytest.raises(ConfigError, match=words):
        plan(LEVELS, np.array([[10.0, 20.0, 30.0]]), horizon=horizon, cost_failure=c_f, cost_visit=c_v)
