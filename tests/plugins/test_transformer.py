"""The Transformer forecast + RUL plugin on the bundled FD001 sample, with tiny configs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import Cancelled, ConfigError, IncompatibleDataError, ModelNotTrainedError
from turbofan_desktop.plugins.contract import ForecastResult, RULResult, build_config
from turbofan_transformer import TransformerConfig, register_models

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"
COLUMNS = ["unit", "cycle", *[f"setting_{i}" for i in range(1, 4)], *[f"s_{i}" for i in range(1, 22)]]
TINY = {
    "epochs": 2,
    "d_model": 16,
    "heads": 2,
    "layers": 1,
    "window": 20,
    "horizon": 5,
    "max_windows_per_unit": 12,
    "batch_size": 64,
    "ensemble": 1,  # one model; the ensemble tests below set their own member count
}


def read_cmapss(path: Path, rul_path: Path | None = None) -> Dataset:
    """The data layer's reader when it exists, else a minimal pandas reader of the same layout."""
    try:
        from turbofan_desktop.data import read_dataset  # type: ignore[attr-defined]
    except ImportError:
        read_dataset = None
    if read_dataset is not None:
        data = read_dataset(path)
        if rul_path is not None and data.rul is None:
            values = pd.read_csv(rul_path, sep=r"\s+", header=None)[0].to_numpy()
            data.rul = pd.Series(values, index=data.units[: len(values)])
        return data
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=COLUMNS)
    data = Dataset(
        frame=frame,
        time_col="cycle",
        sensors=COLUMNS[5:],
        settings=COLUMNS[2:5],
        format="cmapss",
        source=path,
    )
    if rul_path is not None:
        values = pd.read_csv(rul_path, sep=r"\s+", header=None)[0].to_numpy()
        data.rul = pd.Series(values, index=data.units[: len(values)])
    return data


@pytest.fixture(scope="module")
def spec():
    return register_models()[0]


@pytest.fixture(scope="module")
def train_data() -> Dataset:
    full = read_cmapss(SAMPLE / "train_FD001.txt")
    return full.subset(full.units[:24])


@pytest.fixture(scope="module")
def test_data() -> Dataset:
    full = read_cmapss(SAMPLE / "test_FD001.txt", SAMPLE / "RUL_FD001.txt")
    return full.subset(full.units[:10])


@pytest.fixture(scope="module")
def trained(spec, train_data):
    model = spec.build(build_config(spec.config_class, TINY), "*", threads=1)
    events = []
    fit = model.fit(train_data, None, progress=events.append)
    return model, fit, events


def _tiny(spec, **changes):
    return build_config(spec.config_class, {**TINY, **changes})


# -- registration and config --------------------------------------------------------------------------
def test_spec_serves_forecast_and_rul_for_all_sensors(spec):
    assert spec.name == "transformer"
    assert set(spec.tasks) == {"forecast", "rul"}
    assert spec.per_target is False
    assert spec.config_class is TransformerConfig
    defaults = {row["name"]: row["default"] for row in spec.schema()}
    assert defaults["horizon"] == 20 and defaults["rul_cap"] == 125.0
    assert tuple(defaults["quantiles"]) == (0.1, 0.5, 0.9)


def test_registering_the_plugin_does_not_import_torch():
    code = "import sys, turbofan_transformer; turbofan_transformer.register_models(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    ("values", "phrase"),
    [
        ({"d_model": 30, "heads": 4}, "does not divide d_model"),
        ({"quantiles": "0.9,0.5,0.1"}, "three increasing numbers"),
        ({"quantiles": "0.1,0.4,0.9"}, "middle must be 0.5"),
        ({"window": 10, "min_history": 20}, "at most the window length"),
        ({"window": 1}, "expected at least 2"),
        ({"dropout": "lots"}, "expected a float"),
    ],
)
def test_invalid_settings_raise_config_error_with_a_sentence(spec, values, phrase):
    with pytest.raises(ConfigError) as info:
        build_config(spec.config_class, values)
    message = str(info.value)
    assert phrase in message and message.endswith(".")


def test_unknown_sensor_is_a_config_error(spec, train_data):
    model = spec.build(_tiny(spec, sensors=["s_2", "s_99"]), "*", threads=1)
    with pytest.raises(ConfigError, match="s_99"):
        model.fit(train_data, None)


def test_predicting_before_training_is_refused(spec, test_data):
    with pytest.raises(ModelNotTrainedError):
        spec.build(_tiny(spec), "*").predict_rul(test_data)


# -- training ----------------------------------------------------------------------------------------
def test_fit_reports_each_epoch_and_holds_out_units(trained, train_data):
    model, fit, events = trained
    epochs = [e for e in events if e.epoch is not None]
    assert fit.epochs_run == len(fit.history) == len(epochs) == 2
    assert [e.epoch for e in epochs] == [1, 2]
    assert all(e.stage == "fit" and math.isfinite(e.train_loss) and math.isfinite(e.val_loss) for e in epochs)
    # between them, batch events move the fraction within each epoch (issue 17) and carry nothing else
    within = [e for e in events if e.epoch is None]
    assert within and all(e.train_loss is None and not e.message for e in within)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and any(0 < f < 0.5 for f in fractions)
    assert 1 <= len(model.val_units) < len(train_data.units)
    assert set(model.val_units) <= set(train_data.units)
    # constant sensors of FD001 are left out when no sensor is named
    assert not {"s_1", "s_5", "s_6", "s_10", "s_16", "s_18", "s_19"} & set(model.forecast_sensors)
    assert len(model.forecast_sensors) == 14


def test_predict_rul_scores_each_unit_with_ordered_interval(trained, test_data):
    model, _, _ = trained
    result = model.predict_rul(test_data)
    assert isinstance(result, RULResult) and result.interval == pytest.approx(0.8)
    assert [u.unit for u in result.units] == test_data.units
    for unit in result.units:
        assert 0.0 <= unit.lower <= unit.rul <= unit.upper
        assert unit.true_rul == float(test_data.rul[unit.unit])


def test_forecast_continues_each_units_own_time_axis(trained, test_data):
    model, _, _ = trained
    result = model.forecast(test_data, units=[1, 3])
    assert isinstance(result, ForecastResult) and result.horizon == 5
    assert list(result.units) == [1, 3]
    for unit, unit_forecast in result.units.items():
        last_cycle = int(test_data.unit_frame(unit)["cycle"].iloc[-1])
        assert set(unit_forecast.sensors) == set(model.forecast_sensors)
        for sensor in unit_forecast.sensors.values():
            np.testing.assert_array_equal(sensor.time, np.arange(last_cycle + 1, last_cycle + 6))
            assert sensor.median.shape == sensor.lower.shape == sensor.upper.shape == (5,)
            assert np.all(sensor.lower <= sensor.median) and np.all(sensor.median <= sensor.upper)
    shorter = model.forecast(test_data, horizon=3, units=[1])
    assert shorter.units[1].sensors["s_2"].median.shape == (3,)
    with pytest.raises(ConfigError, match="horizon"):
        model.forecast(test_data, horizon=6)


def test_evaluate_reports_rul_and_forecast_metrics(trained, test_data, train_data):
    model, _, _ = trained
    metrics = model.evaluate(test_data)
    for key in ("rul_rmse", "rul_score", "rul_coverage80", "forecast_mase_h5", "forecast_coverage80"):
        assert math.isfinite(metrics[key]), key
    assert "forecast_mase_h5_s_2" in metrics
    on_val = model.evaluate(train_data.subset(model.val_units))
    assert math.isfinite(on_val["rul_rmse"]) and 0.0 <= on_val["rul_coverage80"] <= 1.0


def test_short_units_are_padded_not_dropped(trained, test_data):
    model, _, _ = trained
    frame = test_data.frame
    short = frame[(frame["unit"] != 2) | (frame["cycle"] <= 4)].reset_index(drop=True)
    data = test_data.with_frame(short, {"step": "truncate unit 2 to 4 cycles"})
    rul = {u.unit: u for u in model.predict_rul(data).units}
    assert 2 in rul and math.isfinite(rul[2].rul)
    forecast = model.forecast(data, units=[2])
    np.testing.assert_array_equal(forecast.units[2].sensors["s_2"].time, np.arange(5, 10))


def test_missing_sensor_in_new_data_is_incompatible(trained, test_data):
    model, _, _ = trained
    data = test_data.with_frame(test_data.frame.drop(columns=["s_2"]), {"step": "drop s_2"})
    with pytest.raises(IncompatibleDataError, match="s_2"):
        model.predict_rul(data)


def test_save_load_round_trip_gives_identical_predictions(spec, trained, test_data, tmp_path):
    model, _, _ = trained
    model.save(tmp_path)
    assert (tmp_path / "weights.pt").is_file() and (tmp_path / "meta.json").is_file()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["forecast_sensors"] == model.forecast_sensors
    assert meta["scaler"]["normalizer"]["sensors"] == model.input_sensors
    assert meta["calibration"]["method"].startswith("split conformal")
    assert meta["config"]["horizon"] == 5
    loaded = type(model).load(tmp_path, config=model.config, target="*", threads=1)
    before, after = model.predict_rul(test_data), loaded.predict_rul(test_data)
    assert [(u.rul, u.lower, u.upper) for u in before.units] == [
        (u.rul, u.lower, u.upper) for u in after.units
    ]
    f1 = model.forecast(test_data, units=[4]).units[4].sensors["s_7"]
    f2 = loaded.forecast(test_data, units=[4]).units[4].sensors["s_7"]
    np.testing.assert_array_equal(f1.median, f2.median)
    np.testing.assert_array_equal(f1.upper, f2.upper)


def test_same_seed_gives_same_metrics(spec, train_data, test_data):
    config = _tiny(spec, epochs=1, seed=7)
    first = spec.build(config, "*", threads=1)
    first.fit(train_data, None)
    second = spec.build(_tiny(spec, epochs=1, seed=7), "*", threads=1)
    second.fit(train_data, None)
    assert first.val_units == second.val_units
    assert first.evaluate(test_data) == second.evaluate(test_data)


@pytest.mark.parametrize("stop_on, watched", [("rul_rmse", "val_rul_rmse"), ("loss", "val_loss")])
def test_restored_weights_are_the_best_epoch_of_the_watched_metric(spec, train_data, stop_on, watched):
    model = spec.build(_tiny(spec, epochs=3, stop_on=stop_on, rul_mse_weight=1.0), "*", threads=1)
    fit = model.fit(train_data, None)
    scores = [row[watched] for row in fit.history]
    assert fit.best_epoch == 1 + int(np.argmin(scores))


def test_cancellation_stops_within_one_batch(spec, train_data):
    model = spec.build(_tiny(spec, epochs=5), "*", threads=1)
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    with pytest.raises(Cancelled):
        model.fit(train_data, None, should_stop=should_stop)
    assert calls["n"] == 3  # the third check raised; no batch ran after it


def test_single_sensor_target_forecasts_only_that_sensor(spec, train_data, test_data):
    model = spec.build(_tiny(spec, epochs=1), "s_11", threads=1)
    model.fit(train_data, None)
    result = model.forecast(test_data, units=[1])
    assert list(result.units[1].sensors) == ["s_11"]


def test_plugin_manager_lists_the_transformer_model():
    from turbofan_desktop.plugins.manager import get_plugin_manager

    spec = get_plugin_manager(refresh=True).model("transformer")
    assert spec.factory == "turbofan_transformer.ensemble:TransformerEnsemble"
    assert set(spec.tasks) == {"forecast", "rul"}


def test_inputs_relative_to_the_units_first_cycles():
    from turbofan_transformer.model import _since_baseline

    feats = np.array([[1.0, 5.0, 1.0], [3.0, 5.0, 0.0], [2.0, 8.0, 0.0], [6.0, 9.0, 0.0]], dtype=np.float32)
    delta = _since_baseline(feats, n_sensors=2, cycles=2)  # baseline = mean of rows 0-1: (2, 5)
    assert delta.shape == (4, 2)  # sensors only: the regime one-hot column is left alone
    np.testing.assert_allclose(delta, [[-1, 0], [1, 0], [0, 3], [4, 4]])
    short = _since_baseline(feats[:1], n_sensors=2, cycles=20)  # shorter than the baseline: all its rows
    np.testing.assert_allclose(short, [[0, 0]])


def test_rul_intervals_are_calibrated_near_failure():
    from turbofan_transformer.model import _near_failure

    remaining = np.arange(300, dtype=np.float32)
    assert _near_failure(remaining, 150.0).sum() == 151  # 0..150 cycles left
    assert _near_failure(remaining, 0.0).all()  # 0 = every window
    assert _near_failure(remaining[:40], 10.0).all()  # too few windows near failure: every window


def _calibrated_on(scores_model, remaining: np.ndarray, rul: np.ndarray) -> dict:
    """``_calibrate`` of ``scores_model`` on windows with these cycles left and these predicted RUL
    quantiles (the network is replaced by the given predictions; no forecast sensors)."""
    from turbofan_transformer.model import _Windows

    n = len(remaining)
    win = _Windows(
        x=np.zeros((n, 1, 1), np.float32),
        pad=np.zeros((n, 1), bool),
        base=np.zeros((n, 0), np.float32),
        unit_index=np.zeros(n, int),
        end=np.arange(n),
        remaining=remaining.astype(np.float32),
        future=np.zeros((n, 1, 0), np.float32),
        future_mask=np.ones((n, 1), bool),
        regime_last=np.zeros(n, int),
        regime_future=np.zeros((n, 1), int),
        units=[1],
    )
    scores_model.forecast_sensors = []
    scores_model._predict_windows = lambda _win: (rul, np.zeros((n, 1, 0, 3)))
    return scores_model._calibrate(win)


def test_rul_intervals_are_calibrated_per_band_of_the_predicted_rul():
    from turbofan_transformer.model import TransformerModel

    rng = np.random.default_rng(0)
    remaining = rng.uniform(0, 150, 6000)
    truth = np.minimum(remaining, 125.0)
    # the median errs by 2 cycles near failure and by 12 mid-life; the raw bounds are the median
    median = truth + rng.normal(0, 1, len(truth)) * np.where(truth < 125 / 3, 2.0, 12.0)
    rul = np.stack([median, median, median], axis=1)
    model = TransformerModel(TransformerConfig(calibrate_rul_bands=3))
    calibration = _calibrated_on(model, remaining, rul)
    np.testing.assert_allclose(calibration["rul_band_edges"], [125 / 3, 250 / 3])
    lower, upper = calibration["rul_lower_by_band"], calibration["rul_upper_by_band"]
    assert 2 * lower[0] < lower[1] and 2 * upper[0] < upper[1]  # narrow near failure only
    model.calibration = calibration
    out = model._calibrated_rul(rul)
    near, mid = median < 125 / 3, (median >= 125 / 3) & (median < 250 / 3)
    for inside in (near, mid):  # each band of predictions covers about 80 %, not only all together
        covered = (truth[inside] >= out[inside, 0]) & (truth[inside] <= out[inside, 2])
        assert 0.75 < covered.mean() < 0.86
    one_band = _calibrated_on(TransformerModel(TransformerConfig(calibrate_rul_bands=1)), remaining, rul)
    assert one_band["rul_band_edges"] == [] and len(one_band["rul_lower_by_band"]) == 1


def test_upper_bound_reaches_over_the_cap_for_engines_with_more_life_left():
    from turbofan_transformer.model import TransformerModel

    remaining = np.linspace(0, 150, 3001)
    truth = np.minimum(remaining, 125.0)
    rul = np.stack([truth - 5, truth, truth + 5], axis=1)  # a perfect model of the capped target
    capped = _calibrated_on(TransformerModel(TransformerConfig(uncapped_upper=False)), remaining, rul)
    uncapped = _calibrated_on(TransformerModel(TransformerConfig(uncapped_upper=True)), remaining, rul)
    assert capped["rul_upper_by_band"][2] <= 0.0  # +5 already covers the capped target
    # over a third of the top band's windows have 125-150 cycles left: the bound must reach up for them
    assert uncapped["rul_upper_by_band"][2] > 10.0
    assert uncapped["rul_upper_by_band"][0] == capped["rul_upper_by_band"][0]  # near failure: no change


def test_intervals_of_a_model_saved_before_the_bands_are_unchanged():
    from turbofan_transformer.model import TransformerModel

    model = TransformerModel(TransformerConfig())
    model.calibration = {"rul_lower": 3.0, "rul_upper": 4.0, "rul_upper_saturated": 10.0}
    out = model._calibrated_rul(np.array([[50.0, 60.0, 70.0], [110.0, 120.0, 124.0]]))
    np.testing.assert_allclose(out, [[47.0, 60.0, 74.0], [107.0, 120.0, 138.0]])


# -- ensembles --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ensemble(spec, train_data):
    model = spec.build(_tiny(spec, ensemble=2, seed=3), "*", threads=1)
    events = []
    fit = model.fit(train_data, None, progress=events.append)
    return model, fit, events


def test_ensemble_members_use_their_own_seeds_and_unit_splits(ensemble):
    model, fit, _ = ensemble
    assert [m.config.seed for m in model.members] == [3, 1003]
    assert all(m.config.ensemble == 1 for m in model.members)
    assert model.members[0].val_units != model.members[1].val_units
    assert fit.epochs_run == sum(len(m.history) for m in model.members) == 4
    assert {row["member"] for row in fit.history} == {0, 1}
    assert "ensemble of 2 members" in fit.notes[0]


def test_ensemble_averages_its_members_calibrated_values(ensemble, test_data):
    model, _, _ = ensemble
    members = [m.predict_rul(test_data) for m in model.members]
    result = model.predict_rul(test_data)
    for i, unit in enumerate(result.units):
        assert unit.rul == pytest.approx(np.mean([r.units[i].rul for r in members]))
        assert unit.lower == pytest.approx(np.mean([r.units[i].lower for r in members]))
        assert unit.upper == pytest.approx(np.mean([r.units[i].upper for r in members]))
    forecasts = [m.forecast(test_data, units=[2]).units[2].sensors["s_4"] for m in model.members]
    mean = model.forecast(test_data, units=[2]).units[2].sensors["s_4"]
    np.testing.assert_allclose(mean.median, np.mean([f.median for f in forecasts], axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean.lower, np.mean([f.lower for f in forecasts], axis=0), rtol=1e-6)


def test_ensemble_progress_is_overall_and_the_loss_curve_is_the_first_members(ensemble):
    _, _, events = ensemble
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # an epoch's event names its member; batch events within an epoch carry only the fraction
    assert all(e.message.startswith(("member 1/2", "member 2/2")) for e in events if e.message)
    assert all(e.epoch is None and e.train_loss is None for e in events if not e.message)
    assert all(e.epoch is None for e in events if e.message.startswith("member 2/2"))
    assert [e.epoch for e in events if e.message.startswith("member 1/2")] == [1, 2]


def test_same_seed_gives_the_same_ensemble_although_members_train_side_by_side(spec, train_data, test_data):
    results = []
    for _ in range(2):
        model = spec.build(_tiny(spec, ensemble=2, epochs=1, seed=5), "*", threads=1)
        model.fit(train_data, None)
        results.append([(u.rul, u.lower, u.upper) for u in model.predict_rul(test_data).units])
    assert results[0] == results[1]


def test_ensemble_save_load_round_trip(spec, ensemble, test_data, tmp_path):
    model, _, _ = ensemble
    model.save(tmp_path)
    assert (tmp_path / "ensemble.json").is_file()
    assert (tmp_path / "member-0" / "weights.pt").is_file() and (
        tmp_path / "member-1" / "meta.json"
    ).is_file()
    loaded = spec.load_factory().load(tmp_path, target="*", threads=1)
    assert loaded.config.ensemble == 2 and [m.config.seed for m in loaded.members] == [3, 1003]
    before, after = model.predict_rul(test_data), loaded.predict_rul(test_data)
    assert [(u.rul, u.lower, u.upper) for u in before.units] == [
        (u.rul, u.lower, u.upper) for u in after.units
    ]
    assert loaded.evaluate(test_data) == model.evaluate(test_data)


def test_a_model_saved_before_ensembles_loads_as_one_member(spec, trained, test_data, tmp_path):
    single, _, _ = trained
    single.save(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    del meta["config"]["ensemble"]  # as written before the setting existed
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    loaded = spec.load_factory().load(tmp_path, target="*", threads=1)
    assert loaded.config.ensemble == 1 and len(loaded.members) == 1
    assert [u.rul for u in loaded.predict_rul(test_data).units] == [
        u.rul for u in single.predict_rul(test_data).units
    ]


def test_cancelling_an_ensemble_stops_every_member(spec, train_data):
    model = spec.build(_tiny(spec, ensemble=2, epochs=50), "*", threads=1)
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    started = time.perf_counter()
    with pytest.raises(Cancelled):
        model.fit(train_data, None, should_stop=should_stop)
    assert time.perf_counter() - started < 30  # 50 epochs would take minutes


def test_a_failing_member_reports_its_error_not_a_cancel(spec, train_data):
    model = spec.build(_tiny(spec, ensemble=2, sensors=["s_99"]), "*", threads=1)
    with pytest.raises(ConfigError, match="s_99"):
        model.fit(train_data, None)
