"""The nonparametric dynamic threshold on synthetic error series (pure numpy, no torch)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from turbofan_telemanom.config import TelemanomConfig
from turbofan_telemanom.threshold import (
    ThresholdParams,
    ThresholdSearch,
    _prune,
    find_anomalies,
    smooth_errors,
)

SMALL = ThresholdParams(l_s=20, batch=20, window_size=10, smoothing_window=5, error_buffer=5)


def _noise(n: int, seed: int = 0, level: float = 0.05) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).normal(0.0, level, n))


def _values(n: int) -> np.ndarray:
    return np.sin(np.arange(n) / 15.0)


def test_module_does_not_need_torch():
    code = "import sys, turbofan_telemanom.threshold; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_params_follow_the_paper_defaults():
    params = ThresholdParams.from_config(TelemanomConfig())
    assert (params.l_s, params.batch, params.window_size) == (250, 70, 30)
    assert params.smoothing_window == 105  # int(70 * 30 * 0.05)
    assert params.z_candidates[0] == 2.5 and params.z_candidates[-1] == 12.0 and params.z_fallback == 12.0
    assert params.ignored_prefix(3000) == 500 and params.ignored_prefix(2000) == 250
    assert params.ignored_prefix(1000) == 0


def test_smoothing_is_pandas_ewm_with_the_first_l_s_replaced():
    errors = _noise(300, seed=3)
    smoothed = smooth_errors(errors, span=7, l_s=20)
    expected = pd.Series(errors).ewm(span=7).mean().to_numpy()
    np.testing.assert_allclose(smoothed[20:], expected[20:])
    np.testing.assert_allclose(smoothed[:20], expected[:40].mean())


def test_planted_spike_is_found():
    n = 600
    errors = _noise(n)
    errors[400:415] += 2.0
    result = find_anomalies(errors, _values(n), SMALL)
    assert len(result.sequences) == 1
    (seq,) = result.sequences
    assert seq.start <= 400 and seq.end >= 414 and seq.direction == "high"
    assert seq.end - seq.start < 60  # the spike plus smoothing and buffer, not the whole series
    assert seq.score > 1.0
    assert result.anomalous[405] and not result.anomalous[100]
    assert np.all(np.isfinite(result.threshold))


def test_flat_or_quiet_errors_give_no_anomaly():
    n = 600
    assert find_anomalies(np.full(n, 0.2), _values(n), SMALL).sequences == []
    assert find_anomalies(_noise(n, level=0.01), _values(n), SMALL).sequences == []
    assert find_anomalies(np.zeros(0), np.zeros(0), SMALL).sequences == []


def test_inverted_pass_catches_a_drop():
    n = 600
    errors = 1.0 + _noise(n, seed=1, level=0.02)
    errors[300:330] = 0.0
    result = find_anomalies(errors, _values(n) * 5, SMALL)
    assert [s.direction for s in result.sequences] == ["low"]
    seq = result.sequences[0]
    assert seq.start <= 330 and seq.end >= 300
    assert np.nanmin(result.lower_threshold) < 1.0  # the lower threshold sits below the normal level


def test_pruning_removes_a_weak_sequence_and_keeps_a_clear_one():
    values = np.full(100, 1.0)
    values[10:15] = 10.0  # a clear peak
    values[60:65] = 2.1  # barely above the largest normal value (2.0)
    values[90] = 2.0
    flagged = np.zeros(100, dtype=bool)
    flagged[10:15] = flagged[60:65] = True
    kept = _prune(values, flagged, non_anomalous_max=2.0, p=0.13)
    assert kept[10:15].all() and not kept[60:65].any()
    assert _prune(values, flagged, non_anomalous_max=2.0, p=0.0)[60:65].all()  # p=0 keeps everything


def test_pruning_end_to_end_drops_a_bump_close_to_the_noise():
    n = 800
    errors = _noise(n, seed=5, level=0.1)
    errors[300:310] += 3.0
    errors[600:604] += 0.35
    pruned = find_anomalies(errors, _values(n), SMALL)
    unpruned = find_anomalies(errors, _values(n), ThresholdParams(**{**SMALL.__dict__, "p": 0.0}))
    assert len(pruned.sequences) <= len(unpruned.sequences)
    assert any(s.start <= 300 <= s.end + 10 for s in pruned.sequences)


def test_threshold_search_prefers_the_larger_z_on_ties_and_falls_back():
    values = np.zeros(200)
    values[50:52] = 10.0
    mu, sigma = values.mean(), values.std()
    z, eps = ThresholdSearch(SMALL).find(values, mu, sigma)
    largest_flagging = max(c for c in SMALL.z_candidates if mu + c * sigma <= 10.0)
    assert z == largest_flagging and eps == pytest.approx(mu + z * sigma)

    crowded = np.zeros(200)
    for start in range(5, 200, 25):  # eight separate sequences: more than five is implausible
        crowded[start : start + 2] = 10.0
    z, eps = ThresholdSearch(ThresholdParams(error_buffer=0)).find(crowded, crowded.mean(), crowded.std())
    assert z == 12.0 and eps == pytest.approx(crowded.mean() + 12 * crowded.std())


def test_first_errors_are_ignored_on_long_series():
    n = 3000
    errors = _noise(n)
    errors[30:45] += 3.0  # inside the first 2 * l_s: the model had no history there
    errors[2000:2015] += 3.0
    params = ThresholdParams(l_s=50, batch=70, window_size=30, smoothing_window=5, error_buffer=5)
    result = find_anomalies(errors, _values(n), params)
    assert result.sequences and all(s.start >= 100 for s in result.sequences)
    assert any(s.start <= 2000 <= s.end for s in result.sequences)


def test_windows_advance_by_one_batch_and_the_last_runs_to_the_end():
    n = 650
    result = find_anomalies(_noise(n), _values(n), SMALL)
    starts = [w.start for w in result.windows]
    assert starts == list(range(0, starts[-1] + 1, 20))
    assert result.windows[0].end == 200 and result.windows[-1].end == n
