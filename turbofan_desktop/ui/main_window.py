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
    from turbofan_desktop.errors import PasswordRequiredError
    from turbofan_desktop.plugins.contract import DetectionResult, ForecastResult, RULResult
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.applicability import Applicability
    from turbofan_desktop.services.session import Dataset
    from turbofan_desktop.services.training import TrainRequest, TrainSummary
    from turbofan_desktop.ui.compare_view import CompareDialog
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
    applicability: Applicability | None = None  # the version's verdict on the data
    refused: bool = False  # out of scope and not accepted: nothing was computed
    name: str = ""  # the version as a user reads it (services.naming)


def run_show_on_plot(
    workspace: Workspace,
    version_id: int,
    dataset: Dataset,
    unit: Unit,
    *,
    progress: ProgressSink | None = None,
    should_stop: ShouldStop | None = None,
    accept_out_of_scope: bool = False,
) -> ShowOnPlotResult:
    """Job body: apply one model version to one unit with every task its plugin serves.

    The applicability check comes first (no model is loaded for it): on data out of the version's
    scope the result comes back ``refused`` with the verdict, unless ``accept_out_of_scope`` (the
    user saw the reasons and chose to go on)."""
    from turbofan_desktop.services import inference
    from turbofan_desktop.services.applicability import OutOfScopeError, check_applicability
    from turbofan_desktop.services.naming import version_name_of

    name = version_name_of(workspace, version_id)
    verdict = check_applicability(workspace, version_id, dataset)
    if verdict.out_of_scope and not accept_out_of_scope:
        return ShowOnPlotResult(version_id, applicability=verdict, refused=True, name=name)
    tasks = inference.version_tasks(workspace, version_id)  # the model loads where it runs
    result = ShowOnPlotResult(version_id, tasks, applicability=verdict, name=name)
    one_unit = dataset.subset([unit])
    try:
        if "anomaly" in tasks:
            result.detection = inference.detect(
                workspace,
                version_id,
                dataset,
                units=[unit],
                progress=event_progress(progress) if progress is not None else None,
                should_stop=should_stop,
                accept_out_of_scope=accept_out_of_scope,
            )
        if "forecast" in tasks:
            result.forecast = inference.forecast(
                workspace, version_id, dataset, units=[unit], accept_out_of_scope=accept_out_of_scope
            )
        if "rul" in tasks:
            result.rul = inference.predict_rul(
                workspace, version_id, one_unit, accept_out_of_scope=accept_out_of_scope
            )
    except OutOfScopeError:  # the file passed, the unit alone does not: ask about the unit
        unit_verdict = check_applicability(workspace, version_id, one_unit)
        return ShowOnPlotResult(version_id, tasks, applicability=unit_verdict, refused=True, name=name)

    return result


@dataclass
class RegistrySwitch:
    """What an "open registry" job returns: done, or the server asked for a password first."""

    location: str
    asks_password: PasswordRequiredError | None = None


def _display_name(location: str) -> str:
    from turbofan_desktop.services.models import registry_display_name

    return registry_display_name(location)


def applicability_text(name: str, verdict: Applicability) -> str:
    """One line for the plot and the status bar: the version, the verdict and its first reason."""
    return f"{name}: {verdict.headline()}"


def ask_out_of_scope(parent: QWidget, name: str, verdict: Applicability, unit: Unit) -> bool:
    """Ask whether to apply a version to data out of its scope; the reasons are the dialog's text."""
    reasons = "\n".join(f"• {reason}" for reason in verdict.reasons)
    return dialogs.ask_yes_no(
        parent,
        "Out of scope",
        f"{name} is out of scope on unit {unit} of this data:\n\n{reasons}\n\n"
        "Its results would be a guess. Show them anyway?",
    )


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
    registry_switched = Signal(str)  # File > Registry > Open… opened this registry (name without password)

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

        self.jobs_panel = JobsPanel(self.jobs, self, version_name=self._version_name)
        self.jobs_panel.version_activated.connect(self.reveal_version)
        self.models_panel = ModelsPanel(self.workspace, self.jobs, self)
        self.models_panel.show_on_plot_requested.connect(self.show_version_on_plot)
        self.models_panel.watch_registry()  # versions others register appear without a click
        self.models_panel.validate_requested.connect(self.validate_versions)
        self.models_panel.compare_opened.connect(self.attach_comparison)
        self.models_panel.versions_changed.connect(self._refresh_file_model)
        self.jobs.job_finished.connect(lambda *_: self._refresh_file_model())  # a training registered one
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
        self.open_registry_action = self._action(
            "&Open…",
            self.open_registry_dialog,
            None,
            "openRegistryAction",
            "Open another model registry: a folder or a URL (sqlite:///…, postgresql://…)",
        )
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
        self.registry_menu = QMenu("Re&gistry", self)
        self.registry_menu.setObjectName("registryMenu")
        file_menu.addMenu(self.registry_menu)
        self._refresh_registry_menu()
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
        self.registry_label = QLabel()
        self.registry_label.setObjectName("registryLabel")
        self._show_registry_name()
        self.jobs_label = QLabel("")
        self.jobs_label.setObjectName("jobsLabel")
        self.model_label = QLabel("")  # which version answers RUL questions about the file shown
        self.model_label.setObjectName("fileModelLabel")
        self.statusBar().addWidget(self.registry_label, 1)
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.jobs_label)
        self._model_label_for: object = None
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
            # tall enough for one whole job card (progress, loss curve and log)
            self.resizeDocks([self.jobs_dock], [max(260, self.height() // 3)], Qt.Orientation.Vertical)

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
        if requests:  # a file joins Open Recent once it has loaded (_on_loaded), never when it failed
            self.ui_settings.set_last_directory(requests[0].path.parent)
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
        self.ui_settings.add_recent_file(loaded.request.path)
        self._refresh_recent_menu()
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
        self.show_file_model(dataset)

    def _refresh_file_model(self) -> None:
        dataset = self.current_dataset()
        if dataset is not None:
            self.show_file_model(dataset, again=True)

    def show_file_model(self, dataset: Dataset, *, again: bool = False) -> str:
        """Say in the status bar which version answers RUL questions about ``dataset`` (registry
        reads only; once per file unless ``again``, e.g. after a promotion)."""
        from turbofan_desktop.services.naming import rul_model_for

        if dataset is self._model_label_for and not again:
            return self.model_label.text()
        self._model_label_for = dataset
        try:
            found = rul_model_for(self.workspace, dataset)
        except Exception:  # noqa: BLE001 - a status line must never break plotting
            log.exception("finding the RUL version of a file failed")
            found = None
        self.model_label.setText(found["text"] if found else "")
        self.model_label.setStyleSheet("" if not found or found["production_match"] else "color: #8a5a00;")
        return self.model_label.text()

    def show_fleet_engine(self, dataset: Dataset, unit: Unit) -> None:
        """An engine was clicked in the fleet panel: select it in the data panel, which plots it."""
        index = self.session.index_of(dataset)
        if index is None:
            self.statusBar().showMessage(f"Unit {unit} is no longer open.", 5000)
            return
        self.data_panel.select(index, [unit])

    def show_version_on_plot(self, version_id: int, *, accept_out_of_scope: bool = False) -> JobHandle | None:
        """Run detect/forecast/RUL with ``version_id`` on the current unit as a job; draws when done
        (if that unit's dataset is still the one shown). Data out of the version's scope is not
        computed on until the user, shown the reasons, chooses to go on."""
        self.ensure_ready()
        dataset, unit = self.current_dataset(), self.current_unit()
        if dataset is None or unit is None:
            self.show_error("Open a data file and select a unit before showing a model on the plot.")
            return None
        workspace = self.workspace

        def job(progress: ProgressSink, should_stop: ShouldStop) -> ShowOnPlotResult:
            return run_show_on_plot(
                workspace,
                version_id,
                dataset,
                unit,
                progress=progress,
                should_stop=should_stop,
                accept_out_of_scope=accept_out_of_scope,
            )

        name = self._version_name(version_id)
        handle = self.jobs.submit(f"Show {name} on unit {unit}", job, background=True)

        def draw(result: ShowOnPlotResult) -> None:
            if dataset is not self.current_dataset():
                return
            if result.refused:
                self._out_of_scope(result, unit)
                return
            self.draw_results(result, unit)

        handle.finished.connect(draw)
        handle.failed.connect(self.show_error)
        return handle

    def _version_name(self, version_id: int) -> str:
        from turbofan_desktop.services.naming import version_name_of

        return version_name_of(self.workspace, version_id)

    def _out_of_scope(self, result: ShowOnPlotResult, unit: Unit) -> None:
        """The version is out of scope on the data: say so on the plot and in the status bar, and
        ask whether to compute anyway."""
        assert self.plot_area is not None and result.applicability is not None
        name = result.name or self._version_name(result.version_id)
        self.show_applicability(name, result.applicability)
        if not self.interactive:
            return
        if ask_out_of_scope(self, name, result.applicability, unit):
            self.show_version_on_plot(result.version_id, accept_out_of_scope=True)

    def show_applicability(self, name: str, verdict: Applicability) -> None:
        """The verdict of ``name`` on the data shown: a line above the plots and in the status bar."""
        assert self.plot_area is not None
        self.plot_area.show_applicability(name, verdict.verdict, verdict.headline(), verdict.reasons)
        self.statusBar().showMessage(applicability_text(name, verdict), 15000)

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
        if result.applicability is not None:
            self.show_applicability(
                result.name or self._version_name(result.version_id), result.applicability
            )
        self.plot_results_shown.emit(result.version_id)

    # -- comparing versions -------------------------------------------------------------------------
    def attach_comparison(self, dialog: CompareDialog) -> None:
        """A comparison opened in the models panel: let it score the open file and overlay its
        versions on the selected unit."""
        from turbofan_desktop.ui.compare_view import OpenFile

        def open_file() -> OpenFile | None:
            loaded, unit = self.current_loaded(), self.current_unit()
            if loaded is None or unit is None:
                return None
            rul_path = loaded.request.rul_path or loaded.dataset.rul_source  # paired by the reader
            return OpenFile(loaded.request.path, rul_path, unit)

        dialog.attach(self.workspace, self.jobs, open_file)
        self.data_panel.selection_changed.connect(dialog.refresh_buttons)
        dialog.overlay_requested.connect(self.show_versions_on_plot)

    def show_versions_on_plot(self, version_ids: list[int]) -> JobHandle | None:
        """Several versions' predictions on the current unit, together (a job; the comparison view's
        overlay). Each is computed whatever its verdict, which the legend states."""
        self.ensure_ready()
        dataset, unit = self.current_dataset(), self.current_unit()
        if dataset is None or unit is None:
            self.show_error("Open a data file and select a unit before overlaying versions on the plot.")
            return None
        workspace, ids = self.workspace, [int(v) for v in version_ids]

        def job(progress: ProgressSink, should_stop: ShouldStop) -> list[ShowOnPlotResult]:
            return [
                run_show_on_plot(
                    workspace, v, dataset, unit, should_stop=should_stop, accept_out_of_scope=True
                )
                for v in ids
            ]

        handle = self.jobs.submit(f"Overlay {len(ids)} versions on unit {unit}", job)

        def draw(results: list[ShowOnPlotResult]) -> None:
            from turbofan_desktop.ui.plot_area import ComparedPrediction, show_comparison

            if dataset is not self.current_dataset():
                return
            assert self.plot_area is not None
            predictions = [
                ComparedPrediction(
                    r.name or self._version_name(r.version_id),
                    r.detection,
                    r.forecast,
                    r.rul,
                    r.applicability.verdict if r.applicability is not None else "",
                )
                for r in results
            ]
            show_comparison(self.plot_area, predictions, unit)
            self.statusBar().showMessage(f"{len(results)} versions overlaid on unit {unit}", 10000)
            self.plot_results_shown.emit(-1)

        handle.finished.connect(draw)
        handle.failed.connect(self.show_error)
        return handle

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
        dialog = TrainDialog(
            self.workspace, dataset, sensors, self, all_sensors=all_sensors, ui_settings=self.ui_settings
        )
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
            self.workspace, self.jobs, ids[0], self, default_dir=self.ui_settings.last_report_directory()
        )
        dialog.exec()
        if dialog.written is not None:
            self.ui_settings.set_last_report_directory(dialog.written.parent)

    def reveal_version(self, version_id: int) -> None:
        """A finished training job's version link: show that version in the Models panel."""
        if self.models_panel is None:
            return
        self.models_dock.raise_()
        self.models_panel.refresh()
        self.models_panel.select_version(int(version_id))

    def show_about(self) -> None:
        show_about(self, self.workspace)

    # -- the registry (File > Registry) -------------------------------------------------------------
    def _show_registry_name(self) -> None:
        name = self.workspace.registry_name  # never with a password
        suffix = " (read-only)" if self.workspace.registry_read_only else ""
        self.registry_label.setText(f"Registry: {name}{suffix}")
        self.registry_label.setToolTip(name)

    def _refresh_registry_menu(self) -> None:
        self.registry_menu.clear()
        self.registry_menu.addAction(self.open_registry_action)
        recent = self.ui_settings.recent_registries()
        if recent:
            self.registry_menu.addSeparator()
        for index, location in enumerate(recent):
            action = self.registry_menu.addAction(f"&{index + 1} {location}")
            action.setData(location)
            action.triggered.connect(lambda _checked=False, where=location: self.open_registry(where))

    def open_registry_dialog(self) -> None:
        """File > Registry > Open…: pick a folder or type a URL, then open it (:meth:`open_registry`)."""
        from turbofan_desktop.ui.registry_dialog import RegistryOpenDialog

        dialog = RegistryOpenDialog(self.workspace.registry_name, self.ui_settings.recent_registries(), self)
        if dialog.exec():
            self.open_registry(dialog.location())

    def open_registry(self, location: str, *, password: str | None = None) -> JobHandle | None:
        """Open the registry at ``location`` (a folder or a URL) as a job and make it the window's:
        status bar, recent registries, models panel. A server that asks for a password gets one
        typed by the user (never stored); on any failure the current registry stays open."""
        from turbofan_desktop.ui.registry_dialog import ask_password

        self.ensure_ready()
        location = str(location).strip()
        if not location:
            return None
        if self.jobs.active_count():  # a job of the registry closed must not write to the new one
            self.show_error(
                "Wait for the running jobs to finish (or cancel them) before opening another registry."
            )
            return None
        workspace = self.workspace
        name = _display_name(location)

        def job(progress: ProgressSink, should_stop: ShouldStop) -> RegistrySwitch:
            from turbofan_desktop.errors import PasswordRequiredError

            try:
                # create=False: a mistyped folder is an error, not a new empty registry
                workspace.switch_registry(location, password=password, create=False)
            except PasswordRequiredError as exc:  # answered on the GUI thread, which asks the user
                return RegistrySwitch(location, asks_password=exc)
            return RegistrySwitch(location)

        handle = self.jobs.submit(f"Open registry {name}", job)

        def done(outcome: RegistrySwitch) -> None:
            if outcome.asks_password is None:
                self._registry_switched()
                return
            typed = (
                ask_password(self, location, refused=outcome.asks_password.refused)
                if self.interactive
                else None
            )
            if typed is None:
                self.show_error(outcome.asks_password)
            else:
                self.open_registry(location, password=typed)

        handle.finished.connect(done)
        handle.failed.connect(self.show_error)
        return handle

    def _registry_switched(self) -> None:
        name = self.workspace.registry_name
        self.ui_settings.add_recent_registry(name)
        self._refresh_registry_menu()
        self._show_registry_name()
        if self.plot_area is not None:
            self.plot_area.clear_overlays()  # drawn by versions of the registry closed
        if self.models_panel is not None:
            self.models_panel.set_drift_badges({})
            self.models_panel.refresh()
        self.statusBar().showMessage(f"Opened registry {name}", 5000)
        self.registry_switched.emit(name)

    def edit_executor(self) -> None:
        from turbofan_desktop.ui.executor_dialog import ExecutorDialog

        ExecutorDialog(self.workspace.settings, self).exec()

    # -- quit ---------------------------------------------------------------------------------------
    def confirm_quit(self) -> bool:
        """True when nothing the user started is running, or the user chose to stop it and quit."""
        running = self.jobs.running_foreground()
        if not running or not self.interactive:
            return True
        titles = "\n".join(f"• {job.title}" for job in running[:5])
        more = f"\n… and {len(running) - 5} more" if len(running) > 5 else ""
        return dialogs.ask_yes_no(
            self,
            "Quit while jobs run?",
            f"{len(running)} job{'s are' if len(running) > 1 else ' is'} still running or queued:\n"
            f"{titles}{more}\n\nQuitting stops {'them' if len(running) > 1 else 'it'}; "
            "a model being trained is not registered. Quit anyway?",
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Ask first while a job the user started runs (training would be lost); then save the
        layout, ask running jobs to stop and wait for them and for file loads, and close."""
        if not self.confirm_quit():
            event.ignore()
            return
        self.save_state()
        if self.jobs.running_count():
            self.statusBar().showMessage("Stopping running jobs…")
        self.jobs.shutdown()
        self.loader.shutdown()
        if self.models_panel is not None:
            self.models_panel.stop_watching()
        event.accept()


__all__ = ["MainWindow", "ShowOnPlotResult", "run_show_on_plot"]
