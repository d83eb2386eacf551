"""The Telemanom model on real data slices: tiny fits, cancellation, persistence, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.readers import read_dataset
from turbofan_desktop.errors import Cancelled, ConfigError, InsufficientDataError, ModelNotTrainedError
from turbofan_desktop.plugins.contract import DetectionResult, build_config
from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_telemanom.model import split_windows

TINY = {
    "l_s": 20,
    "n_predictions": 3,
    "lstm_units": "8,8",
    "epochs": 1,
    "batch_size": 32,
    "predict_batch_size": 20,
    "window_size": 10,
    "error_buffer": 5,
}


def _model(target: str, **overrides):
    spec = get_plugin_manager().model("telemanom")
    return spec.build(build_config(spec.config_class, {**TINY, **overrides}), target, threads=1)


def _rows(data: Dataset, first: int, last: int) -> Dataset:
    frame = data.frame.iloc[first:last].reset_index(drop=True)
    return data.with_frame(frame, {"step": "rows", "first": first, "last": last})


@pytest.fixture
def fd001(sample_dir):
    return read_dataset(sample_dir / "train_FD001.txt")


@pytest.fixture
def a1(smap_msl_dir):
    train = read_dataset(smap_msl_dir / "train" / "A-1.npy")
    test = read_dataset(smap_msl_dir / "test" / "A-1.npy")
    return _rows(train, 0, 400), _rows(test, 0, 300)


def _sine(n: int, shift_at: int | None = None) -> Dataset:
    values = np.sin(np.arange(n) / 6.0)
    if shift_at is not None:
        values[shift_at : shift_at + 25] += 4.0
    frame = pd.DataFrame({"unit": "s", "step": np.arange(100, 100 + n), "value": values})
    return Dataset(frame=frame, time_col="step", sensors=["value"], settings=[], format="test")


def test_spec_and_config_defaults_are_the_papers():
    spec = get_plugin_manager().model("telemanom")
    config = build_config(spec.config_class)
    assert (config.l_s, config.n_predictions, config.lstm_units, config.dropout) == (250, 10, (80, 80), 0.3)
    assert (config.batch_size, config.epochs, config.patience, config.min_delta) == (64, 35, 10, 3e-4)
    assert (config.validation_split, config.predict_batch_size, config.smoothing_window) == (0.2, 70, 105)
    assert (config.error_buffer, config.p, config.z_min, config.z_max) == (100, 0.13, 2.5, 12.0)
    with pytest.raises(ConfigError, match="z_min"):
        build_config(spec.config_class, {"z_min": 5, "z_max": 3})
    with pytest.raises(ConfigError):
        build_config(spec.config_class, {"features": "everything"})


def test_tiny_fit_and_detect_on_a_smap_channel(a1):
    train, test = a1
    model = _model("value")
    events = []
    result = model.fit(train, None, progress=events.append)
    assert result.epochs_run == 1 and result.seed == 0
    assert events[-1].epoch == 1 and events[-1].train_loss > 0 and events[-1].val_loss is not None
    assert model.features[0] == "value" and len(model.features) == 25  # value + 24 command columns
    assert any("input scaling: none" in note for note in result.notes)  # telemetry is pre-scaled
    detection = model.detect(test)
    assert isinstance(detection, DetectionResult)
    unit = detection.units["A-1"]
    assert len(unit.errors) == len(unit.smoothed) == len(unit.threshold) == 300 - 20
    assert unit.time[0] == 20  # the first scored step follows the first full input window
    for found in unit.anomalies:
        assert unit.time[0] <= found.start <= found.end <= 299
        assert found.start_index - 20 >= 0
    metrics = model.evaluate(test)
    assert metrics["prediction_mse"] >= 0 and 0 <= metrics["anomaly_share"] <= 1


def test_validation_is_a_random_share_as_the_authors_held_out():
    """The authors shuffle their windows before Keras' validation_split takes the last 20 %: the
    held-out windows are spread over the whole series and split at int(n * 0.8), as Keras does."""
    spec = get_plugin_manager().model("telemanom")
    assert build_config(spec.config_class).validation_pick == "random"
    starts = {"u": np.arange(179)}
    train, val = split_windows(starts, 0.2, "random", np.random.default_rng(0))
    assert (len(train), len(val)) == (143, 36)  # int(179 * 0.8) = 143
    assert sorted([*train, *val]) == list(range(179))
    assert val.min() < 90 < val.max()  # not the end of the series only
    again = split_windows(starts, 0.2, "random", np.random.default_rng(0))[1]
    np.testing.assert_array_equal(val, again)  # seeded
    two_units = {"u": np.arange(100), "v": np.arange(100, 150)}
    _, newest = split_windows(two_units, 0.2, "newest", np.random.default_rng(0))
    assert list(newest) == [*range(80, 100), *range(140, 150)]  # the temporal alternative


def test_only_windows_with_a_whole_target_are_thresholded(a1):
    """The authors build test windows only where all n_predictions targets exist, so the last
    n_predictions errors are reported but carry no threshold and cannot be flagged."""
    train, test = a1
    model = _model("value")
    model.fit(train, None)
    unit = model.detect(test).units["A-1"]
    n_pred = model.config.n_predictions
    assert len(unit.errors) == len(unit.smoothed) == len(unit.threshold) == 300 - 20
    assert np.isnan(unit.threshold[-n_pred:]).all() and np.isfinite(unit.threshold[:-n_pred]).all()
    assert np.isfinite(unit.smoothed).all()
    assert all(found.end_index <= 299 - n_pred for found in unit.anomalies)


def test_tiny_fit_on_fd001_scales_to_turbofan_and_reports_lead_times(fd001):
    units = fd001.units
    model = _model("s_11", l_s=250, predict_batch_size=70, window_size=30, error_buffer=100)
    result = model.fit(fd001.subset(units[:4]), fd001.subset(units[4:6]))
    shortest = int(fd001.subset(units[:4]).unit_lengths().min())
    assert model.config.l_s == min(50, max(10, shortest // 4))  # the documented turbofan rule
    assert model.config.window_size == 10 and model.config.error_buffer == 5
    assert any("first 50%" in note for note in result.notes)
    assert model.features[0] == "s_11" and "s_1" not in model.features  # constant sensors left out
    metrics = model.evaluate(fd001.subset(units[6:9]))
    assert {"prediction_mse", "lead_time_median", "alarmed_share", "false_alarm_share"} <= set(metrics)
    detection = model.detect(fd001.subset(units[6:7]))
    unit = detection.units[units[6]]
    l_s = model.config.l_s
    assert unit.time[0] == l_s + 1  # cycles start at 1; the first l_s are input only
    assert np.allclose(unit.actual, fd001.unit_frame(units[6])["s_11"].to_numpy()[l_s:])


def test_planted_shift_is_reported_on_the_datas_time_axis():
    model = _model("value", epochs=3, scaling="none")
    model.fit(_sine(600), None)
    detection = model.detect(_sine(400, shift_at=250))
    anomalies = detection.units["s"].anomalies
    assert anomalies, "a +4 shift on a unit sine must be flagged"
    assert any(a.start <= 100 + 250 + 24 and a.end >= 100 + 250 for a in anomalies)
    assert all(a.start_index >= 20 for a in anomalies)


def test_cancel_stops_within_one_batch(a1):
    train, _ = a1
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    model = _model("value", batch_size=8)
    with pytest.raises(Cancelled):
        model.fit(train, None, should_stop=should_stop)
    assert len(calls) == 4  # three batches trained, stopped before the fourth


def test_save_load_round_trip_gives_identical_detections(a1, tmp_path):
    train, test = a1
    model = _model("value")
    model.fit(train, None)
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"weights.pt", "meta.json"}
    loaded = type(model).load(tmp_path / "m", config=model.config, target="value", threads=1)
    first, second = model.detect(test).units["A-1"], loaded.detect(test).units["A-1"]
    np.testing.assert_array_equal(first.errors, second.errors)
    np.testing.assert_array_equal(first.threshold, second.threshold)
    assert [(a.start, a.end) for a in first.anomalies] == [(a.start, a.end) for a in second.anomalies]


def test_same_seed_same_model_other_seed_other_model(a1):
    train, _ = a1
    runs = []
    for seed in (3, 3, 4):
        model = _model("value", seed=seed)
        runs.append(model.fit(train, None).history[0]["train_loss"])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_units_too_short_and_untrained_model_are_user_errors(fd001):
    with pytest.raises(InsufficientDataError, match="shorter than the model window"):
        _model("s_11", l_s=50, auto_scale=False, healthy_fraction=0.2).fit(fd001.subset([1]), None)
    with pytest.raises(ModelNotTrainedError):
        _model("s_11").detect(fd001)


def test_lstm_weights_start_as_keras_draws_them_on_whole_matrices():
    """Issue 24: Keras draws each LSTM's kernel (inputs x 4 hidden) as one Glorot-uniform matrix and
    its recurrent kernel (hidden x 4 hidden) as one orthogonal matrix; one bias, forget gate 1."""
    import torch

    from turbofan_telemanom.model import TelemanomNet

    torch.manual_seed(0)
    inputs, hidden = 25, 80
    net = TelemanomNet(inputs, (hidden, hidden), 0.3, 10)
    for lstm, fan_in in zip(net.lstms, (inputs, hidden), strict=True):
        recurrent = lstm.weight_hh_l0.detach().double()  # Keras' recurrent kernel, transposed
        np.testing.assert_allclose((recurrent.T @ recurrent).numpy(), np.eye(hidden), atol=1e-6)
        for gate in range(4):  # a quarter of one orthogonal matrix: squared singular values average 1/4
            block = recurrent[gate * hidden : (gate + 1) * hidden]
            assert 0.2 < float((block**2).sum()) / hidden < 0.3
        kernel = lstm.weight_ih_l0.detach().double()  # Keras' kernel, transposed
        limit = (6.0 / (fan_in + 4 * hidden)) ** 0.5
        assert float(kernel.abs().max()) <= limit
        assert float(kernel.var()) == pytest.approx(limit**2 / 3, rel=0.05)
        bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
        np.testing.assert_array_equal(bias, np.repeat([0.0, 1.0, 0.0, 0.0], hidden))
        assert not lstm.bias_hh_l0.requires_grad  # one trainable bias, as in Keras
    head_limit = (6.0 / (hidden + 10)) ** 0.5
    assert float(net.head.weight.detach().abs().max()) <= head_limit and not net.head.bias.detach().any()


def test_training_moves_one_bias_per_lstm(a1):
    train, _ = a1
    model = _model("value")
    model.fit(train, None)
    for lstm in model.net.lstms:
        assert not lstm.bias_hh_l0.detach().any()
        assert lstm.bias_ih_l0.detach()[8:16].ne(1.0).any()  # the trainable bias did move


def test_adam_adds_epsilon_as_keras_does():
    """Keras' Adam: step = lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). With a gradient
    of the size of eps the first step is about a quarter of torch.optim.Adam's."""
    import math

    import torch

    from turbofan_telemanom.model import KerasAdam

    lr, eps = 1e-3, 1e-7
    for grad in (1e-6, 1e-2):
        ours, theirs = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        keras_adam, torch_adam = KerasAdam([ours], lr=lr), torch.optim.Adam([theirs], lr=lr, eps=eps)
        for param, optimiser in ((ours, keras_adam), (theirs, torch_adam)):
            param.grad = torch.full((1,), grad)
            optimiser.step()
        ours, theirs = ours.detach(), theirs.detach()
        m, v = 0.1 * grad, 0.001 * grad**2
        expected = -lr * math.sqrt(1 - 0.999) / (1 - 0.9) * m / (math.sqrt(v) + eps)
        assert ours.item() == pytest.approx(expected, rel=1e-5)
        if grad == 1e-6:
            assert abs(ours.item()) < 0.3 * abs(theirs.item())
        else:  # eps is negligible beside large gradients: both take a step of about lr
            assert ours.item() == pytest.approx(theirs.item(), rel=1e-3)


def test_progress_moves_within_an_epoch():
    """Issue 17: a long first epoch must not sit at 0 %: batch events carry the overall fraction
    only (no epoch, loss or message: loss curves and logs read the finished epochs)."""
    events = []
    model = _model("value", batch_size=8, epochs=2)
    model.fit(_sine(400), None, progress=events.append)
    fits = [e for e in events if e.stage == "fit"]
    first_epoch = next(i for i, e in enumerate(fits) if e.epoch == 1)
    within = fits[:first_epoch]
    assert len(within) >= 10 and all(e.epoch is None and not e.message for e in within)
    fractions = [e.fraction for e in within]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] < 0.5
    assert [e.epoch for e in fits if e.epoch is not None] == [1, 2]
    second = [e.fraction for e in fits[first_epoch + 1 :] if e.epoch is None]
    assert second and all(0.5 < f < 1.0 for f in second)
