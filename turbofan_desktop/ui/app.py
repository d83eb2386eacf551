"""Starting the desktop application, and its scripted ``--screenshot`` mode.

:func:`run_app` is called by the CLI with the GUI argument namespace (``files``, ``screenshot``,
``demo_train``, ``registry``). The window is shown first and files load afterwards on a worker thread,
so the first paint never waits for data. ``--screenshot PATH`` renders the window offscreen once the
files are loaded (and, with ``--demo-train``, after tiny models were trained and applied) and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from turbofan_desktop.services.session import Dataset
    from turbofan_desktop.services.training import TrainRequest, TrainSummary
    from turbofan_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_MS = 9 * 60 * 1000
SCREENSHOT_SIZE = (1400, 860)

DEMO_TRAIN_UNITS = 20


def sample_files() -> list[Path]:
    """The bundled FD001 sample (train, test and its RUL file), wherever the app is installed."""
    from turbofan_desktop.services.data import bundled_sample_files

    return bundled_sample_files()


def _app_icon() -> QIcon:
    from PySide6.QtGui import QIcon

    from turbofan_desktop.services.data import resources_dir

    icon = QIcon()
    resources = resources_dir()
    if resources is not None:
        for png in sorted((resources / "icons").glob("turbofan-desktop_*.png")):
            icon.addFile(str(png))
    return icon


def leave_a_core_for_the_gui() -> int | None:
    """When torch's thread count is on "auto", use all cores but one while the GUI runs.

    torch's intra-op threads busy-wait between parallel regions; with every core taken the GUI
    thread waits for the scheduler and the window stutters (measured on 2 cores: GUI stalls of
    140 ms p99 with 2 torch threads, 31 ms with 1). An explicit setting (settings file or
    ``TURBOFAN_TORCH_THREADS``) is left alone. Returns the thread count chosen, or None.
    """
    from turbofan_desktop.config import ENV_PREFIX, load_settings

    name = ENV_PREFIX + "TORCH_THREADS"
    if os.environ.get(name, "").strip():
        return None
    try:
        if load_settings().torch_threads > 0:
            return None
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    except Exception:  # noqa: BLE001 - a bad settings file is reported when the workspace opens
        return None
    threads = max(1, cores - 1)
    os.environ[name] = str(threads)
    return threads


def ensure_platform_can_start() -> None:
    """Raise a one-sentence error, before any QApplication exists, when Qt could not open a window.

    Qt aborts the whole process (no exception, no exit status) when its platform plugin cannot load;
    checking first turns a missing system library or display into the CLI's usual exit status 2.
    """
    from turbofan_desktop.errors import DisplayUnavailableError
    from turbofan_desktop.ui.qt_platform import platform_problem

    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is not None and widgets.QApplication.instance() is not None:
        return  # a platform is already running (tests, a second window)
    problem = platform_problem()
    if problem:
        raise DisplayUnavailableError(problem)


def _application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    app.setApplicationName("Turbofan Desktop")
    app.setOrganizationName("turbofan-desktop")
    app.setDesktopFileName("turbofan-desktop")
    app.setWindowIcon(_app_icon())
    return app


def run_app(args: argparse.Namespace) -> int:
    """Open the main window with ``args.files`` (default: the bundled sample) and run the event loop.

    ``args`` is the GUI parser's namespace: ``files``, ``screenshot``, ``demo_train``, ``registry``.
    """
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    ensure_platform_can_start()
    leave_a_core_for_the_gui()
    app = _application()
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.ui.main_window import MainWindow

    workspace = Workspace.open(args.registry)
    try:
        ui_settings = None
        if args.screenshot:
            # a scripted screenshot neither uses nor overwrites the user's saved window layout
            import tempfile

            from turbofan_desktop.ui.settings import UiSettings

            ui_settings = UiSettings(Path(tempfile.mkdtemp(prefix="turbofan-screenshot-")) / "ui.ini")
        window = MainWindow(workspace, defer_panels=True, ui_settings=ui_settings)
        files = [Path(f) for f in (args.files or [])] or sample_files()
        if args.screenshot:
            window.resize(*SCREENSHOT_SIZE)
            window.interactive = False
            director = ScreenshotDirector(window, Path(args.screenshot), demo_train=bool(args.demo_train))
            window.show()
            director.start(files)
            app.exec()
            window.close()
            return director.exit_code
        window.show()
        window.open_files(files)
        code = app.exec()
        return int(code)
    finally:
        workspace.close()


class ScreenshotDirector:
    """Drives the scripted screenshot: load -> (train -> show on plot) -> grab -> quit.

    Each step starts when the previous one signals it is done; a watchdog saves whatever is on screen
    if a step never finishes, so the command always ends.
    """

    def __init__(self, window: MainWindow, path: Path, *, demo_train: bool):
        from PySide6.QtCore import QTimer

        self.window = window
        self.path = path
        self.demo_train = demo_train
        self.exit_code = 1
        self._train_jobs: set[int] = set()
        self._plot_jobs: set[int] = set()
        self._versions: list[int] = []
        self._done = False
        self._load_failures: list[Path] = []
        self._watchdog = QTimer()
        self._watchdog.setSingleShot(True)
        self._watchdog.timeout.connect(lambda: self._finish("timed out; saving the window as it is"))

    def start(self, files: list[Path]) -> None:
        self._watchdog.start(SCREENSHOT_TIMEOUT_MS)
        self.window.loader.failed.connect(lambda request, exc: self._load_failures.append(request.path))
        self.window.datasets_loaded.connect(self._loaded)
        requests = self.window.open_files(files)
        if not requests:
            self._loaded()

    def _loaded(self) -> None:
        self.window.datasets_loaded.disconnect(self._loaded)
        self.window.ensure_ready()
        if not self.demo_train:
            self._grab_soon()
            return
        dataset = self._training_dataset()
        if dataset is None:
            self._finish("nothing to train on (no data loaded)")
            return
        self._choose_display_unit()
        for request in self._demo_requests(dataset):
            handle = self.window.submit_training(request)
            self._train_jobs.add(handle.id)
            handle.finished.connect(lambda summary, job_id=handle.id: self._trained(job_id, summary))
            handle.failed.connect(lambda message, job_id=handle.id: self._train_failed(job_id, message))
            handle.cancelled.connect(lambda job_id=handle.id: self._train_failed(job_id, "cancelled"))

    def _training_dataset(self) -> Dataset | None:
        for loaded in self.window.data_panel.loaded:
            if loaded.dataset.rul is None:  # a run-to-failure training file
                units = loaded.dataset.units[:DEMO_TRAIN_UNITS]
                return loaded.dataset.subset(units, note="demo training units")
        return None

    def _choose_display_unit(self) -> None:
        """Show results on a unit the models did not train on: the longest test unit when loaded."""
        panel = self.window.data_panel
        loaded = panel.loaded
        test_index = next((i for i, d in enumerate(loaded) if d.dataset.rul is not None), None)
        index = test_index if test_index is not None else 0
        dataset = loaded[index].dataset
        lengths = dataset.unit_lengths()
        unit = lengths.idxmax() if test_index is not None else dataset.units[-1]
        sensors = list(panel.selection().sensors) or dataset.informative_sensors[:4]
        panel.select(index, [unit], sensors)

    def _demo_requests(self, dataset: Dataset) -> list[TrainRequest]:
        from turbofan_desktop.services.training import TrainRequest, preset_configs

        plugins = self.window.workspace.plugins.models()
        sensor = (self.window.current_sensors() or dataset.informative_sensors)[0]
        requests = []
        # each plugin declares its "demo" preset in its model spec (seconds of CPU, enough to draw)
        for name, config in preset_configs(self.window.workspace, "demo").items():
            spec = plugins[name]
            targets = [sensor] if spec.per_target else None
            requests.append(TrainRequest(plugin=name, dataset=dataset, targets=targets, config=config))
        return requests

    def _trained(self, job_id: int, summary: TrainSummary | None) -> None:
        self._train_jobs.discard(job_id)
        if summary is not None:
            self._versions += list(summary.registered)
            for outcome in summary.results:
                if outcome.error:
                    log.warning(
                        "demo training of %s/%s failed: %s", outcome.plugin, outcome.target, outcome.error
                    )
        if not self._train_jobs:
            self._show_versions()

    def _train_failed(self, job_id: int, message: str) -> None:
        log.warning("demo job %s failed: %s", job_id, message)
        self._trained(job_id, None)

    def _plotted(self, job_id: int, message: str | None = None) -> None:
        if message is not None:
            log.warning("demo job %s failed: %s", job_id, message)
        self._plot_jobs.discard(job_id)
        if not self._plot_jobs:
            self._grab_soon()

    def _show_versions(self) -> None:
        if not self._versions:
            self._finish("demo training registered no model version")
            return
        if self.window.models_panel is not None:
            self.window.models_panel.refresh()
        for version_id in self._versions:
            handle = self.window.show_version_on_plot(version_id)
            if handle is not None:
                self._plot_jobs.add(handle.id)
                # the window draws on the same signal, connected first: the grab comes after
                handle.finished.connect(lambda _result, job_id=handle.id: self._plotted(job_id))
                handle.failed.connect(lambda message, job_id=handle.id: self._plotted(job_id, message))
                handle.cancelled.connect(lambda job_id=handle.id: self._plotted(job_id, "cancelled"))
        if not self._plot_jobs:
            self._grab_soon()

    def _grab_soon(self) -> None:
        from PySide6.QtCore import QTimer

        self.window.jobs_dock.raise_() if self.demo_train else None
        QTimer.singleShot(300, lambda: self._finish(None))  # let layouts and plots settle

    def _finish(self, problem: str | None) -> None:
        from PySide6.QtWidgets import QApplication

        if self._done:
            return
        self._done = True
        self._watchdog.stop()
        if problem:
            print(f"screenshot: {problem}", file=sys.stderr)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        saved = self.window.grab().save(str(self.path))
        if saved:
            print(f"screenshot saved to {self.path}")
        else:
            print(f"screenshot: could not write {self.path}", file=sys.stderr)
        # the picture is saved either way; the exit status says whether it shows what was asked
        self.exit_code = 0 if saved and not problem and not self._load_failures else 1
        QApplication.instance().quit()
