"""The plot area: sensors of the selected unit(s) on their own time axis, with model overlays.

One :class:`SensorPlot` per shown sensor, stacked with linked x axes, plus a lower panel for the
smoothed prediction error and its threshold. Every data series is one pyqtgraph curve object created
once and updated with ``setData`` (pyqtgraph's advice for speed); plots are kept in a pool and reused
when the selection changes. Large files stay fluid through ``setClipToView(True)`` and peak
downsampling, which draw only the visible range at about one point per pixel column.

Model results arrive as the plain dataclasses of :mod:`turbofan_desktop.plugins.contract`; the other
half of the UI calls :meth:`PlotArea.show_detection`, :meth:`PlotArea.show_forecast`,
:meth:`PlotArea.show_rul` and :meth:`PlotArea.clear_overlays`.

User feedback on detections: a right-click on a plot where a detected range or a label lies emits
:attr:`PlotArea.region_context_requested` (a :class:`RegionContext`; whoever stores labels builds the
menu); Shift+drag, or *Mark missed anomaly here* in the plot's own context menu followed by
*Confirm*, emits :attr:`PlotArea.range_selected`. Labels are drawn with
:meth:`PlotArea.add_label_overlay` / :meth:`PlotArea.clear_label_overlays`, each style apart by
outline, hatching and a text tag (not by colour alone), with a legend.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent, MouseDragEvent
from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from turbofan_desktop.services.data import RegimeView, regime_view
from turbofan_desktop.services.session import Unit

if TYPE_CHECKING:
    from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, ForecastResult, RULResult
    from turbofan_desktop.services.session import Dataset, LabelRecord

V = TypeVar("V")
RGB = tuple[int, int, int]

UNIT = "unit"

ANOMALY_BRUSH = (220, 40, 40, 55)
# Ranges from Telemanom's inverted pass (the error fell unusually low) in violet, so they do not read
# as "the error crossed the threshold drawn below".
LOW_ANOMALY_BRUSH = (130, 60, 200, 50)
LOW_ANOMALY_COLOR = (100, 40, 170)
ANOMALY_PEN = (220, 40, 40, 160)
FORECAST_PEN = pg.mkPen((255, 140, 0), width=2, style=Qt.PenStyle.DashLine)
BAND_BRUSH = (255, 140, 0, 95)
BAND_EDGE_PEN = pg.mkPen((230, 120, 0, 170), width=1)
RUL_BRUSH = (90, 90, 200, 40)
RUL_PEN = pg.mkPen((60, 60, 180), width=2, style=Qt.PenStyle.DotLine)
THRESHOLD_PEN = pg.mkPen((220, 40, 40), width=2, style=Qt.PenStyle.DashLine)
AXIS_LABEL_STYLE = {"font-size": "8pt"}
#: colours of the operating regimes (Okabe-Ito: apart for colour-blind readers too)
REGIME_COLORS = (
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
)
PREDICTED_PEN = pg.mkPen((0, 150, 80), width=1, style=Qt.PenStyle.DashLine)

# Feedback labels (Okabe-Ito colours, safe for colour-blind readers; each also differs by line style,
# fill and its text tag): label name -> (colour, pen style, fill, text)
LABEL_STYLES: dict[str, tuple[tuple[int, int, int], Qt.PenStyle, Qt.BrushStyle, str]] = {
    "true_anomaly": ((0, 158, 115), Qt.PenStyle.SolidLine, Qt.BrushStyle.NoBrush, "true anomaly"),
    "false_alarm": ((90, 90, 90), Qt.PenStyle.DashLine, Qt.BrushStyle.BDiagPattern, "false alarm"),
    "missed_anomaly": ((230, 159, 0), Qt.PenStyle.SolidLine, Qt.BrushStyle.Dense6Pattern, "missed anomaly"),
}
PENDING_BRUSH = (230, 159, 0, 40)
#: applicability verdict -> (text colour, background) of the line above the plots
VERDICT_COLOURS: dict[str, tuple[RGB, RGB]] = {
    "ok": ((20, 100, 40), (225, 242, 228)),
    "caution": ((120, 80, 0), (253, 240, 205)),
    "out_of_scope": ((150, 20, 20), (250, 222, 222)),
}


@dataclass
class RegionContext:
    """What lies under a right-click: the detected ranges and labels there (and the pending missed
    selection when the click hit it); ``screen_pos`` is where a menu should open (None in tests)."""

    sensor: str
    x: float
    anomalies: list[AnomalyRange] = field(default_factory=list)  # ranges of the shown detection
    labels: list[LabelRecord] = field(default_factory=list)  # label entries drawn there
    pending: tuple[float, float] | None = None
    screen_pos: QPoint | None = None


class FeedbackViewBox(pg.ViewBox):
    """A ViewBox that hands right-clicks on ranges and Shift+drags to its :class:`PlotArea`."""

    def __init__(self, area: PlotArea):
        super().__init__()
        self._area = area
        self._sensor_of: SensorPlot | None = None  # set by the area: the SensorPlot this box belongs to
        self._menu_x = 0.0
        self._selecting = False  # inside a Shift+drag range selection
        self.mark_missed_action = self.menu.addAction("Mark missed anomaly here (or Shift+drag)…")
        self.mark_missed_action.setObjectName("markMissedAction")
        self.mark_missed_action.setVisible(False)
        self.mark_missed_action.triggered.connect(
            lambda: self._area.begin_missed_selection(self._sensor(), self._menu_x)
        )

    def _sensor(self) -> str:
        return self._sensor_of.sensor if self._sensor_of is not None else ""

    def raiseContextMenu(self, ev: MouseClickEvent) -> None:  # noqa: N802 (pyqtgraph's name)
        x = float(self.mapSceneToView(ev.scenePos()).x())
        self._menu_x = x
        if self._area.request_region_context(self._sensor(), x, ev.screenPos().toPoint()):
            return
        self.mark_missed_action.setVisible(self._area.feedback_enabled)
        super().raiseContextMenu(ev)

    def mouseDragEvent(self, ev: MouseDragEvent, axis: int | None = None) -> None:  # noqa: N802 (pyqtgraph's name)
        """A left drag that *starts* with Shift held selects a range until the button is released,
        whatever Shift does meanwhile; every other drag pans and zooms as usual."""
        if ev.isStart():
            self._selecting = (
                axis is None
                and bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
                and ev.button() == Qt.MouseButton.LeftButton
                and self._area.feedback_enabled
            )
        if not self._selecting:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        x0 = float(self.mapToView(ev.buttonDownPos()).x())
        x1 = float(self.mapToView(ev.pos()).x())
        if ev.isFinish():
            self._selecting = False
        self._area.drag_selection(self._sensor(), x0, x1, finished=ev.isFinish())


#: distinct, print-friendly colours (matplotlib's "tab10") for the units plotted together
UNIT_COLORS = (
    (31, 119, 180),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def unit_color(index: int) -> RGB:
    return UNIT_COLORS[index % len(UNIT_COLORS)]


def lookup_unit(mapping: Mapping[Unit, V], unit: Unit) -> V | None:
    """``mapping[unit]`` tolerating numpy/int/str spellings of the same unit id; None when absent."""
    if unit in mapping:
        return mapping[unit]
    text = str(unit)
    for key, value in mapping.items():
        if str(key) == text:
            return value
    return None


def as_float_time(values: npt.ArrayLike) -> np.ndarray:
    """Time values as float64 for plotting: cycles/steps as is, timestamps as epoch seconds."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ns]").astype(np.int64) / 1e9
    return array.astype(np.float64, copy=False)


@dataclass
class Series:
    """One unit's values of one sensor, as plotted."""

    unit: Unit
    time: np.ndarray
    values: np.ndarray
    regimes: np.ndarray | None = None  # operating regime of each point (multi-regime files)


class PeakPyramid:
    """Min and max of blocks of 8, 64, 512, … points of one long series, computed once.

    pyqtgraph's peak downsampling scans every visible point on each frame: ~20 ms for a fully
    zoomed-out 10-million-point channel. The pyramid answers a view with about one block per pixel
    column from the level that fits, so a frame costs O(pixels) whatever the zoom.
    """

    BASE = 8
    FACTOR = 8

    def __init__(self, time: np.ndarray, values: np.ndarray):
        self.time = time
        self.values = values
        self.levels: list[tuple[int, np.ndarray, np.ndarray]] = []  # (block size, mins, maxs)
        block, mins, maxs = self.BASE, values, values
        step = self.BASE
        while len(mins) >= 2 * step:
            mins, maxs = self._reduce(mins, maxs, step)
            self.levels.append((block, mins, maxs))
            block *= self.FACTOR
            step = self.FACTOR

    @staticmethod
    def _reduce(mins: np.ndarray, maxs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        whole = len(mins) // step * step
        low = mins[:whole].reshape(-1, step).min(axis=1)
        high = maxs[:whole].reshape(-1, step).max(axis=1)
        if whole < len(mins):  # the partial block at the end
            low = np.append(low, mins[whole:].min())
            high = np.append(high, maxs[whole:].max())
        return low, high

    def view(self, x0: float, x1: float, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """Points to draw for the x range [x0, x1] on ``pixels`` columns (min/max pairs per block)."""
        n = len(self.time)
        i0 = max(0, int(np.searchsorted(self.time, x0, side="left")) - 1)
        i1 = min(n, int(np.searchsorted(self.time, x1, side="right")) + 1)
        per_pixel = (i1 - i0) / max(1, pixels)
        usable = [level for level in self.levels if level[0] <= per_pixel]
        if not usable:
            return self.time[i0:i1], self.values[i0:i1]
        block, mins, maxs = usable[-1]
        b0, b1 = i0 // block, min(len(mins), -(-i1 // block))
        starts = np.arange(b0, b1) * block
        x = np.repeat(self.time[starts], 2)
        y = np.empty(2 * (b1 - b0))
        y[0::2], y[1::2] = mins[b0:b1], maxs[b0:b1]
        return x, y


#: series longer than this are drawn from a :class:`PeakPyramid` instead of per-frame downsampling
PYRAMID_MIN_POINTS = 1_000_000


@dataclass
class SensorPlot:
    """A pooled plot with its curves; curves are reused by index, never re-created."""

    plot: pg.PlotItem
    crosshair: pg.InfiniteLine
    curves: list[pg.PlotDataItem] = field(default_factory=list)
    predicted: pg.PlotDataItem | None = None
    forecast: pg.PlotDataItem | None = None
    band_lower: pg.PlotDataItem | None = None
    band_upper: pg.PlotDataItem | None = None
    band: pg.FillBetweenItem | None = None
    sensor: str = ""
    series: list[Series] = field(default_factory=list)
    pyramids: dict[int, PeakPyramid] = field(default_factory=dict)  # curve index -> pyramid


def regime_color(index: int) -> RGB:
    return REGIME_COLORS[int(index) % len(REGIME_COLORS)]


def _configure(plot: pg.PlotItem) -> None:
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    # the wheel zooms time only and y follows the visible data; the context menu's "Mouse Enabled"
    # turns y zoom back on
    plot.vb.setMouseEnabled(x=True, y=False)
    plot.vb.setAutoVisible(y=True)
    # no grid by default: on a 10-million-point channel the grid lines cost more per frame than the
    # curve; the plot's context menu still turns it on
    plot.setMenuEnabled(True)
    plot.getAxis("left").setWidth(60)  # equal widths keep the linked x axes aligned


class PlotArea(QWidget):
    """Stacked sensor plots + error panel. Call :meth:`plot_series` to show data."""

    crosshair_moved = Signal(float, str)  # x, the value text shown
    region_context_requested = Signal(object)  # RegionContext
    range_selected = Signal(str, float, float)  # sensor, start, end: a range the user marked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False, background="w", foreground="k")
        self.info_label = QLabel("Open a data file, or drop files onto the window.")
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rul_label = QLabel("")
        self.rul_label.setObjectName("rulLabel")
        self.rul_label.setVisible(False)
        self.normalise_check = QCheckBox("Normalise per regime")
        self.normalise_check.setObjectName("normalisePerRegime")
        self.normalise_check.setToolTip(
            "Show each sensor z-scored within its operating regime: the flight condition taken out, "
            "so the wear trend shows (as the models see the data)"
        )
        self.regime_colour_check = QCheckBox("Colour by regime")
        self.regime_colour_check.setObjectName("colourByRegime")
        self.regime_colour_check.setToolTip("Mark every point with the colour of its operating regime")
        self.regime_legend = QLabel("")
        self.regime_legend.setObjectName("regimeLegend")
        self.regime_bar = QWidget()
        bar = QHBoxLayout(self.regime_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.normalise_check)
        bar.addWidget(self.regime_colour_check)
        bar.addWidget(self.regime_legend, 1)
        self.regime_bar.setVisible(False)
        self.normalise_check.toggled.connect(self._regime_view_changed)
        self.regime_colour_check.toggled.connect(self._regime_view_changed)
        self._regime_cache: tuple[Dataset, RegimeView] | None = None
        self._regime_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self.applicability_label = QLabel("")
        self.applicability_label.setObjectName("applicabilityLabel")
        self.applicability_label.setWordWrap(True)
        self.applicability_label.setVisible(False)
        self.verdict = ""  # the worst verdict of the versions shown ("" when none)
        self._verdicts: dict[
            str, tuple[str, str, list[str]]
        ] = {}  # version name -> verdict, headline, reasons
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("sensorPlots")
        self.error_widget = pg.PlotWidget()
        self.error_widget.setObjectName("errorPlot")
        self.error_plot: pg.PlotItem = self.error_widget.getPlotItem()
        _configure(self.error_plot)
        self.error_plot.setLabel("left", "error", **AXIS_LABEL_STYLE)
        self.error_raw = self.error_plot.plot(pen=pg.mkPen((150, 150, 150), width=1), name="error")
        self.error_smoothed = self.error_plot.plot(pen=pg.mkPen((30, 90, 200), width=2), name="smoothed")
        self.error_threshold = self.error_plot.plot(pen=THRESHOLD_PEN, name="threshold")
        # the pane is short: its legend is part of the title line, never over the curves
        self.error_legend_names = ["error", "smoothed error", "threshold"]
        self._error_legend_html = "&nbsp;&nbsp;".join(
            f"{_line_swatch(colour, dashes)}&nbsp;{name}"
            for colour, dashes, name in (
                ((150, 150, 150), "━━", "error"),
                ((30, 90, 200), "━━", "smoothed error"),
                ((220, 40, 40), "╍╍", "threshold"),
            )
        )
        self.error_crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120)))
        self.error_crosshair.setVisible(False)
        self.error_plot.addItem(self.error_crosshair, ignoreBounds=True)
        self.error_widget.setVisible(False)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("plotSplitter")
        self.splitter.addWidget(self.graphics)
        self.splitter.addWidget(self.error_widget)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.overlay_legend = QLabel("")
        self.overlay_legend.setObjectName("overlayLegend")
        self.overlay_legend.setWordWrap(True)
        self.overlay_legend.setVisible(False)
        layout.addWidget(self.info_label)
        layout.addWidget(self.regime_bar)
        layout.addWidget(self.applicability_label)
        layout.addWidget(self.overlay_legend)
        layout.addWidget(self.rul_label)
        layout.addWidget(self.splitter, 1)

        self._pool: list[SensorPlot] = []
        self._shown: list[SensorPlot] = []
        self._overlays: dict[str, list[tuple[pg.PlotItem, QGraphicsItem]]] = {}
        self._forecast_interval: float | None = None  # the shown forecast band's coverage
        self._rul_interval: float | None = None
        self._dataset: Dataset | None = None
        self._units: list[Unit] = []
        self._time_label = "time"
        self.feedback_enabled = False  # set by whoever stores labels (a detection is shown)
        self._detected: dict[str, list[tuple[float, float, AnomalyRange]]] = {}  # sensor -> shown ranges
        self._labelled: list[
            tuple[str, float, float, LabelRecord]
        ] = []  # drawn labels (registry label records)
        self._pending: tuple[str, pg.LinearRegionItem] | None = None
        self._legend: pg.LegendItem | None = None
        self._overlay_entries: list[str] = []
        self._mouse_proxies = [
            pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved),
            pg.SignalProxy(self.error_widget.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved),
        ]
        self.graphics.installEventFilter(self)
        self.error_widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """The mouse left the plots: the crosshair goes with it."""
        if event.type() == QEvent.Type.Leave and watched in (self.graphics, self.error_widget):
            self.hide_crosshair()
        return super().eventFilter(watched, event)

    # -- data ---------------------------------------------------------------------------------------
    @property
    def shown_sensors(self) -> list[str]:
        return [p.sensor for p in self._shown]

    @property
    def shown_units(self) -> list[Unit]:
        return list(self._units)

    @property
    def dataset(self) -> Dataset | None:
        return self._dataset

    def sensor_plot(self, sensor: str) -> SensorPlot | None:
        return next((p for p in self._shown if p.sensor == sensor), None)

    def plot_dataset(
        self, dataset: Dataset, units: Sequence[Unit], sensors: Sequence[str], *, keep_overlays: bool = False
    ) -> None:
        """Plot ``sensors`` of ``units`` from a :class:`~turbofan_desktop.data.dataset.Dataset`."""
        view = self._regime_view(dataset)
        normalise = view.n_regimes > 1 and self.normalise_check.isChecked() and view.normalised is not None
        frame = view.normalised.frame if normalise else dataset.frame
        colour = view.n_regimes > 1 and self.regime_colour_check.isChecked()
        regime_of = pd.Series(view.labels, index=frame.index) if colour else None
        time_col = dataset.time_col
        by_unit = []
        if units:
            mask = frame[UNIT].isin(list(units))
            selected = frame.loc[mask, [UNIT, time_col, *[s for s in sensors if s in frame.columns]]]
            groups = dict(tuple(selected.groupby(UNIT, sort=False)))
            for unit in units:
                part = lookup_unit(groups, unit)
                if part is not None:
                    by_unit.append((unit, part))
        series = {
            sensor: [
                Series(
                    unit,
                    as_float_time(part[time_col].to_numpy()),
                    part[sensor].to_numpy(dtype=np.float64),
                    regime_of.loc[part.index].to_numpy() if regime_of is not None else None,
                )
                for unit, part in by_unit
            ]
            for sensor in sensors
            if sensor in frame.columns
        }
        self._dataset = dataset
        self._units = list(units)
        self._time_label = time_col
        self.plot_series(
            series,
            time_label=time_col,
            timestamps=dataset.time_kind == "timestamp",
            keep_overlays=keep_overlays,
        )
        self._show_regime_bar(view)
        if normalise:
            self.info_label.setText(self.info_label.text() + " (normalised per operating regime)")

    # -- operating regimes --------------------------------------------------------------------------
    def _regime_view(self, dataset: Dataset) -> RegimeView:
        """The file's regimes (and its per-regime normalised copy), computed once per file shown."""
        if self._regime_cache is None or self._regime_cache[0] is not dataset:
            self._regime_cache = (dataset, regime_view(dataset))
        return self._regime_cache[1]

    def _show_regime_bar(self, view: RegimeView) -> None:
        several = view.n_regimes > 1
        self.regime_bar.setVisible(several)
        if not several:
            self.regime_legend.setText("")
            return
        if self.regime_colour_check.isChecked():
            swatches = " ".join(
                f"<span style='color: rgb{regime_color(r)}'>■</span>&nbsp;{r + 1}"
                for r in range(view.n_regimes)
            )
            self.regime_legend.setText(f"regimes: {swatches}")
        else:
            self.regime_legend.setText(f"{view.n_regimes} operating regimes")

    def _regime_view_changed(self, *_: object) -> None:
        """A regime toggle changed: plot the same selection again (model overlays were computed on
        the raw values, so they go)."""
        if self._dataset is not None:
            self.plot_dataset(self._dataset, self._units, self.shown_sensors)

    def _draw_regime_points(self) -> None:
        """One scatter per (plot, regime) over the curves: uniform brushes, so clipping and
        downsampling of the curve never disagree with the colours."""
        for plot, item in self._regime_items:
            plot.removeItem(item)
        self._regime_items = []
        for entry in self._shown:
            coloured = [s for s in entry.series if s.regimes is not None and len(s.regimes) == len(s.time)]
            if not coloured:
                continue
            time = np.concatenate([s.time for s in coloured])
            values = np.concatenate([s.values for s in coloured])
            regimes = np.concatenate([s.regimes for s in coloured])
            for regime in np.unique(regimes):
                mask = regimes == regime
                item = pg.PlotDataItem(
                    time[mask],
                    values[mask],
                    pen=None,
                    symbol="o",
                    symbolSize=4,
                    symbolPen=None,
                    symbolBrush=pg.mkBrush(regime_color(int(regime))),
                    name=f"regime {int(regime) + 1}",
                )
                entry.plot.addItem(item)
                self._regime_items.append((entry.plot, item))

    def plot_series(
        self,
        series: Mapping[str, Sequence[Series]],
        *,
        time_label: str = "time",
        timestamps: bool = False,
        keep_overlays: bool = False,
    ) -> None:
        """Show one plot per sensor with one curve per unit; overlays of the previous data are cleared."""
        if not keep_overlays:
            self.clear_overlays()
        self.hide_crosshair()
        sensors = list(series)
        self._ensure_plots(len(sensors))
        for index, (sensor, plot) in enumerate(zip(sensors, self._shown, strict=True)):
            if plot.sensor != sensor:  # axis labels are HTML text items: only touch them on change
                plot.plot.setLabel("left", sensor, **AXIS_LABEL_STYLE)
            plot.sensor = sensor
            plot.series = list(series[sensor])
            self._ensure_curves(plot, len(plot.series))
            for curve_index, curve in enumerate(plot.curves):
                if curve_index < len(plot.series):
                    item = plot.series[curve_index]
                    # finite data need no per-frame isfinite pass over the visible points
                    finite = bool(np.isfinite(item.values).all() and np.isfinite(item.time).all())
                    plot.pyramids.pop(curve_index, None)
                    if finite and len(item.values) >= PYRAMID_MIN_POINTS:
                        pyramid = PeakPyramid(item.time, item.values)
                        plot.pyramids[curve_index] = pyramid
                        curve.setDownsampling(auto=False, ds=1)
                        curve.setData(
                            *pyramid.view(item.time[0], item.time[-1], self._pixels(plot)),
                            skipFiniteCheck=True,
                        )
                    else:
                        curve.setDownsampling(auto=True, method="peak")
                        curve.setData(item.time, item.values, skipFiniteCheck=finite)
                    curve.setVisible(True)
                else:
                    curve.setData([], [])
                    curve.setVisible(False)
            # the x axes are linked: only the lowest plot needs its time axis (each axis costs a paint)
            last = index == len(sensors) - 1
            if plot.plot.getAxis("bottom").isVisible() != last:
                plot.plot.showAxis("bottom", last)
            plot.plot.enableAutoRange()
        if self._shown:
            bottom = self._shown[-1].plot.getAxis("bottom")
            if bottom.labelText != time_label:
                self._shown[-1].plot.setLabel("bottom", time_label, **AXIS_LABEL_STYLE)
            self._use_date_axis(timestamps)
        self._draw_regime_points()
        units = sorted({str(s.unit) for p in self._shown for s in p.series})
        if sensors:
            self.info_label.setText(f"{self._file_prefix()}unit {', '.join(units)}: {', '.join(sensors)}")
        else:
            self.info_label.setText("Select a unit and sensors in the data panel.")

    def _file_prefix(self) -> str:
        """``"test_FD002.txt — "``: the plotted file's name, for the line above the plots."""
        if self._dataset is None:
            return ""
        name = self._dataset.source.name if self._dataset.source else self._dataset.name
        return f"{name} — " if name else ""

    def _use_date_axis(self, timestamps: bool) -> None:
        for plot in self._shown + [SensorPlot(self.error_plot, self.error_crosshair)]:
            axis = plot.plot.getAxis("bottom")
            if timestamps and not isinstance(axis, pg.DateAxisItem):
                plot.plot.setAxisItems({"bottom": pg.DateAxisItem()})
            elif not timestamps and isinstance(axis, pg.DateAxisItem):
                plot.plot.setAxisItems({"bottom": pg.AxisItem("bottom")})

    def _ensure_plots(self, count: int) -> None:
        while len(self._pool) < count:
            box = FeedbackViewBox(self)
            plot = pg.PlotItem(viewBox=box)
            _configure(plot)
            crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((120, 120, 120)))
            crosshair.setVisible(False)  # until the mouse first moves over the plots
            plot.addItem(crosshair, ignoreBounds=True)
            entry = SensorPlot(plot, crosshair)
            box._sensor_of = entry
            entry.predicted = plot.plot(pen=PREDICTED_PEN, name="predicted")
            entry.band_lower = plot.plot(pen=BAND_EDGE_PEN)
            entry.band_upper = plot.plot(pen=BAND_EDGE_PEN)
            entry.band = pg.FillBetweenItem(entry.band_lower, entry.band_upper, brush=BAND_BRUSH)
            plot.addItem(entry.band, ignoreBounds=True)  # its empty path would pull the y range to 0
            entry.forecast = plot.plot(pen=FORECAST_PEN, name="forecast")
            for item in (entry.predicted, entry.band, entry.forecast, entry.band_lower, entry.band_upper):
                item.setVisible(False)
            plot.vb.sigXRangeChanged.connect(lambda _vb, _range, e=entry: self._feed_pyramids(e))
            plot.vb.sigResized.connect(lambda _vb, e=entry: self._feed_pyramids(e))
            if self._pool:
                plot.setXLink(self._pool[0].plot)
            else:
                self.error_plot.setXLink(plot)
            self._pool.append(entry)
        wanted = self._pool[:count]
        if wanted != self._shown:
            layout = self.graphics.ci
            for entry in self._shown:
                layout.removeItem(entry.plot)
            for row, entry in enumerate(wanted):
                layout.addItem(entry.plot, row=row, col=0)
            self._shown = wanted
        for entry in self._pool[count:]:
            entry.series = []
            for curve in entry.curves:
                curve.setData([], [])

    @staticmethod
    def _pixels(plot: SensorPlot) -> int:
        return max(200, int(plot.plot.vb.width()))

    def _feed_pyramids(self, plot: SensorPlot) -> None:
        """Give each pyramid-backed curve the blocks of the visible range (the whole range while x
        auto-ranges, so the data bounds the auto-range reads do not chase the view)."""
        if not plot.pyramids:
            return
        x_auto = bool(plot.plot.vb.state["autoRange"][0])
        x0, x1 = plot.plot.vb.viewRange()[0]
        for index, pyramid in plot.pyramids.items():
            low, high = (pyramid.time[0], pyramid.time[-1]) if x_auto else (x0, x1)
            plot.curves[index].setData(*pyramid.view(low, high, self._pixels(plot)), skipFiniteCheck=True)

    def _ensure_curves(self, plot: SensorPlot, count: int) -> None:
        while len(plot.curves) < count:
            index = len(plot.curves)
            # width 1 keeps Qt on its fast cosmetic-line path (wider pens are stroked, ~2x slower)
            # peak mode keeps each pixel column's min and max, so about one block per pixel suffices
            # (pyqtgraph's default of 5 draws five times the segments for the same picture)
            curve = plot.plot.plot(pen=pg.mkPen(unit_color(index), width=1), autoDownsampleFactor=1.0)
            plot.curves.append(curve)

    # -- crosshair ----------------------------------------------------------------------------------
    def _mouse_moved(self, event: tuple) -> None:
        position = event[0]
        for entry in self._shown + [SensorPlot(self.error_plot, self.error_crosshair)]:
            if entry.plot.isVisible() and entry.plot.sceneBoundingRect().contains(position):
                if entry.plot.scene() is None:
                    continue
                self.crosshair_at(entry.plot.vb.mapSceneToView(position).x())
                return

    def crosshair_at(self, x: float) -> str:
        """Move the crosshair to ``x`` and show each sensor's value there (first shown unit)."""
        parts = [f"{self._time_label} {x:.6g}"]
        for entry in self._shown:
            entry.crosshair.setPos(x)
            entry.crosshair.setVisible(True)
            if not entry.series:
                continue
            first = entry.series[0]
            if len(first.time) == 0:
                continue
            index = int(np.clip(np.searchsorted(first.time, x), 0, len(first.time) - 1))
            if index > 0 and abs(first.time[index - 1] - x) <= abs(first.time[index] - x):
                index -= 1
            parts.append(f"{entry.sensor} {first.values[index]:.6g}")
        self.error_crosshair.setPos(x)
        self.error_crosshair.setVisible(True)
        unit = f"unit {self._shown[0].series[0].unit}: " if self._shown and self._shown[0].series else ""
        text = self._file_prefix() + unit + " | ".join(parts)
        self.info_label.setText(text)
        self.crosshair_moved.emit(float(x), text)
        return text

    def hide_crosshair(self) -> None:
        """Hide the crosshair lines (the mouse left the plots, or the plots were redrawn)."""
        for entry in self._pool:
            entry.crosshair.setVisible(False)
        self.error_crosshair.setVisible(False)

    def crosshair_visible(self) -> bool:
        return any(e.crosshair.isVisible() for e in self._pool) or self.error_crosshair.isVisible()

    # -- overlays -----------------------------------------------------------------------------------
    def _add_overlay(self, kind: str, plot: pg.PlotItem, item: QGraphicsItem) -> None:
        plot.addItem(item, ignoreBounds=True)
        self._overlays.setdefault(kind, []).append((plot, item))

    def overlay_items(self, kind: str | None = None) -> list[QGraphicsItem]:
        """The overlay items drawn now: ``"anomaly"``, ``"anomaly_label"``, ``"rul"`` or all."""
        kinds = [kind] if kind else list(self._overlays)
        return [item for k in kinds for _, item in self._overlays.get(k, [])]

    def _clear_kind(self, *kinds: str) -> None:
        for kind in kinds:
            for plot, item in self._overlays.pop(kind, []):
                plot.removeItem(item)

    def clear_overlays(self) -> None:
        """Remove every model overlay (anomalies, error panel, forecast, RUL); data curves stay."""
        self._clear_kind(*list(self._overlays))
        self._detected.clear()
        self.clear_label_overlays()
        self.discard_pending()
        for entry in self._pool:
            for item in (entry.predicted, entry.forecast, entry.band_lower, entry.band_upper):
                item.setData([], [])
            for item in (entry.predicted, entry.forecast, entry.band, entry.band_lower, entry.band_upper):
                item.setVisible(False)
        self._forecast_interval = self._rul_interval = None
        self._remove_overlay_legend()
        for curve in (self.error_raw, self.error_smoothed, self.error_threshold):
            curve.setData([], [])
        self.error_widget.setVisible(False)
        self.rul_label.setText("")
        self.rul_label.setVisible(False)
        self.clear_applicability()

    # -- applicability ------------------------------------------------------------------------------
    def show_applicability(self, name: str, verdict: str, headline: str, reasons: Sequence[str] = ()) -> None:
        """The verdict of a version drawn (``ok`` / ``caution`` / ``out_of_scope``) above the plots:
        one line per version shown since the overlays were last cleared, coloured by the worst,
        every reason in the tooltip."""
        self._verdicts[name] = (verdict, headline, list(reasons))
        order = ("ok", "caution", "out_of_scope")
        worst = max(
            (v for v, _h, _r in self._verdicts.values()), key=lambda v: order.index(v) if v in order else 1
        )
        colour, background = VERDICT_COLOURS.get(worst, VERDICT_COLOURS["caution"])
        self.verdict = worst
        self.applicability_label.setText("\n".join(f"{n}: {h}" for n, (_v, h, _r) in self._verdicts.items()))
        self.applicability_label.setStyleSheet(
            f"QLabel {{ color: rgb{colour}; background: rgb{background}; padding: 2px 4px; "
            "border-radius: 3px; }"
        )
        tips = [f"{n}: {'; '.join(r) if r else h}" for n, (_v, h, r) in self._verdicts.items()]
        self.applicability_label.setToolTip("\n".join(tips))
        self.applicability_label.setVisible(True)

    def clear_applicability(self) -> None:
        self.verdict = ""
        self._verdicts.clear()
        self.applicability_label.setText("")
        self.applicability_label.setVisible(False)

    def _plot_for(self, sensor: str, unit: Unit) -> SensorPlot | None:
        """The plot showing ``sensor``; adds it to the shown sensors when the dataset has it."""
        entry = self.sensor_plot(sensor)
        if entry is not None or self._dataset is None or sensor not in self._dataset.frame.columns:
            return entry
        units = self._units if any(str(u) == str(unit) for u in self._units) else [*self._units, unit]
        self.plot_dataset(self._dataset, units, [*self.shown_sensors, sensor], keep_overlays=True)
        return self.sensor_plot(sensor)

    def show_detection(self, result: DetectionResult, unit: Unit) -> None:
        """Anomaly ranges (shaded, with scores) on the target sensor; smoothed error + threshold below."""
        self._clear_kind("anomaly", "anomaly_label")
        self._detected.clear()
        detection = lookup_unit(result.units, unit)
        if detection is None:
            self.info_label.setText(f"The detection result has no unit {unit}.")
            return
        entry = self._plot_for(result.target, unit)
        if entry is None:
            self.info_label.setText(f"Sensor {result.target} is not in the current data.")
            return
        time = as_float_time(detection.time)
        entry.predicted.setData(time, np.asarray(detection.predicted, dtype=np.float64))
        entry.predicted.setVisible(True)
        actual = np.asarray(detection.actual, dtype=np.float64)
        finite = actual[np.isfinite(actual)]
        top = float(finite.max()) if finite.size else 0.0
        step = 0.15 * float(np.ptp(finite)) if finite.size else 0.0
        for number, anomaly in enumerate(detection.anomalies):
            start, end = float(as_float_time([anomaly.start])[0]), float(as_float_time([anomaly.end])[0])
            low = anomaly.direction == "low"
            region = pg.LinearRegionItem(
                values=(start, end if end > start else start + 0.5),
                movable=False,
                brush=pg.mkBrush(LOW_ANOMALY_BRUSH if low else ANOMALY_BRUSH),
                pen=pg.mkPen(LOW_ANOMALY_COLOR if low else ANOMALY_PEN),
            )
            region.setZValue(-10)
            kind = "unusually low error" if low else "anomaly"
            hint = "; right-click to label it" if self.feedback_enabled else ""
            region.setToolTip(f"{kind} {anomaly.start}–{anomaly.end}, score {anomaly.score:.3g}{hint}")
            self._add_overlay("anomaly", entry.plot, region)
            self._detected.setdefault(result.target, []).append((start, end, anomaly))
            label_color = LOW_ANOMALY_COLOR if low else (180, 20, 20)
            label = pg.TextItem(f"{anomaly.score:.2f}", color=label_color, anchor=(0, 0))
            label.setPos(start, top - step * (number % 2))  # alternate rows: close ranges stay legible
            self._add_overlay("anomaly_label", entry.plot, label)
        self.error_raw.setData(time, np.asarray(detection.errors, dtype=np.float64))
        self.error_smoothed.setData(time, np.asarray(detection.smoothed, dtype=np.float64))
        self.error_threshold.setData(time, np.asarray(detection.threshold, dtype=np.float64))
        self.error_plot.setTitle(
            f"prediction error of {result.target}, unit {unit}: &nbsp;{self._error_legend_html}", size="9pt"
        )
        if not self.error_widget.isVisible():
            self.error_widget.setVisible(True)
            total = sum(self.splitter.sizes()) or self.height()
            if self.splitter.sizes()[1] < total // 5:
                self.splitter.setSizes([total * 3 // 4, total // 4])
        self.error_plot.enableAutoRange(axis="y")
        self.refresh_overlay_legend()

    # -- feedback on detections ------------------------------------------------------------------
    def context_at(self, sensor: str, x: float) -> RegionContext:
        """The detected ranges, labels and pending selection of ``sensor``'s plot under ``x``."""
        anomalies = [a for start, end, a in self._detected.get(sensor, []) if start <= x <= end]
        labels = [e for s, start, end, e in self._labelled if s == sensor and start <= x <= end]
        pending = None
        if self._pending is not None and self._pending[0] == sensor:
            low, high = self._pending[1].getRegion()
            pending = (float(low), float(high)) if low <= x <= high else None
        return RegionContext(sensor, float(x), anomalies, labels, pending)

    def request_region_context(self, sensor: str, x: float, screen_pos: QPoint | None = None) -> bool:
        """Emit :attr:`region_context_requested` when something can be labelled under ``x``;
        False (nothing emitted) on empty plot space or when feedback is off."""
        if not self.feedback_enabled:
            return False
        context = self.context_at(sensor, x)
        if not (context.anomalies or context.labels or context.pending):
            return False
        context.screen_pos = screen_pos
        self.region_context_requested.emit(context)
        return True

    def drag_selection(self, sensor: str, x0: float, x1: float, *, finished: bool) -> None:
        """Shift+drag: show the range being dragged; when the drag ends emit :attr:`range_selected`."""
        low, high = sorted((float(x0), float(x1)))
        entry = self.sensor_plot(sensor)
        if entry is None:
            return
        if self._pending is None or self._pending[0] != sensor:
            self.discard_pending()
            self._pending = (sensor, self._pending_region(entry, low, high, movable=False))
        self._pending[1].setRegion((low, high))
        if finished:
            self.discard_pending()
            if high > low:
                self.range_selected.emit(sensor, low, high)

    def begin_missed_selection(self, sensor: str, x: float) -> None:
        """Start a movable selection around ``x`` (5 % of the view wide); right-click it to confirm."""
        entry = self.sensor_plot(sensor)
        if entry is None:
            return
        self.discard_pending()
        x0, x1 = entry.plot.vb.viewRange()[0]
        half = max((x1 - x0) * 0.025, 0.5)
        self._pending = (sensor, self._pending_region(entry, x - half, x + half, movable=True))

    def _pending_region(
        self, entry: SensorPlot, low: float, high: float, *, movable: bool
    ) -> pg.LinearRegionItem:
        region = pg.LinearRegionItem(
            values=(low, high),
            movable=movable,
            brush=pg.mkBrush(PENDING_BRUSH),
            pen=pg.mkPen(LABEL_STYLES["missed_anomaly"][0], width=2, style=Qt.PenStyle.DotLine),
        )
        region.setZValue(-5)
        region.setToolTip("Missed anomaly being marked: drag its edges, then right-click it to confirm.")
        self._add_overlay("pending", entry.plot, region)
        return region

    def pending_selection(self) -> tuple[str, float, float] | None:
        if self._pending is None:
            return None
        low, high = self._pending[1].getRegion()
        return self._pending[0], float(low), float(high)

    def confirm_pending(self) -> tuple[str, float, float] | None:
        """Emit :attr:`range_selected` for the pending selection and remove it."""
        selection = self.pending_selection()
        self.discard_pending()
        if selection is not None:
            self.range_selected.emit(*selection)
        return selection

    def discard_pending(self) -> None:
        self._pending = None
        self._clear_kind("pending")

    def add_label_overlay(self, sensor: str, entry: LabelRecord, start: float, end: float) -> bool:
        """Draw one stored label (a registry label record: ``entry.label``) over [start, end] on
        ``sensor``'s plot; False when that sensor is not shown."""
        plot = self.sensor_plot(sensor)
        if plot is None:
            return False
        color, style, fill, text = LABEL_STYLES.get(
            entry.label, ((120, 120, 120), Qt.PenStyle.DotLine, Qt.BrushStyle.NoBrush, "label")
        )
        brush = (
            QBrush(QColor(*color, 150), fill)
            if fill != Qt.BrushStyle.NoBrush
            else QBrush(Qt.BrushStyle.NoBrush)
        )
        region = pg.LinearRegionItem(
            values=(start, end if end > start else start + 0.5),
            movable=False,
            brush=brush,
            pen=pg.mkPen(color, width=3, style=style),
        )
        region.setZValue(-15)
        note = f" ({entry.note})" if entry.note else ""
        region.setToolTip(f"labelled {text}: {entry.start}–{entry.end}{note}")
        self._add_overlay("feedback", plot.plot, region)
        tag = pg.TextItem(text, color=color, anchor=(0, 1))
        values = [s.values[np.isfinite(s.values)] for s in plot.series]
        finite = np.concatenate(values) if values else np.zeros(0)
        tag.setPos(start, float(finite.min()) if finite.size else 0.0)
        self._add_overlay("feedback_tag", plot.plot, tag)
        self._labelled.append((sensor, float(start), float(end), entry))
        self._legend_entry(plot, entry.label, color, style, text)
        return True

    def _legend_entry(self, plot: SensorPlot, label: str, color: RGB, style: Qt.PenStyle, text: str) -> None:
        if self._legend is None or self._legend.parentItem() is not plot.plot.vb:
            self._remove_legend()
            self._legend = pg.LegendItem(offset=(-10, 10), labelTextSize="8pt")
            self._legend.setParentItem(plot.plot.vb)
        names = [lbl.text for _sample, lbl in self._legend.items]
        if f"labelled {text}" not in names:
            sample = pg.PlotDataItem(pen=pg.mkPen(color, width=3, style=style))
            self._legend.addItem(sample, f"labelled {text}")

    def legend_names(self) -> list[str]:
        return [lbl.text for _sample, lbl in self._legend.items] if self._legend is not None else []

    def _remove_legend(self) -> None:
        if self._legend is not None:
            scene = self._legend.scene()  # a LegendItem cannot be unparented (it anchors to its parent)
            if scene is not None:
                scene.removeItem(self._legend)
            self._legend = None

    def clear_label_overlays(self) -> None:
        """Remove the drawn labels, their tags and legend."""
        self._clear_kind("feedback", "feedback_tag")
        self._labelled.clear()
        self._remove_legend()

    def show_forecast(self, result: ForecastResult, unit: Unit) -> None:
        """Forecast median (dashed) and its interval band, continuing each shown sensor's series."""
        unit_forecast = lookup_unit(result.units, unit)
        if unit_forecast is None:
            self.info_label.setText(f"The forecast has no unit {unit}.")
            return
        drawn = []
        for sensor, forecast in unit_forecast.sensors.items():
            entry = self.sensor_plot(sensor)
            if entry is None:
                continue
            time = as_float_time(forecast.time)
            median = np.asarray(forecast.median, dtype=np.float64)
            lower = np.asarray(forecast.lower, dtype=np.float64)
            upper = np.asarray(forecast.upper, dtype=np.float64)
            last = next((s for s in entry.series if str(s.unit) == str(unit)), None)
            if last is not None and len(last.time):
                # start at the last observation so the forecast visibly continues the series
                t0, v0 = last.time[-1], last.values[-1]
                time, median = np.r_[t0, time], np.r_[v0, median]
                lower, upper = np.r_[v0, lower], np.r_[v0, upper]
            entry.forecast.setData(time, median)
            entry.band_lower.setData(time, lower)
            entry.band_upper.setData(time, upper)
            for item in (entry.forecast, entry.band, entry.band_lower, entry.band_upper):
                item.setVisible(True)
            drawn.append(sensor)
        if not drawn:
            self.info_label.setText("None of the forecast sensors is shown; select them in the data panel.")
        self._forecast_interval = float(result.interval) if drawn else None
        self.refresh_overlay_legend()

    def show_rul(self, result: RULResult, unit: Unit) -> None:
        """The unit's RUL estimate as text plus an end-of-life marker with its interval band."""
        self._clear_kind("rul")
        self._rul_interval = None
        estimate = next((u for u in result.units if str(u.unit) == str(unit)), None)
        if estimate is None:
            self.rul_label.setText(f"No RUL estimate for unit {unit}.")
            self.rul_label.setVisible(True)
            return
        percent = f"{result.interval * 100:.0f} %"
        text = (
            f"Unit {unit}: estimated RUL {estimate.rul:.0f} cycles "
            f"({estimate.lower:.0f}–{estimate.upper:.0f}, {percent} interval)"
        )
        if estimate.true_rul is not None and not math.isnan(float(estimate.true_rul)):
            text += f"; true RUL {float(estimate.true_rul):.0f}"
        self.rul_label.setText(text)
        self.rul_label.setVisible(True)
        if not self._shown or not self._shown[0].series:
            return
        series = next(
            (s for s in self._shown[0].series if str(s.unit) == str(unit)), self._shown[0].series[0]
        )
        if not len(series.time):
            return
        last = float(series.time[-1])
        for entry in self._shown:
            band = pg.LinearRegionItem(
                values=(last + estimate.lower, last + estimate.upper),
                movable=False,
                brush=pg.mkBrush(RUL_BRUSH),
            )
            band.setZValue(-20)
            self._add_overlay("rul", entry.plot, band)
            line = pg.InfiniteLine(
                pos=last + estimate.rul,
                angle=90,
                movable=False,
                pen=RUL_PEN,
                label=f"RUL {estimate.rul:.0f}" if entry is self._shown[0] else None,
                labelOpts={"position": 0.9, "color": (60, 60, 180)},
            )
            self._add_overlay("rul", entry.plot, line)
        self._rul_interval = float(result.interval)
        self.refresh_overlay_legend()
        first = float(series.time[0])
        # show the estimate and the start of its band; a wide interval would otherwise squeeze the data
        # (the band continues off-screen, and the text above gives its bounds)
        end = last + max(estimate.rul, 0.0) + 0.2 * max(last - first, 1.0)
        self._shown[0].plot.setXRange(first, end, padding=0.02)

    # -- the legend of model overlays ---------------------------------------------------------------
    def _remove_overlay_legend(self) -> None:
        self._overlay_entries = []
        self.overlay_legend.setText("")
        self.overlay_legend.setVisible(False)

    def overlay_legend_names(self) -> list[str]:
        """The entries of the overlay legend now shown (empty when no model result is shown)."""
        return list(self._overlay_entries)

    def _overlay_legend_entries(self) -> list[tuple[str, str]]:
        """(swatch HTML, text) of every kind of model overlay drawn now."""
        entries: list[tuple[str, str]] = []
        ranges = [a for drawn in self._detected.values() for _s, _e, a in drawn]
        if any(a.direction != "low" for a in ranges):
            entries.append((_area_swatch(ANOMALY_BRUSH), "anomaly (error above threshold)"))
        if any(a.direction == "low" for a in ranges):
            entries.append((_area_swatch(LOW_ANOMALY_BRUSH), "unusually low error"))
        if any(e.predicted.isVisible() for e in self._shown):
            entries.append((_line_swatch((0, 150, 80), "╌╌"), "predicted"))
        if self._forecast_interval is not None:
            entries.append((_line_swatch((255, 140, 0), "╍╍"), "forecast (median)"))
            entries.append((_area_swatch(BAND_BRUSH), f"forecast {self._forecast_interval * 100:.0f} % band"))
        if self._rul_interval is not None and self._overlays.get("rul"):
            entries.append((_line_swatch((60, 60, 180), "┅┅"), "estimated end of life (RUL)"))
            entries.append(
                (_area_swatch((90, 90, 200, 90)), f"RUL {self._rul_interval * 100:.0f} % interval")
            )
        return entries

    def refresh_overlay_legend(self) -> None:
        """One legend line above the plots naming each kind of model overlay drawn: it never
        covers data, however many sensors share the height."""
        entries = self._overlay_legend_entries()
        self._overlay_entries = [text for _swatch, text in entries]
        if not entries:
            self._remove_overlay_legend()
            return
        self.overlay_legend.setText(
            "&nbsp;&nbsp; ".join(f"{swatch}&nbsp;{html.escape(text)}" for swatch, text in entries)
        )
        self.overlay_legend.setVisible(True)


def _area_swatch(rgba: tuple) -> str:
    """A filled square in the overlay's colour, made opaque enough to read at legend size."""
    r, g, b = rgba[:3]
    alpha = max(0.45, (rgba[3] / 255) if len(rgba) > 3 else 1.0)
    return f"<span style='background-color: rgba({r}, {g}, {b}, {alpha:.2f})'>&nbsp;&nbsp;&nbsp;&nbsp;</span>"


def _line_swatch(rgb: RGB, dashes: str) -> str:
    return f"<b style='color: rgb{tuple(rgb)}'>{dashes}</b>"


#: colours of compared versions overlaid on one unit (Okabe-Ito, apart from the units' blue)
COMPARE_COLORS = ((213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233), (0, 0, 0))


@dataclass
class ComparedPrediction:
    """One compared version's predictions on the unit shown (each None when its model lacks the task)."""

    name: str
    detection: DetectionResult | None = None
    forecast: ForecastResult | None = None
    rul: RULResult | None = None
    verdict: str = ""  # ok / caution / out_of_scope, "" when unknown


def _compare_pen(index: int) -> object:
    return pg.mkPen(COMPARE_COLORS[index % len(COMPARE_COLORS)], width=2, style=Qt.PenStyle.DashLine)


def show_comparison(area: PlotArea, predictions: Sequence[ComparedPrediction], unit: Unit) -> list[str]:
    """Draw several versions' predictions on ``unit`` together, one colour each: forecast medians
    continuing the series, RUL lines, the predicted target series and detected ranges; the legend
    line names each version with its figures. Returns the legend entries."""
    area.clear_overlays()
    entries: list[tuple[str, str]] = []
    rul_lines: list[str] = []
    for index, item in enumerate(predictions):
        colour = COMPARE_COLORS[index % len(COMPARE_COLORS)]
        pen = _compare_pen(index)
        parts = []
        if item.forecast is not None and _draw_compared_forecast(area, item.forecast, unit, pen):
            parts.append("forecast")
        if item.detection is not None:
            count = _draw_compared_detection(area, item.detection, unit, colour, pen)
            if count is not None:
                parts.append(f"{count} anomal{'y' if count == 1 else 'ies'}")
        if item.rul is not None:
            text = _draw_compared_rul(area, item.rul, unit, pen, item.name)
            if text:
                parts.append(text)
                rul_lines.append(f"{item.name}: {text}")
        scope = {"out_of_scope": " — OUT OF SCOPE", "caution": " — caution"}.get(item.verdict, "")
        entries.append(
            (_line_swatch(colour, "━━"), f"{item.name}: {', '.join(parts) or 'nothing to draw'}{scope}")
        )
    lines = [item.value() for item in area.overlay_items("compare") if isinstance(item, pg.InfiniteLine)]
    if lines and area._shown and area._shown[0].series:
        first = float(area._shown[0].series[0].time[0])
        area._shown[0].plot.setXRange(first, max(lines) + 0.05 * (max(lines) - first), padding=0.02)
    area._overlay_entries = [text for _swatch, text in entries]
    area.overlay_legend.setText("<br>".join(f"{swatch}&nbsp;{html.escape(text)}" for swatch, text in entries))
    area.overlay_legend.setVisible(bool(entries))
    if rul_lines:
        area.rul_label.setText(f"Unit {unit}: " + "; ".join(rul_lines))
        area.rul_label.setVisible(True)
    return list(area._overlay_entries)


def _last_point(entry: SensorPlot, unit: Unit) -> tuple[float, float] | None:
    series = next((s for s in entry.series if str(s.unit) == str(unit)), None)
    if series is None or not len(series.time):
        return None
    return float(series.time[-1]), float(series.values[-1])


def _draw_compared_forecast(area: PlotArea, result: ForecastResult, unit: Unit, pen: object) -> bool:
    unit_forecast = lookup_unit(result.units, unit)
    if unit_forecast is None:
        return False
    drawn = False
    for sensor, forecast in unit_forecast.sensors.items():
        entry = area.sensor_plot(sensor)
        if entry is None:
            continue
        time = as_float_time(forecast.time)
        median = np.asarray(forecast.median, dtype=np.float64)
        last = _last_point(entry, unit)
        if last is not None:
            time, median = np.r_[last[0], time], np.r_[last[1], median]
        area._add_overlay("compare", entry.plot, pg.PlotDataItem(time, median, pen=pen))
        drawn = True
    return drawn


def _draw_compared_detection(
    area: PlotArea, result: DetectionResult, unit: Unit, colour: RGB, pen: object
) -> int | None:
    detection = lookup_unit(result.units, unit)
    entry = area.sensor_plot(result.target)
    if detection is None or entry is None:
        return None
    time = as_float_time(detection.time)
    area._add_overlay(
        "compare",
        entry.plot,
        pg.PlotDataItem(time, np.asarray(detection.predicted, dtype=np.float64), pen=pen),
    )
    for anomaly in detection.anomalies:
        start, end = float(as_float_time([anomaly.start])[0]), float(as_float_time([anomaly.end])[0])
        region = pg.LinearRegionItem(
            values=(start, end if end > start else start + 0.5),
            movable=False,
            brush=pg.mkBrush(*colour, 45),
            pen=pg.mkPen(colour),
        )
        region.setZValue(-10)
        area._add_overlay("compare", entry.plot, region)
    return len(detection.anomalies)


def _draw_compared_rul(area: PlotArea, result: RULResult, unit: Unit, pen: object, tag: str) -> str:
    estimate = next((u for u in result.units if str(u.unit) == str(unit)), None)
    if estimate is None or not area._shown:
        return ""
    last = _last_point(area._shown[0], unit)
    if last is not None:
        for entry in area._shown:
            line = pg.InfiniteLine(
                pos=last[0] + estimate.rul,
                angle=90,
                movable=False,
                pen=pen,
                label=f"{tag} RUL {estimate.rul:.0f}" if entry is area._shown[0] else None,
                labelOpts={"position": 0.85, "color": pen.color()},
            )
            area._add_overlay("compare", entry.plot, line)
    return f"RUL {estimate.rul:.0f} ({estimate.lower:.0f}–{estimate.upper:.0f})"
