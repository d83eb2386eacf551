"""Feedback in the nonparametric threshold: labelled anomalies leave the statistics, false alarms stay quiet."""

from __future__ import annotations

import numpy as np
import pytest

from turbofan_telemanom.threshold import ThresholdParams, find_anomalies

# one threshold window covers both planted anomalies (600 errors), so the big one inflates its sigma
PARAMS = ThresholdParams(l_s=20, batch=20, window_size=30, smoothing_window=5, error_buffer=5, ignore_first=0)
N = 700
BIG = slice(200, 230)
SMALL = slice(450, 465)


def _errors() -> np.ndarray:
    errors = np.abs(np.random.default_rng(0).normal(0.0, 0.05, N))
    errors[BIG] += 4.0
    errors[SMALL] += 0.5
    return errors


def _mask(start: int, end: int) -> np.ndarray:
    mask = np.zeros(N, dtype=bool)
    mask[start:end] = True
    return mask


def _covers(result, piece: slice) -> bool:
    return any(s.start <= piece.start and s.end >= piece.stop - 1 for s in result.sequences)


def test_the_smaller_anomaly_is_found_only_when_the_labelled_one_is_excluded():
    actual = np.sin(np.arange(N) / 15.0)
    plain = find_anomalies(_errors(), actual, PARAMS)
    assert _covers(plain, BIG) and not _covers(plain, SMALL)  # hidden behind the big one's sigma

    known = _mask(195, 240)  # the user labelled the big anomaly as a true anomaly
    excluded = find_anomalies(_errors(), actual, PARAMS, known=known)
    assert _covers(excluded, BIG)  # still flagged: exclusion changes the statistics, not the verdict
    assert _covers(excluded, SMALL)
    assert excluded.windows[0].sigma < plain.windows[0].sigma / 5


def test_ranges_labelled_false_alarm_are_not_flagged_again():
    actual = np.sin(np.arange(N) / 15.0)
    known = _mask(195, 240)
    result = find_anomalies(_errors(), actual, PARAMS, known=known, dismissed=_mask(440, 480))
    assert _covers(result, BIG) and not _covers(result, SMALL)
    assert not result.anomalous[440:480].any()


def test_no_masks_is_the_unchanged_threshold_and_bad_masks_are_refused():
    actual = np.sin(np.arange(N) / 15.0)
    empty = np.zeros(N, dtype=bool)
    with_masks = find_anomalies(_errors(), actual, PARAMS, known=empty, dismissed=empty)
    without = find_anomalies(_errors(), actual, PARAMS)
    assert [(s.start, s.end) for s in with_masks.sequences] == [(s.start, s.end) for s in without.sequences]
    with pytest.raises(ValueError, match="'known' mask"):
        find_anomalies(_errors(), actual, PARAMS, known=np.zeros(3, dtype=bool))


def test_labels_become_masks_on_the_units_time_axis():
    pytest.importorskip("torch")
    from turbofan_telemanom.model import label_masks

    labels = [
        {"unit": 3, "start": 12, "end": 14, "label": "true_anomaly"},
        {"unit": "3", "start": 20.0, "end": 21.0, "label": "missed_anomaly"},
        {"unit": 3, "start": 30, "end": 31, "label": "false_alarm"},
        {"unit": 4, "start": 10, "end": 40, "label": "true_anomaly"},  # another unit
        {"unit": 3, "start": "2020-01-01T00:00:00", "end": "2020-01-02T00:00:00", "label": "true_anomaly"},
    ]
    known, dismissed = label_masks(labels, 3, np.arange(10, 40))
    assert np.flatnonzero(known).tolist() == [2, 3, 4, 10, 11]
    assert np.flatnonzero(dismissed).tolist() == [20, 21]
    stamps = np.array(["2020-01-01T12:00", "2020-01-03T00:00"], dtype="datetime64[ns]")
    known, _ = label_masks(labels, 3, stamps)
    assert known.tolist() == [True, False]
