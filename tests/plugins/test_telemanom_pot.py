"""POT / SPOT thresholds (Siffer et al., KDD 2017) on synthetic data with known tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from turbofan_telemanom.pot import (
    MIN_CALIBRATION,
    PeaksOverThreshold,
    find_anomalies_pot,
    fit_gpd,
    spot,
)
from turbofan_telemanom.threshold import ThresholdParams


@pytest.mark.parametrize(("gamma", "sigma"), [(0.0, 1.0), (0.25, 1.0), (-0.3, 2.0)])
def test_gpd_fit_is_the_maximum_likelihood_fit(gamma, sigma):
    rng = np.random.default_rng(3)
    peaks = stats.genpareto.rvs(gamma, scale=sigma, size=800, random_state=rng)
    fitted_gamma, fitted_sigma = fit_gpd(peaks)
    reference_gamma, _, reference_sigma = stats.genpareto.fit(peaks, floc=0)
    assert fitted_gamma == pytest.approx(reference_gamma, abs=0.01)
    assert fitted_sigma == pytest.approx(reference_sigma, rel=0.01)
    assert fitted_gamma == pytest.approx(gamma, abs=0.15)  # and near the truth


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("gamma", "sigma"), [(0.0, 1.0), (0.25, 1.0), (-0.3, 2.0), (0.8, 0.01), (-0.6, 5.0)])
def test_numpy_gpd_fit_matches_scipy_to_a_thousandth(seed, gamma, sigma):
    """The numpy search (grid + golden section) reaches scipy's maximum likelihood: parameters within
    1e-3 and a log-likelihood no lower than scipy's fit by more than 1e-6 (near gamma = 0 too)."""
    peaks = stats.genpareto.rvs(gamma, scale=sigma, size=300, random_state=np.random.default_rng(seed))
    fitted_gamma, fitted_sigma = fit_gpd(peaks)
    reference_gamma, _, reference_sigma = stats.genpareto.fit(peaks, floc=0)
    assert fitted_gamma == pytest.approx(reference_gamma, abs=1e-3)
    assert fitted_sigma == pytest.approx(reference_sigma, rel=1e-3)
    ours = stats.genpareto.logpdf(peaks, fitted_gamma, scale=fitted_sigma).sum()
    theirs = stats.genpareto.logpdf(peaks, reference_gamma, scale=reference_sigma).sum()
    assert ours >= theirs - 1e-6


def test_exponential_tail_gives_the_analytic_quantile():
    rng = np.random.default_rng(0)
    pot = PeaksOverThreshold.calibrate(rng.exponential(1.0, 40_000), risk=1e-3, level=0.98)
    assert pot.t == pytest.approx(-math.log(0.02), rel=0.05)
    assert abs(pot.gamma) < 0.1  # the exponential is the gamma = 0 member
    assert pot.threshold == pytest.approx(-math.log(1e-3), rel=0.08)
    assert pot.tail_probability(pot.threshold)[0] == pytest.approx(1e-3, rel=1e-6)
    probabilities = pot.anomaly_probability(np.array([0.0, pot.t, pot.threshold, 50.0]))
    assert np.all(np.diff(probabilities) >= 0) and probabilities[-1] > 0.9999
    assert 0 <= probabilities[0] <= 0.05


def test_spot_streams_flags_spikes_and_does_not_learn_them():
    rng = np.random.default_rng(1)
    values = rng.exponential(1.0, 6000)
    values[4000:4005] += 25.0
    thresholds, alarms, pot = spot(values, 1000, risk=1e-3)
    assert alarms[4000:4005].all()
    false_alarms = int(alarms.sum()) - 5
    assert false_alarms <= 15  # about risk * n = 6 expected
    assert thresholds[4010] == pytest.approx(thresholds[3999], rel=0.02)  # the spike was not learnt
    assert np.all(np.isfinite(thresholds)) and pot.n == 6000 - int(alarms[1000:].sum())
    with pytest.raises(ValueError, match="risk"):
        PeaksOverThreshold.calibrate(values, risk=2.0)


def test_pot_anomalies_on_prediction_errors():
    rng = np.random.default_rng(2)
    errors = np.abs(rng.normal(0, 0.1, 3000))
    errors[2000:2040] += 1.5
    params = ThresholdParams(l_s=50, batch=70, window_size=10, smoothing_window=10, error_buffer=5)
    found = find_anomalies_pot(errors, errors, params, risk=1e-3)
    assert len(found.sequences) >= 1
    covering = [s for s in found.sequences if s.start <= 2040 and s.end >= 2000]
    assert covering and covering[0].probability > 0.999 and covering[0].score >= 3
    assert all(s.direction == "high" for s in found.sequences)
    assert sum(s.end - s.start + 1 for s in found.sequences) < 200
    assert np.all(np.isfinite(found.threshold)) and found.probability.shape == errors.shape
    assert found.anomalous[2010]


def test_pot_anomalies_on_short_flat_and_calibrated_series():
    params = ThresholdParams(l_s=10, batch=10, window_size=10, smoothing_window=5, error_buffer=2)
    short = np.abs(np.random.default_rng(4).normal(0, 0.1, MIN_CALIBRATION // 2))
    assert np.all(np.isfinite(find_anomalies_pot(short, short, params).threshold))
    flat = np.zeros(300)
    assert find_anomalies_pot(flat, flat, params).sequences == []
    assert find_anomalies_pot(np.zeros(0), np.zeros(0), params).sequences == []
    rng = np.random.default_rng(5)
    calibration = np.abs(rng.normal(0, 0.1, 2000))
    series = np.abs(rng.normal(0, 0.1, 200))
    series[100:110] += 2.0
    found = find_anomalies_pot(series, series, params, calibration=calibration)
    assert [s for s in found.sequences if s.start <= 110 and s.end >= 100]


def test_short_calibration_lowers_the_level_to_keep_a_tail():
    values = np.random.default_rng(6).exponential(1.0, 100)
    pot = PeaksOverThreshold.calibrate(values, risk=1e-3, level=0.98)
    assert pot.level == pytest.approx(0.9) and len(pot.peaks) == 10
    assert pot.threshold > values.max() * 0.8 and np.isfinite(pot.threshold)
    assert PeaksOverThreshold.calibrate(np.ones(50)).threshold == 1.0  # flat errors: no tail


def test_telemanom_detect_with_the_pot_threshold():
    """threshold_method = "pot": SPOT on the model's smoothed errors, ranges with probabilities."""
    import pandas as pd

    from turbofan_desktop.data.dataset import Dataset
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_desktop.plugins.manager import get_plugin_manager

    def sine(n: int, shift_at: int | None = None) -> Dataset:
        values = np.sin(np.arange(n) / 6.0)
        if shift_at is not None:
            values[shift_at : shift_at + 25] += 4.0
        frame = pd.DataFrame({"unit": "s", "step": np.arange(100, 100 + n), "value": values})
        return Dataset(frame=frame, time_col="step", sensors=["value"], settings=[], format="test")

    spec = get_plugin_manager().model("telemanom")
    settings = {"l_s": 20, "n_predictions": 3, "lstm_units": "8,8", "epochs": 3, "batch_size": 32,
                "predict_batch_size": 20, "window_size": 10, "error_buffer": 5, "scaling": "none"}  # fmt: skip
    model = spec.build(
        build_config(spec.config_class, {**settings, "threshold_method": "pot"}), "value", threads=1
    )
    model.fit(sine(600), None)
    detection = model.detect(sine(400, shift_at=250))
    assert detection.threshold_method == "pot"
    anomalies = detection.units["s"].anomalies
    assert any(a.start <= 100 + 250 + 24 and a.end >= 100 + 250 for a in anomalies)
    assert all(a.probability is not None and 0.9 < a.probability <= 1.0 for a in anomalies)
    threshold = detection.units["s"].threshold
    assert np.all(np.isfinite(threshold[:-3])) and np.all(
        np.isnan(threshold[-3:])
    )  # last n_predictions: not judged
