"""Data drift: training statistics, PSI, sketch-based KS, regime- and age-aware comparison."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cmapss_factory import CMAPSS_DIR, SAMPLE_DIR
from scipy import stats as scipy_stats

from turbofan_desktop.data import Dataset, detect_regimes, read_dataset
from turbofan_desktop.data.drift import (
    STATS_FORMAT,
    compare,
    ks_from_sketch,
    population_stability_index,
    sensor_statistics,
    training_statistics,
)
from turbofan_desktop.errors import IncompatibleDataError


@pytest.fixture(scope="module")
def fd001_train():
    return read_dataset(SAMPLE_DIR / "train_FD001.txt")


@pytest.fixture(scope="module")
def fd001_test():
    return read_dataset(SAMPLE_DIR / "test_FD001.txt")


@pytest.fixture(scope="module")
def fd002_train():
    if not (CMAPSS_DIR / "train_FD002.txt").is_file():
        pytest.skip("train_FD002.txt not available")
    return read_dataset(CMAPSS_DIR / "train_FD002.txt")


@pytest.fixture(scope="module")
def fd001_stats(fd001_train):
    # through JSON, as the registry stores them
    return json.loads(json.dumps(training_statistics(fd001_train), allow_nan=False))


def _shifted(ds: Dataset, sensor: str, delta: float) -> Dataset:
    frame = ds.frame.copy()
    frame[sensor] = frame[sensor] + delta
    return ds.with_frame(frame, {"step": "test-shift", "sensor": sensor})


def test_statistics_are_compact_json(fd001_train, fd001_stats):
    assert fd001_stats["format"] == STATS_FORMAT
    assert fd001_stats["rows"] == fd001_train.n_rows
    assert fd001_stats["regimes"] is None  # FD001 has one flight condition
    assert fd001_stats["age"] is not None  # a run-to-failure fleet: age strata
    s11 = fd001_stats["sensors"]["s_11"]
    assert s11["count"] == fd001_train.n_rows
    assert s11["mean"] == pytest.approx(fd001_train.frame["s_11"].mean())
    assert 10 < len(s11["values"]) <= 101
    assert s11["cdf"][-1] == 1.0 and np.all(np.diff(s11["cdf"]) > 0)
    assert len(fd001_stats["sensors"]["s_1"]["values"]) == 1  # a constant sensor is one point
    assert len(json.dumps(fd001_stats)) < 150_000


def test_identical_data_do_not_drift(fd001_train, fd001_stats):
    report = compare(fd001_stats, fd001_train)
    assert report.drifted == []
    for result in report.sensors.values():
        assert result.psi == pytest.approx(0.0, abs=1e-9)
        assert result.ks_pvalue == pytest.approx(1.0)


def test_test_units_of_the_same_fleet_do_not_drift(fd001_stats, fd001_test):
    """Test units stop before failure; compared age for age they look like the training fleet."""
    report = compare(fd001_stats, fd001_test)
    assert report.age_matched
    assert report.drifted == []
    assert max(r.psi for r in report.sensors.values()) < 0.1


@pytest.mark.parametrize("sensor", ["s_11", "s_2", "s_14"])
def test_three_std_shift_of_one_sensor_flags_only_that_sensor(fd001_train, fd001_test, fd001_stats, sensor):
    shifted = _shifted(fd001_test, sensor, 3 * fd001_train.frame[sensor].std())
    report = compare(fd001_stats, shifted, psi_threshold=0.25, ks_pvalue=0.01)
    assert report.drifted == [sensor]
    assert report.sensors[sensor].shift_std == pytest.approx(3.0, abs=0.6)
    payload = report.to_dict()
    assert payload["sensors"][sensor] | {"drift": True} == payload["sensors"][sensor]
    assert set(payload["sensors"]["s_3"]) >= {"psi", "ks_pvalue", "drift"}
    json.dumps(report.to_dict(detail=True), allow_nan=False)


def test_fd002_is_drifted_against_fd001_on_regime_dependent_sensors(fd001_train, fd001_stats, fd002_train):
    fd002 = fd002_train
    labels = detect_regimes(fd002).assign(fd002.frame)
    means = fd002.frame.groupby(labels)[fd002.sensors].mean()
    spread = means.max() - means.min()
    # a sensor is regime dependent when its regime means lie several FD001 spreads apart
    scale = fd001_train.frame[fd002.sensors].std().clip(lower=1e-3)
    dependent = sorted(spread[spread > 3 * scale].index)
    assert len(dependent) >= 10
    report = compare(fd001_stats, fd002)
    assert set(dependent) <= set(report.drifted)
    for name in dependent:
        assert report.sensors[name].psi > 1.0


def test_fd002_against_its_own_training_statistics_is_regime_aware(fd002_train):
    if not (CMAPSS_DIR / "test_FD002.txt").is_file():
        pytest.skip("test_FD002.txt not available")
    train = fd002_train
    stats = training_statistics(train)
    assert len(stats["regime_norm"]["s_2"]["mean"]) == 6
    test = read_dataset(CMAPSS_DIR / "test_FD002.txt")
    report = compare(stats, test)
    assert report.space == "regime_z" and report.regimes == 6
    assert report.drifted == []
    std_in_regime = stats["regime_norm"]["s_11"]["std"]
    labels = detect_regimes(train).assign(test.frame)  # same regimes, same order
    frame = test.frame.copy()
    frame["s_11"] += 3 * np.asarray(std_in_regime)[labels]
    assert compare(stats, test.with_frame(frame, {"step": "shift"})).drifted == ["s_11"]


def _tiny(values: dict[str, list[float]], units: list[int], settings: dict | None = None) -> Dataset:
    cycles = pd.Series(units).groupby(units).cumcount().to_numpy() + 1
    frame = pd.DataFrame({"unit": units, "cycle": cycles, **(settings or {}), **values})
    return Dataset(
        frame=frame, time_col="cycle", sensors=list(values), settings=list(settings or {}), format="test"
    )


def test_constant_and_empty_sensors_never_give_nan():
    n = 60
    units = [1] * 30 + [2] * 30
    rng = np.random.default_rng(1)
    train = _tiny({"flat": [5.0] * n, "noisy": list(rng.normal(0, 1, n)), "empty": [np.nan] * n}, units)
    stats = json.loads(json.dumps(training_statistics(train), allow_nan=False))
    same = compare(stats, train)
    assert same.drifted == []
    moved = _tiny({"flat": [7.0] * n, "noisy": list(rng.normal(0, 1, n)), "empty": [np.nan] * n}, units)
    report = compare(stats, moved)
    assert "flat" in report.drifted  # a stuck sensor that jumps is drift
    assert report.sensors["empty"].note == "no values in the new data"
    dropped = _tiny({"flat": [4.0] * n, "noisy": [0.0] * n, "empty": [1.0] * n}, units)
    json.dumps(compare(stats, dropped).to_dict(detail=True), allow_nan=False)
    assert compare(stats, dropped).sensors["flat"].drift  # below the training range too
    for payload in (same.to_dict(), report.to_dict(detail=True)):
        json.dumps(payload, allow_nan=False)


def test_population_stability_index():
    assert population_stability_index([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)
    assert population_stability_index([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert np.isfinite(population_stability_index([1.0, 0.0], [0.0, 1.0]))
    assert population_stability_index([1.0, 0.0], [0.0, 1.0]) > 5
    assert population_stability_index([0, 0], [1, 1]) == 0.0
    moderate = population_stability_index([0.25] * 4, [0.2, 0.3, 0.3, 0.2])
    assert 0.01 < moderate < 0.1


def test_sketch_ks_is_never_more_alarming_than_the_exact_test():
    """D at the sketch points is a lower bound of the exact statistic, so its p-value is larger."""
    rng = np.random.default_rng(7)
    train = rng.normal(0, 1, 5000)
    sketch = sensor_statistics(train)
    for shift in (0.0, 0.02, 0.05, 0.1, 0.3):
        new = rng.normal(shift, 1, 2000)
        d, p = ks_from_sketch(sketch, new)
        exact = scipy_stats.ks_2samp(train, new, method="asymp")
        assert d <= exact.statistic + 1e-12
        assert d >= exact.statistic - 0.011  # sketch resolution: one percentile
        assert p >= exact.pvalue - 1e-12
    assert ks_from_sketch(sketch, rng.normal(0.3, 1, 2000))[1] < 1e-6


def test_missing_sensors_and_settings_are_reported():
    units = [1] * 40 + [2] * 40
    rng = np.random.default_rng(2)
    train = _tiny({"a": list(rng.normal(size=80)), "b": list(rng.normal(size=80))}, units)
    stats = training_statistics(train)
    only_a = _tiny({"a": list(rng.normal(size=80))}, units)
    report = compare(stats, only_a)
    assert report.missing == ["b"] and list(report.sensors) == ["a"]
    with pytest.raises(IncompatibleDataError, match="expected format"):
        compare({"sensors": {}}, only_a)
    # two regimes in training: new data without the setting column cannot be placed in them
    regimes = {"alt": ([0.0] * 50 + [10.0] * 50) * 2}
    two = _tiny({"a": list(rng.normal(size=200))}, [1] * 100 + [2] * 100, settings=regimes)
    regime_stats = training_statistics(two)
    assert regime_stats["regimes"] is not None
    with pytest.raises(IncompatibleDataError, match="alt"):
        compare(regime_stats, only_a)
