"""Readable plots (issue 17): a legend for every kind of model overlay, a visible forecast band,
x-only wheel zoom, a crosshair that leaves with the mouse, the file named above the plots, and a
per-regime view of multi-regime files (FD002-like)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from services_helpers import SAMPLE_DIR, multi_regime_copy  # noqa: E402

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
from turbofan_desktop.services.data import load_dataset, regime_view  # noqa: E402
from turbofan_desktop.ui.plot_area import BAND_BRUSH, PlotArea  # noqa: E402

SENSORS = ["s_2", "s_3", "s_4", "s_7", "s_11"]


@pytest.fixture
def area(qtbot):
    widget = PlotArea()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def sample(workspace):
    return load_dataset(workspace, SAMPLE_DIR / "test_FD001.txt")


def _results(data):
    frame = data.frame[data.frame.unit == 1]
    t, y = frame.cycle.to_numpy(), frame.s_11.to_numpy()
    n = len(t)
    detection = UnitDetection(
        1, t, y, y, np.ones(n), np.ones(n), np.full(n, 2.0),
        [AnomalyRange(int(t[5]), int(t[9]), 2.5, 5, 9), AnomalyRange(int(t[15]), int(t[18]), 1.2, 15, 18, direction="low")],
    )  # fmt: skip
    ahead = np.arange(t[-1] + 1, t[-1] + 11)
    forecasts = {
        s: SensorForecast(s, ahead, np.full(10, 1.0), np.full(10, 0.5), np.full(10, 1.5)) for s in SENSORS
    }
    return (
        DetectionResult("s_11", {1: detection}),
        ForecastResult(10, 0.8, {1: UnitForecast(1, forecasts)}),
        RULResult(0.8, [UnitRUL(1, 90.0, 60.0, 120.0)]),
    )


def test_every_overlay_kind_has_a_legend_entry_and_the_band_is_visible(area, sample):
    area.plot_dataset(sample, [1], SENSORS)
    detection, forecast, rul = _results(sample)
    area.show_detection(detection, 1)
    area.show_forecast(forecast, 1)
    area.show_rul(rul, 1)
    assert area.overlay_legend_names() == [
        "anomaly (error above threshold)",
        "unusually low error",
        "predicted",
        "forecast (median)",
        "forecast 80 % band",
        "estimated end of life (RUL)",
        "RUL 80 % interval",
    ]
    assert area.overlay_legend.isVisible() and "80 % band" in area.overlay_legend.text()
    assert area.error_legend_names == ["error", "smoothed error", "threshold"]
    title = area.error_plot.titleLabel.text
    assert all(name in title for name in area.error_legend_names)  # in the pane's title line
    assert BAND_BRUSH[3] >= 90  # was 80 on a white plot: barely there
    entry = area.sensor_plot("s_2")
    assert entry.band.isVisible() and entry.band_upper.isVisible()  # the band's edges are drawn too
    area.grab().save("/tmp/i17/plot_legends.png")
    area.clear_overlays()
    assert area.overlay_legend_names() == [] and not area.overlay_legend.isVisible()


def test_the_wheel_zooms_time_only(area, sample, qtbot):
    area.plot_dataset(sample, [1], ["s_2"])
    box = area.sensor_plot("s_2").plot.vb
    assert box.state["mouseEnabled"] == [True, False]
    (x0, x1), (y0, y1) = box.viewRange()
    viewport = area.graphics.viewport()
    centre = area.graphics.mapFromScene(box.mapViewToScene(QPointF((x0 + x1) / 2, (y0 + y1) / 2)))
    event = QWheelEvent(
        QPointF(centre), QPointF(viewport.mapToGlobal(centre)), QPoint(0, 0), QPoint(0, 240),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(viewport, event)
    qtbot.wait(50)
    (nx0, nx1), _ = box.viewRange()
    assert nx1 - nx0 < 0.9 * (x1 - x0)  # zoomed in on time
    assert box.state["autoRange"][1]  # y still follows the data shown


def test_the_crosshair_leaves_with_the_mouse_and_with_new_data(area, sample):
    area.plot_dataset(sample, [1], SENSORS)
    area.crosshair_at(20.0)
    assert area.crosshair_visible()
    QApplication.sendEvent(area.graphics, QEvent(QEvent.Type.Leave))
    assert not area.crosshair_visible()
    area.crosshair_at(25.0)
    area.plot_dataset(sample, [2], SENSORS)
    assert not area.crosshair_visible()


def test_the_file_is_named_above_the_plots(area, sample):
    area.plot_dataset(sample, [1], ["s_2"])
    assert area.info_label.text() == "test_FD001.txt — unit 1: s_2"
    assert area.crosshair_at(10.0).startswith("test_FD001.txt — unit 1: cycle 10")


def test_multi_regime_file_normalised_and_coloured_per_regime(area, workspace, tmp_path):
    data = load_dataset(
        workspace, multi_regime_copy(SAMPLE_DIR / "test_FD001.txt", tmp_path / "fd002_like.txt")
    )
    view = regime_view(data)
    assert view.n_regimes == 3 and view.normalised is not None
    area.plot_dataset(data, [1], ["s_2", "s_11"])
    assert area.regime_bar.isVisibleTo(area) and "3 operating regimes" in area.regime_legend.text()
    raw = area.sensor_plot("s_2").series[0].values.copy()
    area.normalise_check.setChecked(True)
    normalised = area.sensor_plot("s_2").series[0].values
    assert raw.std() > 20 and normalised.std() < 3 and abs(normalised.mean()) < 1.0  # the zig-zag is gone
    assert "normalised per operating regime" in area.info_label.text()
    # per regime, the whole file's values have mean 0 and spread 1
    labels = view.labels
    column = view.normalised.frame["s_2"].to_numpy()
    for regime in range(3):
        assert abs(column[labels == regime].mean()) < 1e-6
    area.regime_colour_check.setChecked(True)
    assert len(area._regime_items) == 2 * 3  # one scatter per (plot, regime)
    assert "regimes:" in area.regime_legend.text()
    area.grab().save("/tmp/i17/regimes_toggle.png")
    area.regime_colour_check.setChecked(False)
    assert area._regime_items == []


def test_single_regime_file_offers_no_regime_view(area, sample):
    area.plot_dataset(sample, [1], ["s_2"])
    assert not area.regime_bar.isVisibleTo(area)
    assert regime_view(sample).normalised is None


def test_the_verdict_line_goes_with_the_overlays(area, sample):
    area.plot_dataset(sample, [1], ["s_2"])
    area.show_applicability(
        "telemanom/s_2 v1 (#3)", "caution", "use with caution: a few values …", ["a", "b"]
    )
    area.show_applicability("transformer/* v1 (#4)", "ok", "applicable", [])
    assert area.applicability_label.isVisible() and area.verdict == "caution"  # the worst of those shown
    assert area.applicability_label.text().splitlines() == [
        "telemanom/s_2 v1 (#3): use with caution: a few values …",
        "transformer/* v1 (#4): applicable",
    ]
    assert area.applicability_label.toolTip().splitlines()[0] == "telemanom/s_2 v1 (#3): a; b"
    area.clear_overlays()
    assert not area.applicability_label.isVisible() and area.verdict == ""
