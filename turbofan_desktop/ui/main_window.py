"""The main window: plot area in the centre, data panel on the left, jobs and models docked below.

The window only starts work and shows results. Files load on a worker thread
(:class:`~turbofan_desktop.ui.loading.DataLoader`); training, validation and "show on plot" run as jobs
of the :class:`~turbofan_desktop.ui.jobs.JobManager`. The jobs/training/models widgets are imported
where they are used, so the window still opens (with those actions disabled) if one of them fails to
import.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QWidget,
)

from turbofan_desktop.ui import dialogs
from turbofan_desktop.ui.about import show_about
from turbofan_desktop.ui.data_panel import DataPanel
from turbofan_desktop.ui.drift_badges import show_selected_drift
from turbofan_desktop.ui.loading import DataLoader, LoadedData, LoadRequest, pair_files
from turbofan_desktop.ui.settings import UI_STATE_VERSION, UiSettings

log = logging.getLogger(__name__)

FILE_FILTER = "Data files (*.txt *.csv *.tsv *.parquet *.npy);;All files (*)"
NOT_AVAILABLE = "Not available in this build yet: {what} could not be loaded ({error})."


def _optional(module: str, name: str) -> tuple[Any | None, str | None]:
    """Import ``name`` from ``turbofan_desktop.ui.<module>`` at the point of use; (None, why) on failure."""
    try:
        return getattr(importlib.import_module(f"turbofan_desktop.ui.{module}"), name), None
    except Exception as exc:  # noqa: BLE001 - a missing/broken panel disables its actions, nothing more
        log.warning("ui.%s.%s unavailable: %s", module, name, exc)
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class PlotJob:
    """A "show on plot" job in flight: which unit of which dataset it was started for."""

    version_id: int
    dataset: Any
    unit: Any


@dataclass
class ShowOnPlotResult:
    """What a "show on plot" job returns; each field is None when the model does not serve that task."""

    version_id: int
    tasks: tuple[str, ...] = ()
    detection: Any = None
    forecast: Any = None
    rul: Any = None
    errors: list[str] = field(default_factory=list)


def run_show_on_plot(
    workspace: Any, version_id: int, dataset: Any, unit: Any, *, progress=None, should_stop=None
):
    """Job body: apply one model version to one unit with every task its plugin serves."""
    from turbofan_desktop.services import inference

    spec, _model = inference.load_model(workspace, version_id)
    tasks = tuple(spec.tasks)
    result = ShowOnPlotResult(version_id, tasks)
    if "anomaly" in tasks:
        result.detection = inference.detect(
            workspace, version_id, dataset, units=[unit], progress=progress, should_stop=should_stop
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

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._emitted:
            self._emitted = True
            self.painted.emit()


class MainWindow(QMainWindow):
    """The application window. ``workspace`` is a :class:`turbofan_desktop.services.Workspace`."""

    datasets_loaded = Signal()  # emitted whenever the loader becomes idle
    plot_results_shown = Signal(int)  # version id whose results were drawn
    ready = Signal()  # the plot area, job manager and panels exist

    def __init__(
        self,
        workspace: Any,
        parent: QWidget | None = None,
        *,
        ui_settings: UiSettings | None = None,
        load_function: Callable | None = None,
        defer_panels: bool = False,
    ):
        """``defer_panels=True`` (used at application start) paints the window shell first and builds
        the plot area (pyqtgraph) and the jobs/models panels right after the first paint; anything
        that needs them calls :meth:`ensure_ready`."""
        super().__init__(parent)
        self.workspace = workspace
        self.ui_settings = ui_settings or UiSettings()
        self.setWindowTitle("Turbofan Desktop")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self.plot_area: Any = None
        self.jobs: Any = None
        self.jobs_panel: Any = None
        self.models_panel: Any = None
        self._ready = False
        placeholder = _FirstPaintLabel("Starting…")
        # one central container for the whole session: swapping the central widget itself would make
        # QMainWindow re-split the space between it and the docks
        self._central = QStackedWidget()
        self._central.addWidget(placeholder)
        self.setCentralWidget(self._central)
        self.data_panel = DataPanel(self)
        self.data_panel.selection_changed.connect(self._plot_selection)
        self.data_panel.drift_requested.connect(self.show_sensor_drift)
        self.data_panel.selection_changed.connect(lambda: show_selected_drift(self))
        self.loader = DataLoader(workspace, self, load_function=load_function)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self.loader.idle.connect(self.datasets_loaded)
        self._plot_jobs: dict[int, PlotJob] = {}
        self._unavailable: dict[str, str] = {}
        self._first_load_selects = True
        self.interactive = True  # False: errors go to stderr and the status bar, not to dialogs

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
        """Build the plot area, job manager and jobs/models panels (once)."""
        if self._ready:
            return
        self._ready = True
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
        self.jobs = self._make_job_manager()
        self._build_panels()
        self._require_dialogs()
        self._update_job_count()
        self.ready.emit()

    # -- construction -------------------------------------------------------------------------------
    def _make_job_manager(self) -> Any:
        job_manager, error = _optional("jobs", "JobManager")
        if job_manager is None:
            self._unavailable["jobs"] = error or ""
            return None
        settings = getattr(self.workspace, "settings", None)
        manager = job_manager(
            self.workspace, self, max_concurrent=getattr(settings, "max_concurrent_jobs", 1)
        )
        manager.job_added.connect(self._update_job_count)
        manager.job_finished.connect(self._on_job_finished)
        manager.job_failed.connect(self._on_job_failed)
        manager.job_cancelled.connect(self._on_job_cancelled)
        for signal in ("job_started", "job_finished", "job_failed", "job_cancelled"):
            getattr(manager, signal).connect(self._update_job_count)
            # the manager reaps a finished thread just after its final signal: count again then
            getattr(manager, signal).connect(lambda *_: QTimer.singleShot(100, self, self._update_job_count))
        return manager

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState key docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _placeholder(self, what: str, error: str | None) -> QLabel:
        label = QLabel(NOT_AVAILABLE.format(what=what, error=error))
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label

    def _build_docks(self) -> None:
        self.data_dock = self._dock("Data", "dataDock", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.jobs_dock = self._dock(
            "Jobs", "jobsDock", QLabel("Starting…"), Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.models_dock = self._dock(
            "Models", "modelsDock", QLabel("Starting…"), Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.jobs_dock, self.models_dock)
        self.jobs_dock.raise_()
        self._layout_restored = False

    def _build_panels(self) -> None:
        jobs_panel_class, error = _optional("jobs_panel", "JobsPanel")
        if jobs_panel_class is not None and self.jobs is not None:
            self.jobs_panel = jobs_panel_class(self.jobs, self)
            version_activated = getattr(self.jobs_panel, "version_activated", None)
            if version_activated is not None:
                version_activated.connect(self.reveal_version)
            jobs_widget: QWidget = self.jobs_panel
        else:
            self._unavailable["jobs_panel"] = error or self._unavailable.get("jobs", "")
            jobs_widget = self._placeholder("the jobs panel", self._unavailable["jobs_panel"])
        models_panel_class, error = _optional("models_panel", "ModelsPanel")
        if models_panel_class is not None:
            self.models_panel = models_panel_class(self.workspace, self.jobs, self)
            self.models_panel.show_on_plot_requested.connect(self.show_version_on_plot)
            validate_requested = getattr(self.models_panel, "validate_requested", None)
            if validate_requested is not None:  # panels that delegate validation to the window
                validate_requested.connect(self.validate_versions)
            models_widget: QWidget = self.models_panel
        else:
            self._unavailable["models_panel"] = error or ""
            models_widget = self._placeholder("the models panel", error)
        self.jobs_dock.setWidget(jobs_widget)
        self.models_dock.setWidget(models_widget)

    def _action(
        self,
        text: str,
        slot: Callable,
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

    def _require_dialogs(self) -> None:
        self._require("Export model report", self.export_report_action, ("report_dialog", "ReportDialog"))
        self._require("Training", self.train_selected_action, ("train_dialog", "TrainDialog"))
        self._require("Training", self.train_all_action, ("train_dialog", "TrainDialog"))
        self._require("Validation", self.validate_selected_action, ("validate_dialog", "ValidateDialog"))
        self._require("Validation", self.validate_all_action, ("validate_dialog", "ValidateDialog"))

    def _require(self, what: str, action: QAction, *parts: tuple[str, str]) -> None:
        """Disable ``action`` (with the reason as tooltip) when a widget it needs cannot be imported."""
        missing = []
        if self.jobs is None:
            missing.append(f"jobs: {self._unavailable.get('jobs')}")
        for module, name in parts:
            found, error = _optional(module, name)
            if found is None:
                missing.append(f"{module}.{name}: {error}")
        if missing:
            action.setEnabled(False)
            reason = NOT_AVAILABLE.format(what=what, error="; ".join(missing))
            action.setToolTip(reason)
            action.setStatusTip(reason)

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
        settings = getattr(self.workspace, "settings", None)
        where = getattr(settings, "home", None)
        self.registry_label = QLabel(f"Registry: {where}" if where else "Registry: (none)")
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

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
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

    def _update_job_count(self, *_: Any) -> None:
        if self.jobs is None:
            self.jobs_label.setText("starting…" if not self._ready else "jobs unavailable")
            return
        running = self.jobs.running_count()
        queued = self.jobs.queued_count() if hasattr(self.jobs, "queued_count") else 0
        text = f"{running} job{'s' if running != 1 else ''} running"
        if queued:
            text += f", {queued} queued"
        self.jobs_label.setText(text)

    # -- public API (used by the jobs/models half and by tests) ---------------------------------
    def current_loaded(self) -> LoadedData | None:
        index = self.data_panel.selection().dataset_index
        loaded = self.data_panel.loaded
        if index is None:
            return loaded[-1] if loaded else None
        return loaded[index]

    def current_dataset(self) -> Any:
        loaded = self.current_loaded()
        return loaded.dataset if loaded is not None else None

    def current_unit(self) -> Any:
        units = self.data_panel.selection().units
        if units:
            return units[0]
        dataset = self.current_dataset()
        return dataset.units[0] if dataset is not None and dataset.units else None

    def current_sensors(self) -> list[str]:
        return list(self.data_panel.selection().sensors)

    def show_error(self, exc: BaseException | str) -> None:
        settings = getattr(self.workspace, "settings", None)
        log_file = str(settings.log_file) if settings is not None else None
        if self.interactive:
            message = dialogs.show_error(self, exc, log_file)
        else:  # scripted runs (--screenshot) must never block on a modal dialog
            message = dialogs.describe_error(exc, log_file)
            print(f"error: {message.text}", file=sys.stderr)
        self.statusBar().showMessage(message.text, 10000)

    # -- data in ------------------------------------------------------------------------------------
    def open_files(self, paths: Iterable[str | Path]) -> list[LoadRequest]:
        """Load files on a worker thread (RUL files paired with their test files); returns the requests."""
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

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
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
        from turbofan_desktop.ui.drift_view import start_auto_drift_check

        start_auto_drift_check(self, loaded.dataset)  # against a registered version, as a job

    def _on_load_failed(self, request: LoadRequest, exc: Any) -> None:
        log.info("could not load %s: %s", request.path, exc)
        self.show_error(exc)

    # -- plotting -----------------------------------------------------------------------------------
    def _plot_selection(self) -> None:
        selection = self.data_panel.selection()
        if selection.dataset_index is None:
            return
        dataset = self.data_panel.loaded[selection.dataset_index].dataset
        self.ensure_ready()
        self.plot_area.plot_dataset(dataset, list(selection.units), list(selection.sensors))

    def show_version_on_plot(self, version_id: int) -> int | None:
        """Run detect/forecast/RUL with ``version_id`` on the current unit as a job; draws when done."""
        self.ensure_ready()
        dataset, unit = self.current_dataset(), self.current_unit()
        if dataset is None or unit is None:
            self.show_error("Open a data file and select a unit before showing a model on the plot.")
            return None
        if self.jobs is None:
            self.show_error(NOT_AVAILABLE.format(what="the job manager", error=self._unavailable.get("jobs")))
            return None
        job_id = self.jobs.submit(
            f"Show version {version_id} on unit {unit}",
            run_show_on_plot,
            self.workspace,
            version_id,
            dataset,
            unit,
        )
        self._plot_jobs[job_id] = PlotJob(version_id, dataset, unit)
        return job_id

    # -- monitoring (drift, KPI history, feedback) ------------------------------------------------
    def check_drift(self) -> int | None:
        from turbofan_desktop.ui.drift_view import start_drift_check

        return start_drift_check(self)

    def show_sensor_drift(self, dataset_index: int, sensor: str) -> Any:
        """A drift badge in the data panel was activated: the drift view of that sensor."""
        from turbofan_desktop.ui.drift_view import open_sensor_drift

        return open_sensor_drift(self, dataset_index, sensor)

    def show_kpi_history(self) -> Any:
        from turbofan_desktop.ui.kpi_view import open_kpi_history

        return open_kpi_history(self)

    def label_anomalies(self) -> Any:
        from turbofan_desktop.ui.feedback_view import open_feedback

        return open_feedback(self)

    def draw_results(self, result: ShowOnPlotResult, unit: Any) -> None:
        self.last_plot_result = (result, unit)
        if result.detection is not None:
            from turbofan_desktop.ui.feedback_view import attach_plot_feedback

            feedback = attach_plot_feedback(self)  # ranges are labelled by right-clicking them
            self.plot_area.show_detection(result.detection, unit)
            feedback.detection_shown(result.version_id, result.detection, unit, self.current_dataset())
        if result.forecast is not None:
            self.plot_area.show_forecast(result.forecast, unit)
        if result.rul is not None:
            self.plot_area.show_rul(result.rul, unit)
        self.plot_results_shown.emit(result.version_id)

    def _on_job_finished(self, job_id: int, result: Any) -> None:
        plot_job = self._plot_jobs.pop(job_id, None)
        if plot_job is not None:
            if plot_job.dataset is self.current_dataset():
                self.draw_results(result, plot_job.unit)
            return
        if self.models_panel is not None:
            self.models_panel.refresh()

    def _on_job_failed(self, job_id: int, message: str) -> None:
        if self._plot_jobs.pop(job_id, None) is not None:
            self.show_error(message)

    def _on_job_cancelled(self, job_id: int) -> None:
        self._plot_jobs.pop(job_id, None)

    # -- the jobs/models half -----------------------------------------------------------------------
    def train(self, *, all_sensors: bool) -> int | None:
        """Train > Train selected sensor… / Train all sensors…: the dialog picks, a job trains."""
        self.ensure_ready()
        dataset = self.current_dataset()
        if dataset is None:
            self.show_error("Open a data file before training a model.")
            return None
        train_dialog, error = _optional("train_dialog", "TrainDialog")
        if train_dialog is None or self.jobs is None:
            self.show_error(
                NOT_AVAILABLE.format(what="training", error=error or self._unavailable.get("jobs"))
            )
            return None
        sensors = list(dataset.informative_sensors) if all_sensors else self.current_sensors()[:1]
        dialog = train_dialog(self.workspace, dataset, sensors, self, all_sensors=all_sensors)
        if not dialog.exec():
            return None
        try:
            request = dialog.request()
        except Exception as exc:  # noqa: BLE001 - a bad config is a user error; anything else is logged
            self.show_error(exc)
            return None
        job_title = getattr(dialog, "job_title", None)
        return self.submit_training(request, title=job_title() if callable(job_title) else None)

    def submit_training(self, request: Any, title: str | None = None) -> int:
        """Queue ``services.training.train(workspace, request)`` as a job; returns its id."""
        self.ensure_ready()
        from turbofan_desktop.services.training import train

        if title is None:
            targets = request.targets or (["all sensors"] if request.all_sensors else ["default targets"])
            title = f"Train {request.plugin} on {', '.join(map(str, targets[:3]))}"
            if len(targets) > 3:
                title += f" (+{len(targets) - 3})"
        return self.jobs.submit(title, train, self.workspace, request)

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
        validate_dialog, error = _optional("validate_dialog", "ValidateDialog")
        if validate_dialog is None or self.jobs is None:
            self.show_error(
                NOT_AVAILABLE.format(what="validation", error=error or self._unavailable.get("jobs"))
            )
            return
        dialog = validate_dialog(self.workspace, self.jobs, version_ids, self)
        dialog.exec()
        if self.models_panel is not None:
            self.models_panel.refresh()

    def export_report(self) -> None:
        """File > Export model report…: for the version selected in the Models panel."""
        self.ensure_ready()
        report_dialog, error = _optional("report_dialog", "ReportDialog")
        if report_dialog is None or self.jobs is None:
            self.show_error(
                NOT_AVAILABLE.format(what="report export", error=error or self._unavailable.get("jobs"))
            )
            return
        ids = self.selected_version_ids()
        if not ids:
            self.models_dock.raise_()
            self.show_error("Select a model version in the Models panel to export its report.")
            return
        dialog = report_dialog(
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

    # -- quit ---------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Save the layout, ask running jobs to stop and wait for them and for file loads, then close."""
        self.save_state()
        if self.jobs is not None and self.jobs.running_count():
            self.statusBar().showMessage("Stopping running jobs…")
        if self.jobs is not None:
            self.jobs.shutdown()
        self.loader.wait()
        event.accept()


__all__ = ["MainWindow", "PlotJob", "ShowOnPlotResult", "run_show_on_plot"]
