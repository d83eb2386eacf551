"""The main window: plot area in the centre, data panel on the left, jobs and models docked below.

The window only starts work and shows results, and composes the pieces that do: files load as jobs
of the :class:`~turbofan_desktop.ui.loading.DataLoader`; training, validation and "show on plot" run
as jobs of the :class:`~turbofan_desktop.ui.jobs.JobManager`, each watched through its own
:class:`~turbofan_desktop.ui.jobs.JobHandle`; drift, KPI history and labelling are controllers
(:class:`~turbofan_desktop.ui.drift_view.DriftController`,
:class:`~turbofan_desktop.ui.kpi_view.KpiController`,
:class:`~turbofan_desktop.ui.feedback_view.FeedbackController`) built with the collaborators they use.
What the session has open and has shown lives in one Qt-free
:class:`~turbofan_desktop.services.session.Session` they share.

The plot area and the jobs/models panels (and the controllers that need them) are built right after
the first paint (:meth:`MainWindow.ensure_ready`), so pyqtgraph is imported where it is used — by plain
imports inside that method, which the import graph sees.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
    QPaintEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QWidget,
)

from turbofan_desktop.services.session import LoadedData, Session, ShownResult, Unit
from turbofan_desktop.ui import dialogs
from turbofan_desktop.ui.about import show_about
from turbofan_desktop.ui.data_panel import DataPanel
from turbofan_desktop.ui.jobs import (
    JobHandle,
    JobManager,
    ProgressSink,
    ShouldStop,
    event_progress,
    target_progress,
)
from turbofan_desktop.ui.loading import DataLoader, LoadFunction, LoadRequest, pair_files
from turbofan_desktop.ui.settings import UI_STATE_VERSION, UiSettings

if TYPE_CHECKING:
    from turbofan_desktop.plugins.contract import DetectionResult, ForecastResult, RULResult
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset
    from turbofan_desktop.services.training import TrainRequest, TrainSummary
    from turbofan_desktop.ui.drift_view import DriftController, DriftDialog
    from turbofan_desktop.ui.feedback_view import FeedbackController, FeedbackDialog
    from turbofan_desktop.ui.fleet_panel import FleetPanel
    from turbofan_desktop.ui.jobs_panel import JobsPanel
    from turbofan_desktop.ui.kpi_view import KpiController, KpiDialog
    from turbofan_desktop.ui.models_panel import ModelsPanel
    from turbofan_desktop.ui.plot_area import PlotArea

log = logging.getLogger(__name__)

FILE_FILTER = "Data files (*.txt *.csv *.tsv *.parquet *.npy);;All files (*)"


@dataclass
class ShowOnPlotResult:
    """What a "show on plot" job returns; each field is None when the model does not serve that task."""

    version_id: int
    tasks: tuple[str, ...] = ()
    detection: DetectionResult | None = None
    forecast: ForecastResult | None = None
    rul: RULResult | None = None
    errors: list[str] = field(default_factory=list)


def run_show_on_plot(
    workspace: Workspace,
    version_id: int,
    dataset: Dataset,
    unit: Unit,
    *,
    progress: ProgressSink | None = None,
    should_stop: ShouldStop | None = None,
) -> ShowOnPlotResult:
    """Job body: apply one model version to one unit with every task its plugin serves."""
    from turbofan_desktop.services import inference

    tasks = inference.version_tasks(workspace, version_id)  # the model loads where it runs
    result = ShowOnPlotResult(version_id, tasks)
    if "anomaly" in tasks:
        result.detection = inference.detect(
            workspace,
            version_id,
            dataset,
            units=[unit],
            progress=event_progress(progress) if progress is not None else None,
            should_stop=should_stop,
        )
    if "forecast" in tasks:
        result.forecast = inference.forecast(workspace, version_id, dataset, units=[unit])
    if "rul" in tasks:
        result.rul = inference.predict_rul(workspace, version_id, dataset.subset([unit]))
    return result


class _FirstPaintLabel(QLabel):
    """The central placeholder at start-up; tells the window when the first frame was painted."""

    painted = Signal()

    def __init__(self, text: str):
        super().__init__(text)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._emitted = False

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._emitted:
            self._emitted = True
            self.painted.emit()


class MainWindow(QMainWindow):
    """The application window. ``workspace`` is a :class:`turbofan_desktop.services.Workspace`."""

    datasets_loaded = Signal()  # emitted whenever the loader becomes idle
    plot_results_shown = Signal(int)  # version id whose results were drawn
    ready = Signal()  # the plot area, panels and controllers exist

    def __init__(
        self,
        workspace: Workspace,
        parent: QWidget | None = None,
        *,
        ui_settings: UiSettings | None = None,
        load_function: LoadFunction | None = None,
        defer_panels: bool = False,
    ):
        """``defer_panels=True`` (used at application start) paints the window shell first and builds
        the plot area (pyqtgraph), the jobs/models panels and the controllers right after the first
        paint; anything that needs them calls :meth:`ensure_ready`."""
        super().__init__(parent)
        self.workspace = workspace
        self.ui_settings = ui_settings or UiSettings()
        self.session = Session()
        self.setWindowTitle("Turbofan Desktop")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        log_file = workspace.settings.log_file
        self.jobs = JobManager(log_file, self, max_concurrent=workspace.settings.max_concurrent_jobs)
        # built by ensure_ready()
        self.plot_area: PlotArea | None = None
        self.jobs_panel: JobsPanel | None = None
        self.models_panel: ModelsPanel | None = None
        self.fleet_panel: FleetPanel | None = None
        self.drift: DriftController | None = None
        self.kpi: KpiController | None = None
        self.feedback: FeedbackController | None = None
        self._ready = False
        placeholder = _FirstPaintLabel("Starting…")
        # one central container for the whole session: swapping the central widget itself would make
        # QMainWindow re-split the space between it and the docks
        self._central = QStackedWidget()
        self._central.addWidget(placeholder)
        self.setCentralWidget(self._central)
        self.data_panel = DataPanel(self.session, self)
        self.data_panel.selection_changed.connect(self._plot_selection)
        self.data_panel.drift_requested.connect(self.show_sensor_drift)
        self.loader = DataLoader(workspace, self, load_function=load_function, log_file=log_file)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.idle.connect(self.datasets_loaded)
        self._first_load_selects = True
        self.interactive = True  # False: errors go to stderr and the status bar, not to dialogs

        self._watch_job_count()
        self._build_docks()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._restore_state()
        if defer_panels:
            placeholder.painted.connect(lambda: QTimer.singleShot(0, self.ensure_ready))
            QTimer.singleShot(1000, self, self.ensure_ready)  # in case the window is never painted
        else:
            self.ensure_ready()

    def ensure_ready(self) -> None:
        """Build the plot area, the jobs/models panels and the controllers (once)."""
        if self._ready:
            return
        self._ready = True
        from turbofan_desktop.ui.drift_view import DriftController
        from turbofan_desktop.ui.feedback_view import FeedbackController
        from turbofan_desktop.ui.fleet_panel import FleetPanel
        from turbofan_desktop.ui.jobs_panel import JobsPanel
        from turbofan_desktop.ui.kpi_view import KpiController
        from turbofan_desktop.ui.models_panel import ModelsPanel
        from turbofan_desktop.ui.plot_area import PlotArea

        self.plot_area = PlotArea(self)
        placeholder = self._central.currentWidget()
        self._central.addWidget(self.plot_area)
        self._central.setCurrentWidget(self.plot_area)
        self._central.removeWidget(placeholder)
        placeholder.deleteLater()
        splitter = self.ui_settings.splitter_state("plots")
        if splitter is not None:
            self.plot_area.splitter.restoreState(splitter)

        self.jobs_panel = JobsPanel(self.jobs, self)
        self.jobs_panel.version_activated.connect(self.reveal_version)
        self.models_panel = ModelsPanel(self.workspace, self.jobs, self)
        self.models_panel.show_on_plot_requested.connect(self.show_version_on_plot)
        self.models_panel.validate_requested.connect(self.validate_versions)
        self.jobs_dock.setWidget(self.jobs_panel)
        self.models_dock.setWidget(self.models_panel)
        self.fleet_panel = FleetPanel(
            self.workspace, self.jobs, lambda: [loaded.dataset for loaded in self.session.files], self
        )
        self.fleet_panel.engine_activated.connect(self.show_fleet_engine)
        self.fleet_dock.setWidget(self.fleet_panel)

        self.drift = DriftController(
            self.workspace,
            self.session,
            self.jobs,
            self.data_panel,
            self.models_panel,
            self.statusBar(),
            self._report_error,
            self,
        )
        self.data_panel.selection_changed.connect(self.drift.show_selected)
        self.kpi = KpiController(self.workspace, self.models_panel, self._report_error, self)
        self.feedback = FeedbackController(
            self.workspace, self.session, self.plot_area, self._report_error, self
        )
        self._update_job_count()
        self.ready.emit()

    # -- construction -------------------------------------------------------------------------------
    def _watch_job_count(self) -> None:
        jobs = self.jobs
        jobs.job_added.connect(self._update_job_count)
        for signal in (jobs.job_started, jobs.job_finished, jobs.job_failed, jobs.job_cancelled):
            signal.connect(self._update_job_count)
            # the manager reaps a finished thread just after its final signal: count again then
            signal.connect(lambda *_: QTimer.singleShot(100, self, self._update_job_count))

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState key docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.data_dock = self._dock("Data", "dataDock", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.jobs_dock = self._dock(
            "Jobs", "jobsDock", QLabel("Starting…"), Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.models_dock = self._dock(
            "Models", "modelsDock", QLabel("Starting…"), Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.fleet_dock = self._dock(
            "Fleet", "fleetDock", QLabel("Starting…"), Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.jobs_dock, self.models_dock)
        self.tabifyDockWidget(self.models_dock, self.fleet_dock)
        self.jobs_dock.raise_()
        self._layout_restored = False

    def _action(
        self,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence | str | None = None,
        name: str = "",
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open…", self.open_dialog, "Ctrl+O", "openAction", "Open data files")
        self.export_report_action = self._action(
            "&Export model report…", self.export_report, "Ctrl+E", "exportReportAction"
        )
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q", "quitAction")
        self.train_selected_action = self._action(
            "Train &selected sensor…", lambda: self.train(all_sensors=False), "Ctrl+T", "trainSelectedAction"
        )
        self.train_all_action = self._action(
            "Train &all sensors…", lambda: self.train(all_sensors=True), "Ctrl+Shift+T", "trainAllAction"
        )
        self.validate_selected_action = self._action(
            "Validate &selected version…",
            lambda: self.validate(all_versions=False),
            "Ctrl+R",
            "validateAction",
        )
        self.validate_all_action = self._action(
            "Validate &all", lambda: self.validate(all_versions=True), "Ctrl+Shift+R", "validateAllAction"
        )
        self.drift_action = self._action(
            "Check data &drift…",
            self.check_drift,
            None,
            "driftAction",
            "Compare the current data with the training data of the selected model version",
        )
        self.kpi_action = self._action(
            "&KPI history…",
            self.show_kpi_history,
            None,
            "kpiHistoryAction",
            "Metrics of the selected version over time",
        )
        self.feedback_action = self._action(
            "&Label anomalies…",
            self.label_anomalies,
            None,
            "feedbackAction",
            "Mark the ranges of the detection shown as true or false anomalies, or add a missed one",
        )
        self.clear_overlays_action = self._action(
            "&Clear model overlays",
            lambda: self.plot_area.clear_overlays() if self.plot_area else None,
            "Esc",
            "clearOverlaysAction",
        )
        self.about_action = self._action("&About Turbofan Desktop", self.show_about, "F1", "aboutAction")
        self.executor_action = self._action(
            "Where models &run…",
            self.edit_executor,
            None,
            "executorAction",
            "Worker processes, the app's own process or a Dask cluster; workers and threads",
        )

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("recentMenu")
        file_menu.addMenu(self.recent_menu)
        self._refresh_recent_menu()
        file_menu.addSeparator()
        file_menu.addAction(self.export_report_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        train_menu = bar.addMenu("&Train")
        train_menu.addAction(self.train_selected_action)
        train_menu.addAction(self.train_all_action)
        train_menu.addSeparator()
        train_menu.addAction(self.executor_action)
        validate_menu = bar.addMenu("&Validate")
        validate_menu.addAction(self.validate_selected_action)
        validate_menu.addAction(self.validate_all_action)
        validate_menu.addAction(self.drift_action)
        validate_menu.addAction(self.kpi_action)
        validate_menu.addAction(self.feedback_action)
        view_menu = bar.addMenu("V&iew")
        for dock, shortcut in (
            (self.data_dock, "Ctrl+1"),
            (self.jobs_dock, "Ctrl+2"),
            (self.models_dock, "Ctrl+3"),
            (self.fleet_dock, "Ctrl+4"),
        ):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(QKeySequence(shortcut))
            view_menu.addAction(toggle)
        view_menu.addSeparator()
        view_menu.addAction(self.clear_overlays_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)
        self.menus = {
            "file": file_menu,
            "train": train_menu,
            "validate": validate_menu,
            "view": view_menu,
            "help": help_menu,
        }

    def _build_status_bar(self) -> None:
        self.registry_label = QLabel(f"Registry: {self.workspace.registry_name}")
        self.registry_label.setObjectName("registryLabel")
        self.jobs_label = QLabel("")
        self.jobs_label.setObjectName("jobsLabel")
        self.statusBar().addWidget(self.registry_label, 1)
        self.statusBar().addPermanentWidget(self.jobs_label)
        self._update_job_count()

    # -- state --------------------------------------------------------------------------------------
    def _restore_state(self) -> None:
        geometry = self.ui_settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.ui_settings.window_state()
        if state is not None:
            self._layout_restored = self.restoreState(state, UI_STATE_VERSION)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._apply_default_layout()

    def _apply_default_layout(self) -> None:
        """First start (no saved layout): a sensible default split; later starts restore the user's."""
        if not self._layout_restored:
            self._layout_restored = True
            self.resizeDocks([self.data_dock], [300], Qt.Orientation.Horizontal)
            self.resizeDocks([self.jobs_dock], [max(160, self.height() // 4)], Qt.Orientation.Vertical)

    def save_state(self) -> None:
        self.ui_settings.save_window(self.saveGeometry(), self.saveState(UI_STATE_VERSION))
        if self.plot_area is not None:
            self.ui_settings.save_splitter_state("plots", self.plot_area.splitter.saveState())
        self.ui_settings.sync()

    def _update_job_count(self, *_: object) -> None:
        if not self._ready:
            self.jobs_label.setText("starting…")
            return
        running = self.jobs.running_count()
        queued = self.jobs.queued_count()
        text = f"{running} job{'s' if running != 1 else ''} running"
        if queued:
            text += f", {queued} queued"
        self.jobs_label.setText(text)

    # -- public API (used by the jobs/models half and by tests) ---------------------------------
    def current_loaded(self) -> LoadedData | None:
        return self.data_panel.current_loaded()

    def current_dataset(self) -> Dataset | None:
        return self.data_panel.current_dataset()

    def current_unit(self) -> Unit | None:
        return self.data_panel.current_unit()

    def current_sensors(self) -> list[str]:
        return list(self.data_panel.selection().sensors)

    def show_error(self, exc: BaseException | str) -> None:
        log_file = str(self.workspace.settings.log_file)
        if self.interactive:
            message = dialogs.show_error(self, exc, log_file)
        else:  # scripted runs (--screenshot) must never block on a modal dialog
            message = dialogs.describe_error(exc, log_file)
            print(f"error: {message.text}", file=sys.stderr)
        self.statusBar().showMessage(message.text, 10000)

    def _report_error(self, exc: BaseException | str) -> None:
        """The controllers' error sink: whatever :meth:`show_error` is now (scripts and tests swap it)."""
        self.show_error(exc)

    # -- data in ------------------------------------------------------------------------------------
    def open_files(self, paths: Iterable[str | Path]) -> list[LoadRequest]:
        """Load files as jobs (RUL files paired with their test files); returns the requests."""
        requests = pair_files(paths)
        for request in requests:
            if request.error is None:
                self.ui_settings.add_recent_file(request.path)
        if requests:
            self.ui_settings.set_last_directory(requests[0].path.parent)
            self._refresh_recent_menu()
            self.statusBar().showMessage(f"Loading {', '.join(r.path.name for r in requests)}…")
        self.loader.load(requests)
        return requests

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open data files", self.ui_settings.last_directory(), FILE_FILTER
        )
        if paths:
            self.open_files(paths)

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.ui_settings.recent_files()
        for index, path in enumerate(recent):
            action = self.recent_menu.addAction(f"&{index + 1} {Path(path).name}")
            action.setToolTip(path)
            action.setData(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_files([p]))
        if recent:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear recent files")
            clear.triggered.connect(self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.ui_settings.clear_recent_files()
        self._refresh_recent_menu()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_files(paths)

    def _on_loaded(self, loaded: LoadedData) -> None:
        self.ensure_ready()
        index = self.data_panel.add_dataset(loaded)
        self.statusBar().showMessage(
            f"Loaded {loaded.request.path.name}: {len(loaded.dataset.units)} units in {loaded.seconds:.2f} s",
            5000,
        )
        if self._first_load_selects or self.data_panel.selection().dataset_index is None:
            self._first_load_selects = False
            self.data_panel.select(index)
        assert self.drift is not None  # built by ensure_ready()
        self.drift.start_auto_check(loaded.dataset)  # against a registered version, as a job

    def _on_load_failed(self, request: LoadRequest, exc: BaseException | str) -> None:
        log.info("could not load %s: %s", request.path, exc)
        self.show_error(exc)

    # -- plotting -----------------------------------------------------------------------------------
    def _plot_selection(self) -> None:
        selection = self.data_panel.selection()
        if selection.dataset_index is None:
            return
        dataset = self.session.file(selection.dataset_index).dataset
        self.ensure_ready()
        assert self.plot_area is not None
        self.plot_area.plot_dataset(dataset, list(selection.units), list(selection.sensors))

    def show_fleet_engine(self, dataset: Dataset, unit: Unit) -> None:
        """An engine was clicked in the fleet panel: select it in the data panel, which plots it."""
        index = self.session.index_of(dataset)
        if index is None:
            self.statusBar().showMessage(f"Unit {unit} is no longer open.", 5000)
            return
        self.data_panel.select(index, [unit])

    def show_version_on_plot(self, version_id: int) -> JobHandle | None:
        """Run detect/forecast/RUL with ``version_id`` on the current unit as a job; draws when done
        (if that unit's dataset is still the one shown)."""
        self.ensure_ready()
        dataset, unit = self.current_dataset(), self.current_unit()
        if dataset is None or unit is None:
            self.show_error("Open a data file and select a unit before showing a model on the plot.")
            return None
        workspace = self.workspace

        def job(progress: ProgressSink, should_stop: ShouldStop) -> ShowOnPlotResult:
            return run_show_on_plot(
                workspace, version_id, dataset, unit, progress=progress, should_stop=should_stop
            )

        handle = self.jobs.submit(f"Show version {version_id} on unit {unit}", job)

        def draw(result: ShowOnPlotResult) -> None:
            if dataset is self.current_dataset():
                self.draw_results(result, unit)

        handle.finished.connect(draw)
        handle.failed.connect(self.show_error)
        return handle

    def draw_results(self, result: ShowOnPlotResult, unit: Unit) -> None:
        self.ensure_ready()
        assert self.plot_area is not None and self.feedback is not None
        dataset = self.current_dataset()
        self.session.last_shown = ShownResult(result.version_id, unit, result.detection, dataset)
        if result.detection is not None:
            feedback = self.feedback.attach()  # ranges are labelled by right-clicking them
            self.plot_area.show_detection(result.detection, unit)
            feedback.detection_shown(result.version_id, result.detection, unit, dataset)
        if result.forecast is not None:
            self.plot_area.show_forecast(result.forecast, unit)
        if result.rul is not None:
            self.plot_area.show_rul(result.rul, unit)
        self.plot_results_shown.emit(result.version_id)

    # -- monitoring (drift, KPI history, feedback) ------------------------------------------------
    def check_drift(self) -> JobHandle | None:
        self.ensure_ready()
        assert self.drift is not None
        return self.drift.start_check()

    def show_sensor_drift(self, dataset_index: int, sensor: str) -> DriftDialog | None:
        """A drift badge in the data panel was activated: the drift view of that sensor."""
        self.ensure_ready()
        assert self.drift is not None
        return self.drift.open_sensor_drift(dataset_index, sensor)

    def show_kpi_history(self) -> KpiDialog | None:
        self.ensure_ready()
        assert self.kpi is not None
        return self.kpi.open()

    def label_anomalies(self) -> FeedbackDialog | None:
        self.ensure_ready()
        assert self.feedback is not None
        return self.feedback.open()

    # -- the jobs/models half -----------------------------------------------------------------------
    def train(self, *, all_sensors: bool) -> JobHandle | None:
        """Train > Train selected sensor… / Train all sensors…: the dialog picks, a job trains."""
        from turbofan_desktop.ui.train_dialog import TrainDialog

        self.ensure_ready()
        dataset = self.current_dataset()
        if dataset is None:
            self.show_error("Open a data file before training a model.")
            return None
        sensors = list(dataset.informative_sensors) if all_sensors else self.current_sensors()[:1]
        dialog = TrainDialog(self.workspace, dataset, sensors, self, all_sensors=all_sensors)
        if not dialog.exec():
            return None
        try:
            request = dialog.request()
        except Exception as exc:  # noqa: BLE001 - a bad config is a user error; anything else is logged
            self.show_error(exc)
            return None
        return self.submit_training(request, title=dialog.job_title())

    def submit_training(self, request: TrainRequest, title: str | None = None) -> JobHandle:
        """Queue ``services.training.train(workspace, request)`` as a job; returns its handle."""
        self.ensure_ready()
        from turbofan_desktop.services.training import train

        if title is None:
            targets = request.targets or (["all sensors"] if request.all_sensors else ["default targets"])
            title = f"Train {request.plugin} on {', '.join(map(str, targets[:3]))}"
            if len(targets) > 3:
                title += f" (+{len(targets) - 3})"
        workspace = self.workspace

        def job(progress: ProgressSink, should_stop: ShouldStop) -> TrainSummary:
            return train(workspace, request, progress=target_progress(progress), should_stop=should_stop)

        return self.jobs.submit(title, job)

    def selected_version_ids(self) -> list[int]:
        if self.models_panel is None:
            return []
        return [int(v) for v in self.models_panel.selected_ids()]

    def validate(self, *, all_versions: bool) -> None:
        """Validate > Validate selected version… / Validate all: the dialog runs the job and shows results."""
        self.ensure_ready()
        version_ids = None if all_versions else self.selected_version_ids()
        if version_ids == []:
            self.models_dock.raise_()
            self.show_error("Select one or more model versions in the Models panel to validate them.")
            return
        self.validate_versions(version_ids)

    def validate_versions(self, version_ids: list[int] | None) -> None:
        from turbofan_desktop.ui.validate_dialog import ValidateDialog

        dialog = ValidateDialog(self.workspace, self.jobs, version_ids, self)
        dialog.exec()
        if self.models_panel is not None:
            self.models_panel.refresh()

    def export_report(self) -> None:
        """File > Export model report…: for the version selected in the Models panel."""
        from turbofan_desktop.ui.report_dialog import ReportDialog

        self.ensure_ready()
        ids = self.selected_version_ids()
        if not ids:
            self.models_dock.raise_()
            self.show_error("Select a model version in the Models panel to export its report.")
            return
        dialog = ReportDialog(
            self.workspace, self.jobs, ids[0], self, default_dir=self.ui_settings.last_directory()
        )
        dialog.exec()

    def reveal_version(self, version_id: int) -> None:
        """A finished training job's version link: show that version in the Models panel."""
        if self.models_panel is None:
            return
        self.models_dock.raise_()
        self.models_panel.refresh()
        self.models_panel.select_version(int(version_id))

    def show_about(self) -> None:
        show_about(self, self.workspace)

    def edit_executor(self) -> None:
        from turbofan_desktop.ui.executor_dialog import ExecutorDialog

        ExecutorDialog(self.workspace.settings, self).exec()

    # -- quit ---------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Save the layout, ask running jobs to stop and wait for them and for file loads, then close."""
        self.save_state()
        if self.jobs.running_count():
            self.statusBar().showMessage("Stopping running jobs…")
        self.jobs.shutdown()
        self.loader.shutdown()
        event.accept()


__all__ = ["MainWindow", "ShowOnPlotResult", "run_show_on_plot"]
