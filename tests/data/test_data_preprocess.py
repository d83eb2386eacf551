"""Constant sensors, operating regimes, normalisers and missing values."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from cmapss_factory import CMAPSS_DIR, SAMPLE_DIR

from turbofan_desktop.data import (
    Dataset,
    RegimeModel,
    RegimeNormalizer,
    SensorScaler,
    detect_constant_sensors,
    detect_regimes,
    fill_missing,
    missing_report,
    read_dataset,
    split_units,
)
from turbofan_desktop.errors import ConfigError, IncompatibleDataError, ModelNotTrainedError


@pytest.fixture(scope="module")
def fd001():
    return read_dataset(SAMPLE_DIR / "train_FD001.txt")


@pytest.fixture(scope="module")
def fd002():
    if not (CMAPSS_DIR / "train_FD002.txt").is_file():
        pytest.skip("train_FD002.txt not available")
    return read_dataset(CMAPSS_DIR / "train_FD002.txt")


def _tiny(values: dict[str, list[float]], units: list[int] | None = None, settings=()) -> Dataset:
    n = len(next(iter(values.values())))
    units = units or [1] * n
    cycles = pd.Series(units).groupby(units).cumcount().to_numpy() + 1
    frame = pd.DataFrame({"unit": units, "cycle": cycles, **values})
    sensors = [c for c in values if c not in settings]
    return Dataset(frame=frame, time_col="cycle", sensors=sensors, settings=list(settings), format="test")


def test_fd001_constant_sensors_and_single_regime(fd001):
    assert detect_constant_sensors(fd001) == ["s_1", "s_5", "s_6", "s_10", "s_16", "s_18", "s_19"]
    assert detect_regimes(fd001).n_regimes == 1


def test_fd002_has_six_regimes_and_round_trips_as_json(fd002):
    model = detect_regimes(fd002)
    assert model.n_regimes == 6
    labels = model.assign(fd002.frame)
    assert sorted(np.bincount(labels).tolist()) == [8002, 8037, 8044, 8096, 8122, 13458]
    restored = RegimeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(restored.assign(fd002.frame), labels)


def test_regime_normalizer_fit_on_train_apply_to_test(fd002):
    split = split_units(fd002, val_fraction=0.25, seed=3)
    train, test, _ = split.apply(fd002)
    normalizer = RegimeNormalizer().fit(train)
    mean_before = normalizer.mean.copy()
    out_train = normalizer.transform(train)
    out_test = normalizer.transform(test)
    np.testing.assert_array_equal(normalizer.mean, mean_before)  # applying never refits
    labels = normalizer.regimes.assign(train.frame)
    for r in range(6):
        block = out_train.frame.loc[labels == r, "s_2"]
        assert abs(block.mean()) < 1e-9 and abs(block.std(ddof=0) - 1) < 1e-9
    # test units: the train statistics, not their own -> close to, but not exactly, standardised
    assert abs(out_test.frame["s_2"].mean()) < 0.5 and out_test.frame["s_2"].mean() != 0.0
    assert not out_test.frame[fd002.sensors].isna().to_numpy().any()
    assert out_test.preprocessing[-1]["step"] == "regime_normalize"
    # raw s_2 swings with the flight condition; within-regime z-scores do not
    assert fd002.frame["s_2"].std() > 10 * out_train.frame["s_2"].std()
    restored = RegimeNormalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    pd.testing.assert_frame_equal(restored.transform(test).frame, out_test.frame)


def test_normalizers_are_safe_on_constant_and_tiny_data():
    ds = _tiny({"flat": [5.0], "other": [1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scaler in (SensorScaler(), RegimeNormalizer()):
            out = scaler.fit_transform(ds)
            assert np.isfinite(out.frame[["flat", "other"]].to_numpy()).all()
            assert out.frame["flat"].tolist() == [0.0]
    wide = _tiny({"flat": [3.0, 3.0, 3.0], "x": [1.0, 2.0, 3.0]})
    out = SensorScaler().fit_transform(wide)
    assert out.frame["flat"].tolist() == [0.0, 0.0, 0.0]
    assert SensorScaler.from_dict(json.loads(json.dumps(SensorScaler().fit(wide).to_dict()))).inverse(
        out.frame["x"].to_numpy(), "x"
    ).tolist() == pytest.approx([1.0, 2.0, 3.0])


def test_normalizer_errors_are_user_errors(fd001):
    with pytest.raises(ModelNotTrainedError):
        RegimeNormalizer().transform(fd001)
    scaler = SensorScaler(["s_2", "extra"])
    with pytest.raises(IncompatibleDataError, match="extra"):
        scaler.fit(fd001)


def test_constant_detection_is_per_regime():
    # "follows" only tracks the setting: constant within each regime, so it carries no information
    setting = [0.0] * 60 + [10.0] * 60
    follows = [1.0] * 60 + [2.0] * 60
    real = list(np.linspace(0, 1, 120))
    ds = _tiny({"setting_1": setting, "follows": follows, "real": real}, settings=("setting_1",))
    assert detect_regimes(ds).n_regimes == 2
    assert detect_constant_sensors(ds) == ["follows"]


def test_a_few_rows_of_noisy_settings_are_one_regime(fd001):
    tiny = fd001.subset([1, 2, 3])
    tiny = tiny.with_frame(tiny.frame.groupby("unit").head(4).reset_index(drop=True), {"step": "head"})
    assert tiny.n_rows == 12
    assert detect_regimes(tiny).n_regimes == 1
    assert "s_2" not in detect_constant_sensors(tiny)


def test_missing_values_reported_and_filled_within_units():
    ds = _tiny(
        {"a": [1.0, np.nan, 3.0, np.nan, 10.0, 20.0], "b": [1.0, 1.0, 1.0, 5.0, np.nan, 7.0]},
        units=[1, 1, 1, 2, 2, 2],
    )
    assert missing_report(ds) == {"total": 3, "rows": 3, "by_column": {"a": 2, "b": 1}}
    filled = fill_missing(ds, "interpolate")
    assert filled.frame["a"].tolist() == [1.0, 2.0, 3.0, 10.0, 10.0, 20.0]  # unit 2 never sees unit 1
    assert filled.frame["b"].tolist() == [1.0, 1.0, 1.0, 5.0, 6.0, 7.0]
    assert filled.preprocessing[-1] == {
        "step": "fill_missing",
        "method": "interpolate",
        "filled": 3,
        "by_column": {"a": 2, "b": 1},
    }
    assert filled.lineage.preprocessing[-1]["filled"] == 3
    assert fill_missing(ds, "ffill").frame["a"].tolist() == [1.0, 1.0, 3.0, 10.0, 10.0, 20.0]
    assert fill_missing(ds, "median").frame["a"].tolist() == [1.0, 2.0, 3.0, 15.0, 10.0, 20.0]  # per unit
    assert missing_report(filled)["total"] == 0
    with pytest.raises(ConfigError, match="Unknown fill method"):
        fill_missing(ds, "guess")
