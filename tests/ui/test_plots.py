"""PlotArea: pooled curves updated with setData, linked axes, crosshair and model overlays drawn from
hand-built result dataclasses (no model, no torch)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyqtgraph")

import pyqtgraph as pg  # noqa: E402

from turbofan_desktop.data.dataset import Dataset  # noqa: E402
from turbofan_desktop.plugins.contract import (  # noqa: E402
    AnomalyRange,
    DetectionResult,
    ForecastResult,
    RULResult,
    SensorForecast,
    UnitDetection,
    UnitForecast,
    UnitRUL,
)
from turbofan_desktop.ui.plot_area import PlotArea  # noqa: E402


def _dataset(units=(1, 2), cycles=80) -> Dataset:
    rows = []
    for unit in units:
        for cycle in range(1, cycles + 1):
            rows.append(
                {
                    "unit": unit,
                    "cycle": cycle,
                    "s_2": 640 + 0.02 * cycle + unit,
                    "s_3": 1580 + 0.1 * cycle,
                    "s_4": 1400 - 0.05 * cycle,
                }
            )
    frame = pd.DataFrame(rows)
    return Dataset(frame=frame, time_col="cycle", sensors=["s_2", "s_3", "s_4"], settings=[], format="test")


@pytest.fixture
def plot_area(qtbot):
    area = PlotArea()
    qtbot.addWidget(area)
    area.resize(900, 700)
    area.show()
    qtbot.waitExposed(area)
    return area


def _detection(target="s_2", unit=1, cycles=80) -> DetectionResult:
    time = np.arange(11, cycles + 1)
    errors = np.abs(np.sin(time / 5.0))
    anomalies = [
        AnomalyRange(start=30, end=36, score=2.5, start_index=19, end_index=25),
        AnomalyRange(start=60, end=64, score=4.25, start_index=49, end_index=53),
    ]
    detection = UnitDetection(
        unit=unit,
        time=time,
        actual=640 + 0.02 * time + unit,
        predicted=640 + 0.02 * time + unit + 0.1,
        errors=errors,
        smoothed=errors * 0.8,
        threshold=np.full(time.shape, 0.9),
        anomalies=anomalies,
    )
    return DetectionResult(target=target, units={np.int64(unit): detection})


def _forecast(unit=1, start=81, horizon=10) -> ForecastResult:
    time = np.arange(start, start + horizon)
    sensors = {
        name: SensorForecast(
            name, time, np.full(horizon, base), np.full(horizon, base - 1), np.full(horizon, base + 1)
        )
        for name, base in (("s_2", 643.0), ("s_3", 1588.0))
    }
    return ForecastResult(horizon=horizon, interval=0.8, units={unit: UnitForecast(unit, sensors)})


def test_curves_are_pooled_and_updated_with_set_data(plot_area):
    data = _dataset()
    plot_area.plot_dataset(data, [1, 2], ["s_2", "s_3"])
    first = plot_area.sensor_plot("s_2")
    curves_before = list(first.curves)
    assert [len(c.xData) for c in curves_before] == [80, 80]

    plot_area.plot_dataset(data, [2], ["s_4", "s_2", "s_3"])
    assert plot_area.shown_sensors == ["s_4", "s_2", "s_3"]
    # the first pooled plot now shows s_4 with the same curve objects, the second unit's curve hidden
    assert plot_area.sensor_plot("s_4") is first
    assert first.curves == curves_before
    assert len(first.curves[0].xData) == 80 and not first.curves[1].isVisible()
    np.testing.assert_allclose(first.curves[0].yData, data.unit_frame(2)["s_4"].to_numpy())


def test_plots_clip_downsample_and_link_x(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2", "s_3", "s_4"])
    plots = [plot_area.sensor_plot(s).plot for s in ("s_2", "s_3", "s_4")]
    for plot in plots + [plot_area.error_plot]:
        assert plot.clipToViewMode() is True
        _, auto, mode = plot.downsampleMode()
        assert auto is True and mode == "peak"
        for curve in plot.listDataItems():
            assert curve.opts["clipToView"] is True and curve.opts["downsampleMethod"] == "peak"
    assert plots[1].vb.linkedView(pg.ViewBox.XAxis) is plots[0].vb
    assert plot_area.error_plot.vb.linkedView(pg.ViewBox.XAxis) is plots[0].vb
    plots[0].setXRange(10, 20, padding=0)
    low, high = plots[2].vb.viewRange()[0]
    assert low == pytest.approx(10) and high == pytest.approx(20)


def test_crosshair_reports_values_of_each_sensor(plot_area):
    data = _dataset()
    plot_area.plot_dataset(data, [1], ["s_2", "s_3"])
    text = plot_area.crosshair_at(40.2)
    assert "cycle 40.2" in text
    assert f"s_2 {641 + 0.02 * 40:.6g}" in text and f"s_3 {1580 + 0.1 * 40:.6g}" in text
    assert plot_area.sensor_plot("s_3").crosshair.value() == pytest.approx(40.2)


def test_show_detection_draws_regions_scores_and_error_panel(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2", "s_3"])
    plot_area.show_detection(_detection(), 1)

    regions = plot_area.overlay_items("anomaly")
    assert [tuple(r.getRegion()) for r in regions] == [(30.0, 36.0), (60.0, 64.0)]
    assert all(isinstance(r, pg.LinearRegionItem) for r in regions)
    target = plot_area.sensor_plot("s_2").plot
    assert all(r in target.items for r in regions)
    assert [label.textItem.toPlainText() for label in plot_area.overlay_items("anomaly_label")] == [
        "2.50",
        "4.25",
    ]
    assert plot_area.error_widget.isVisible()
    np.testing.assert_allclose(plot_area.error_threshold.yData, 0.9)
    assert len(plot_area.error_smoothed.xData) == 70
    assert plot_area.sensor_plot("s_2").predicted.isVisible()


def test_inverted_pass_ranges_are_drawn_apart_from_high_ones(plot_area):
    from turbofan_desktop.ui.plot_area import ANOMALY_BRUSH, LOW_ANOMALY_BRUSH

    result = _detection()
    result.units[np.int64(1)].anomalies[1].direction = "low"
    plot_area.plot_dataset(_dataset(), [1], ["s_2"])
    plot_area.show_detection(result, 1)

    high, low = plot_area.overlay_items("anomaly")
    assert high.brush.color().getRgb() == ANOMALY_BRUSH
    assert low.brush.color().getRgb() == LOW_ANOMALY_BRUSH
    assert "low" in low.toolTip() and "low" not in high.toolTip()


def test_show_detection_adds_the_target_sensor_when_not_shown(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_3"])
    plot_area.show_detection(_detection(target="s_2"), 1)
    assert plot_area.shown_sensors == ["s_3", "s_2"]
    assert len(plot_area.overlay_items("anomaly")) == 2


def test_show_forecast_continues_the_series_with_a_band(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2", "s_3", "s_4"])
    y_before = plot_area.sensor_plot("s_2").plot.vb.viewRange()[1]
    plot_area.show_forecast(_forecast(), 1)

    entry = plot_area.sensor_plot("s_2")
    x, y = entry.forecast.xData, entry.forecast.yData
    assert x[0] == 80 and y[0] == pytest.approx(641 + 0.02 * 80)  # starts at the last observation
    np.testing.assert_allclose(x[1:], np.arange(81, 91))
    np.testing.assert_allclose(y[1:], 643.0)
    assert entry.forecast.isVisible() and entry.band.isVisible()
    assert isinstance(entry.band, pg.FillBetweenItem)
    np.testing.assert_allclose(entry.band_upper.yData[1:], 644.0)
    assert not plot_area.sensor_plot("s_4").forecast.isVisible()  # no forecast for s_4
    low, _ = entry.plot.vb.viewRange()[1]
    assert low > y_before[0] - 5  # the band does not drag the y range towards zero


def test_show_rul_writes_estimate_and_marks_end_of_life(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2", "s_3"])
    plot_area.show_rul(RULResult(0.8, [UnitRUL(unit=1, rul=42.0, lower=30.0, upper=55.0, true_rul=40.0)]), 1)

    text = plot_area.rul_label.text()
    assert "RUL 42" in text and "30–55" in text and "80 %" in text and "true RUL 40" in text
    lines = [i for i in plot_area.overlay_items("rul") if isinstance(i, pg.InfiniteLine)]
    bands = [i for i in plot_area.overlay_items("rul") if isinstance(i, pg.LinearRegionItem)]
    assert {line.value() for line in lines} == {80 + 42.0}
    assert {tuple(b.getRegion()) for b in bands} == {(110.0, 135.0)}
    assert plot_area.sensor_plot("s_2").plot.vb.viewRange()[0][1] >= 80 + 42  # the estimate is in view


def test_clear_overlays_removes_everything_but_the_data(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2", "s_3"])
    plot_area.show_detection(_detection(), 1)
    plot_area.show_forecast(_forecast(), 1)
    plot_area.show_rul(RULResult(0.8, [UnitRUL(1, 10.0, 5.0, 20.0)]), 1)
    entry = plot_area.sensor_plot("s_2")
    items_with_overlays = len(entry.plot.items)

    plot_area.clear_overlays()
    assert plot_area.overlay_items() == []
    assert not plot_area.error_widget.isVisible() and not plot_area.rul_label.isVisible()
    assert not entry.forecast.isVisible() and not entry.band.isVisible() and not entry.predicted.isVisible()
    assert len(entry.plot.items) < items_with_overlays
    assert len(entry.curves[0].xData) == 80


def test_unknown_unit_is_reported_not_raised(plot_area):
    plot_area.plot_dataset(_dataset(), [1], ["s_2"])
    plot_area.show_detection(_detection(unit=1), 7)
    plot_area.show_forecast(_forecast(unit=1), 7)
    plot_area.show_rul(RULResult(0.8, [UnitRUL(1, 10.0, 5.0, 20.0)]), 7)
    assert plot_area.overlay_items("anomaly") == []
    assert "unit 7" in plot_area.rul_label.text()


def test_peak_pyramid_keeps_every_extreme_with_about_one_block_per_pixel():
    from turbofan_desktop.ui.plot_area import PeakPyramid

    rng = np.random.default_rng(1)
    values = np.cumsum(rng.standard_normal(1_234_567))
    values[700_001] = 1e6  # a one-sample spike must survive any zoom level
    time = np.arange(len(values), dtype=np.float64)
    pyramid = PeakPyramid(time, values)
    for x0, x1 in ((0, len(values)), (600_000, 800_000), (700_000, 700_500)):
        x, y = pyramid.view(x0, x1, 1000)
        inside = values[int(x0) : int(x1) + 1]
        assert y.max() == inside.max() and y.min() <= inside.min()
        assert len(x) <= 2 * 1000 * PeakPyramid.FACTOR + 16
        assert np.all(np.diff(x) >= 0)


def test_long_series_are_drawn_from_the_pyramid_and_follow_the_view(plot_area):
    from turbofan_desktop.ui.plot_area import PYRAMID_MIN_POINTS, Series

    n = PYRAMID_MIN_POINTS + 5
    time = np.arange(n, dtype=np.float64)
    values = np.sin(time / 1000.0)
    plot_area.plot_series({"long": [Series(0, time, values)]})
    entry = plot_area.sensor_plot("long")
    curve = entry.curves[0]
    assert 0 in entry.pyramids and len(curve.xData) < n // 100
    entry.plot.setXRange(1000, 3000, padding=0)
    assert curve.xData[0] <= 1000 and curve.xData[-1] >= 2999 and curve.xData[-1] < 4000
    plot_area.plot_series({"long": [Series(0, time[:100], values[:100])]})  # a short series again
    assert entry.pyramids == {} and len(curve.xData) == 100
