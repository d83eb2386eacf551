"""The main window: opening data (menu, recent files, drag-and-drop), errors, plotting the selection,
menus, persisted state, quitting with a running job, and the torch-free start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from turbofan_desktop.errors import Cancelled  # noqa: E402
from turbofan_desktop.plugins.contract import (  # noqa: E402
    AnomalyRange,
    DetectionResult,
    RULResult,
    UnitDetection,
    UnitRUL,
)
from turbofan_desktop.ui import main_window as main_window_module  # noqa: E402
from turbofan_desktop.ui.app import sample_files  # noqa: E402
from turbofan_desktop.ui.loading import pair_files  # noqa: E402


@pytest.fixture
def dialogs_seen(monkeypatch):
    """Capture QMessageBox calls instead of blocking on a modal dialog."""
    seen: list[tuple[str, str]] = []
    for kind in ("warning", "critical", "information", "about"):
        monkeypatch.setattr(
            QMessageBox,
            kind,
            staticmethod(lambda parent, title, text, *a, _k=kind, **kw: seen.append((_k, text))),
        )
    return seen


def _sample(name: str) -> Path:
    return next(p for p in sample_files() if p.name == name)


def test_window_opens_with_the_sample_loaded(main_window, open_and_wait, workspace):
    open_and_wait(main_window, sample_files())

    names = [d.request.path.name for d in main_window.data_panel.loaded]
    assert names == ["train_FD001.txt", "test_FD001.txt"]  # the RUL file rides with the test file
    test = main_window.data_panel.loaded[1]
    assert test.request.rul_path.name == "RUL_FD001.txt" and test.dataset.rul is not None
    assert main_window.current_dataset() is main_window.data_panel.loaded[0].dataset
    assert str(main_window.current_unit()) == "1"
    sensors = main_window.current_sensors()
    assert sensors == main_window.current_dataset().informative_sensors[:4]
    assert main_window.plot_area.shown_sensors == sensors
    loaded = main_window.data_panel.loaded[0]
    assert loaded.data_hash == loaded.dataset.data_hash
    assert loaded.data_hash[:16] in main_window.data_panel.hash_label.text()
    assert str(workspace.settings.home) in main_window.registry_label.text()
    assert "0 jobs running" in main_window.jobs_label.text() or main_window.jobs is None


def test_menus_hold_the_main_actions_with_shortcuts(main_window):
    titles = [a.text().replace("&", "") for a in main_window.menuBar().actions()]
    assert titles == ["File", "Train", "Validate", "View", "Help"]
    file_texts = [a.text().replace("&", "") for a in main_window.menus["file"].actions() if a.text()]
    assert file_texts == ["Open…", "Open Recent", "Registry", "Export model report…", "Quit"]
    registry_texts = [a.text().replace("&", "") for a in main_window.registry_menu.actions() if a.text()]
    assert registry_texts[0] == "Open…"
    assert [a.text().replace("&", "") for a in main_window.menus["train"].actions() if a.text()] == [
        "Train selected sensor…",
        "Train all sensors…",
        "Where models run…",
    ]
    assert [a.text().replace("&", "") for a in main_window.menus["validate"].actions()] == [
        "Validate selected version…",
        "Validate all",
        "Check data drift…",
        "KPI history…",
        "Label anomalies…",
    ]
    for action in (
        main_window.open_action,
        main_window.quit_action,
        main_window.train_selected_action,
        main_window.train_all_action,
        main_window.validate_selected_action,
        main_window.validate_all_action,
        main_window.export_report_action,
    ):
        assert not action.shortcut().isEmpty(), action.text()
    shortcuts = [a.shortcut().toString() for a in main_window.findChildren(type(main_window.open_action))]
    assert len([s for s in shortcuts if s]) == len({s for s in shortcuts if s}), "duplicate shortcuts"


def test_file_open_and_open_recent_load_files(main_window, qtbot, monkeypatch, open_and_wait):
    train = _sample("train_FD001.txt")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(train)], "")))
    with qtbot.waitSignal(main_window.datasets_loaded, timeout=20000):
        main_window.open_action.trigger()
    assert [d.request.path for d in main_window.data_panel.loaded] == [train]
    assert main_window.ui_settings.last_directory() == str(train.parent)

    recent = [a for a in main_window.recent_menu.actions() if a.data()]
    assert [Path(a.data()).name for a in recent] == ["train_FD001.txt"]
    with qtbot.waitSignal(main_window.datasets_loaded, timeout=20000):
        recent[0].trigger()
    assert len(main_window.data_panel.loaded) == 1  # reopening the same file replaces it


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_dropping_files_loads_them_with_rul_paired(main_window, qtbot):
    mime = QMimeData()
    mime.setUrls(
        [
            QUrl.fromLocalFile(str(_sample("test_FD001.txt"))),
            QUrl.fromLocalFile(str(_sample("RUL_FD001.txt"))),
        ]
    )
    center = QPointF(main_window.rect().center())
    enter = QDragEnterEvent(
        center.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(main_window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        center, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(main_window.datasets_loaded, timeout=20000):
        QApplication.sendEvent(main_window, drop)
    assert drop.isAccepted()
    (loaded,) = main_window.data_panel.loaded
    assert loaded.request.path.name == "test_FD001.txt" and loaded.request.rul_path.name == "RUL_FD001.txt"
    assert loaded.dataset.rul is not None
    item = main_window.data_panel.tree.topLevelItem(0)
    assert "RUL_FD001.txt" in item.text(0)


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_drag_without_local_files_is_refused(main_window):
    mime = QMimeData()
    mime.setText("not a file")
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(main_window, enter)
    assert not enter.isAccepted()


def test_pair_files_matches_rul_to_its_test_file(tmp_path):
    names = ["train_FD002.txt", "test_FD002.txt", "RUL_FD002.txt", "test_FD003.txt", "RUL_FD003.txt"]
    requests = pair_files(tmp_path / n for n in names)
    pairs = {r.path.name: (r.rul_path.name if r.rul_path else None) for r in requests}
    assert pairs == {
        "train_FD002.txt": None,
        "test_FD002.txt": "RUL_FD002.txt",
        "test_FD003.txt": "RUL_FD003.txt",
    }
    (orphan,) = pair_files([tmp_path / "RUL_FD004.txt"])
    assert orphan.error and "RUL_FD004.txt" in orphan.error


def test_bad_file_shows_its_reason_and_the_app_stays_up(
    main_window, qtbot, dialogs_seen, tmp_path, open_and_wait
):
    bad = tmp_path / "broken.txt"
    bad.write_text("1 1 abc def\n1 2 3\n", encoding="utf-8")
    open_and_wait(main_window, [bad])
    assert len(dialogs_seen) == 1
    kind, text = dialogs_seen[0]
    assert kind == "warning" and "broken.txt" in text and "\n" not in text.strip()
    assert main_window.isVisible() and main_window.data_panel.loaded == []

    open_and_wait(main_window, [_sample("train_FD001.txt")])  # still works afterwards
    assert len(main_window.data_panel.loaded) == 1 and len(dialogs_seen) == 1


def test_unexpected_error_is_logged_and_pointed_to(make_main_window, qtbot, dialogs_seen, workspace, caplog):
    def broken_reader(ws, path, rul_path):
        raise RuntimeError("reader bug")

    window = make_main_window(load_function=broken_reader)
    with qtbot.waitSignal(window.datasets_loaded, timeout=20000):
        window.open_files([_sample("train_FD001.txt")])
    ((kind, text),) = dialogs_seen
    assert kind == "critical" and text == f"Internal error, see {workspace.settings.log_file}."
    assert any(r.exc_info and "reader bug" in str(r.exc_info[1]) for r in caplog.records)


def test_selecting_a_unit_and_a_sensor_plots_it(main_window, qtbot, open_and_wait):
    open_and_wait(main_window, [_sample("train_FD001.txt")])
    panel = main_window.data_panel
    unit_item = panel.unit_item(0, 5)
    unit_item.setExpanded(True)
    sensor_item = panel.sensor_item(0, 5, "s_9")
    panel.tree.scrollToItem(sensor_item)
    rect = panel.tree.visualItemRect(sensor_item)
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    assert str(main_window.current_unit()) == "5" and main_window.current_sensors() == ["s_9"]
    assert main_window.plot_area.shown_sensors == ["s_9"]
    dataset = main_window.current_dataset()
    curve = main_window.plot_area.sensor_plot("s_9").curves[0]
    np.testing.assert_allclose(curve.yData, dataset.unit_frame(5)["s_9"].to_numpy())

    rect = panel.tree.visualItemRect(panel.unit_item(0, 7))
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert str(main_window.current_unit()) == "7" and main_window.plot_area.shown_sensors == ["s_9"]
    assert len(curve.yData) == len(dataset.unit_frame(7))


def test_about_lists_versions_without_importing_torch(main_window, dialogs_seen):
    main_window.about_action.trigger()
    ((kind, text),) = dialogs_seen
    assert kind == "about"
    for name in ("Turbofan Desktop", "torch", "Qt", "plugin telemanom", "plugin transformer"):
        assert name in text


def test_train_validate_and_report_actions_open_their_dialogs(
    main_window, monkeypatch, open_and_wait, dialogs_seen
):
    """Each action builds UI-2's dialog with the window's workspace (dialogs replaced by recorders)."""
    import importlib

    opened = []

    def recorder(module_name, class_name):
        module = importlib.import_module(f"turbofan_desktop.ui.{module_name}")

        class Recorder:
            def __init__(self, *args, **kwargs):
                opened.append((class_name, args, kwargs))

            def exec(self):
                return 0

        monkeypatch.setattr(module, class_name, Recorder)

    recorder("train_dialog", "TrainDialog")
    recorder("validate_dialog", "ValidateDialog")
    recorder("report_dialog", "ReportDialog")
    open_and_wait(main_window, [_sample("train_FD001.txt")])

    main_window.train_selected_action.trigger()
    main_window.train_all_action.trigger()
    main_window.validate_all_action.trigger()
    assert [o[0] for o in opened] == ["TrainDialog", "TrainDialog", "ValidateDialog"]
    train_one, train_all, validate_all = opened
    assert (
        train_one[1][1] is main_window.current_dataset()
        and train_one[1][2] == main_window.current_sensors()[:1]
    )
    assert train_all[2]["all_sensors"] is True and validate_all[1][2] is None

    main_window.validate_selected_action.trigger()  # nothing selected in the Models panel: a sentence
    main_window.export_report_action.trigger()
    assert len(opened) == 3 and [k for k, _ in dialogs_seen] == ["warning", "warning"]


def test_show_on_plot_runs_a_job_and_draws_the_results(main_window, qtbot, monkeypatch, open_and_wait):
    if main_window.jobs is None:
        pytest.skip("JobManager not available")
    open_and_wait(main_window, [_sample("train_FD001.txt")])
    sensor = main_window.current_sensors()[0]
    time_axis = np.arange(20, 60)
    detection = UnitDetection(
        unit=1,
        time=time_axis,
        actual=np.zeros(40),
        predicted=np.zeros(40),
        errors=np.ones(40),
        smoothed=np.ones(40),
        threshold=np.full(40, 2.0),
        anomalies=[AnomalyRange(30, 35, 3.0, 10, 15)],
    )

    def fake_job(
        ws, version_id, dataset, unit, *, progress=None, should_stop=None, accept_out_of_scope=False
    ):
        assert ws is main_window.workspace and str(unit) == "1"
        return main_window_module.ShowOnPlotResult(
            version_id,
            ("anomaly", "rul"),
            detection=DetectionResult(sensor, {1: detection}),
            rul=RULResult(0.8, [UnitRUL(1, 50.0, 40.0, 60.0)]),
        )

    monkeypatch.setattr(main_window_module, "run_show_on_plot", fake_job)
    with qtbot.waitSignal(main_window.plot_results_shown, timeout=20000) as blocker:
        main_window.show_version_on_plot(7)
    assert blocker.args == [7]
    assert len(main_window.plot_area.overlay_items("anomaly")) == 1
    assert "RUL 50" in main_window.plot_area.rul_label.text()


def test_settings_persist_across_two_windows(make_main_window, qtbot, open_and_wait):
    first = make_main_window()
    first.show()
    qtbot.waitExposed(first)
    first.resize(720, 520)
    first.models_dock.raise_()
    first.data_dock.hide()
    open_and_wait(first, [_sample("train_FD001.txt")])
    first.close()

    second = make_main_window()
    second.show()
    qtbot.waitExposed(second)
    assert (second.width(), second.height()) == (720, 520)
    assert second.data_dock.isHidden()
    assert [Path(p).name for p in second.ui_settings.recent_files()] == ["train_FD001.txt"]
    assert second.ui_settings.last_directory() == str(_sample("train_FD001.txt").parent)
    assert [a.text() for a in second.recent_menu.actions() if a.data()] == ["&1 train_FD001.txt"]


def test_quit_while_a_job_runs_asks_then_stops_it_and_waits(main_window, qtbot, questions_answered_yes):
    if main_window.jobs is None:
        pytest.skip("JobManager not available")
    started, stopped = threading.Event(), threading.Event()

    def long_job(progress, should_stop):
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if should_stop():
                stopped.set()
                raise Cancelled()
            time.sleep(0.01)
        return "ran to the end"

    with qtbot.waitSignal(main_window.jobs.job_cancelled, timeout=15000):
        main_window.jobs.submit("long", long_job)
        assert started.wait(10)
        qtbot.waitUntil(lambda: "1 job running" in main_window.jobs_label.text())
        begun = time.monotonic()
        main_window.quit_action.trigger()
    assert stopped.is_set() and time.monotonic() - begun < 10
    assert not main_window.isVisible() and main_window.jobs.running_count() == 0
    assert len(questions_answered_yes) == 1 and "• long" in questions_answered_yes[0]


def test_quit_answered_no_keeps_the_window_and_the_job(main_window, qtbot, monkeypatch):
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        staticmethod(lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No),
    )
    release = threading.Event()

    def job(progress, should_stop):
        while not (release.is_set() or should_stop()):
            time.sleep(0.01)
        return "done"

    handle = main_window.jobs.submit("Train transformer: *", job)
    background = main_window.jobs.submit("Drift against x", job, background=True)
    qtbot.waitUntil(lambda: main_window.jobs.running_count() >= 1)  # the other may queue behind it
    main_window.quit_action.trigger()
    assert main_window.isVisible() and len(asked) == 1
    assert "Train transformer: *" in asked[0] and "Drift against" not in asked[0]
    with (
        qtbot.waitSignal(handle.finished, timeout=10000),
        qtbot.waitSignal(background.finished, timeout=10000),
    ):
        release.set()
    main_window.quit_action.trigger()  # nothing the user started runs: no question
    assert len(asked) == 1 and not main_window.isVisible()


def test_a_file_that_failed_to_open_is_not_a_recent_file(main_window, tmp_path, open_and_wait, monkeypatch):
    monkeypatch.setattr(main_window, "show_error", lambda exc: None)
    broken = tmp_path / "train_FD009.txt"
    broken.write_text("this is not\na turbofan file\n")
    open_and_wait(main_window, [broken])
    assert main_window.ui_settings.recent_files() == []
    assert not [a for a in main_window.recent_menu.actions() if a.data()]
    open_and_wait(main_window, [_sample("train_FD001.txt")])
    assert [Path(p).name for p in main_window.ui_settings.recent_files()] == ["train_FD001.txt"]


def test_reloading_the_selected_file_keeps_the_selection_sane(main_window, open_and_wait, qtbot):
    """Reloading a file swaps its tree item while it is selected (the AttributeError of issue 17)."""
    open_and_wait(main_window, [_sample("train_FD001.txt")])
    main_window.data_panel.select(0, [3])
    open_and_wait(main_window, [_sample("train_FD001.txt")])  # the same path: replaced in place
    selection = main_window.data_panel._compute_selection()
    assert selection.dataset_index in (None, 0)
    main_window.data_panel.select(0, [2])
    assert [str(u) for u in main_window.data_panel.selection().units] == ["2"]
    assert main_window.plot_area.info_label.text().startswith("train_FD001.txt — unit 2")


STARTUP_PROBE = textwrap.dedent(
    """
    import sys
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.ui.app import sample_files
    from turbofan_desktop.ui.main_window import MainWindow
    window = MainWindow(Workspace.open())
    window.show()
    window.open_files(sample_files())
    window.loader.wait(30000)
    app.processEvents()
    window.about_action.setEnabled(True)
    from turbofan_desktop.ui.about import about_html
    about_html(window.workspace)
    app.processEvents()
    print("plotted", window.plot_area.shown_sensors)
    print("torch imported" if "torch" in sys.modules else "torch not imported")
    window.close()
    """
)


def test_showing_the_window_does_not_import_torch(isolated_home):
    result = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "plotted ['s_2'" in result.stdout
    assert "torch not imported" in result.stdout


def test_screenshot_command_writes_a_png(tmp_path, isolated_home):
    out = tmp_path / "window.png"
    sample = str(_sample("train_FD001.txt"))
    result = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "--screenshot", str(out), sample],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_screenshot_of_a_bad_file_reports_it_without_blocking(tmp_path, isolated_home):
    bad = tmp_path / "bad.txt"
    bad.write_text("garbage a b\n", encoding="utf-8")
    out = tmp_path / "window.png"
    result = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "--screenshot", str(out), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1 and out.is_file()
    assert "bad.txt" in result.stderr and "Traceback" not in result.stderr


def test_gui_leaves_one_core_to_itself_unless_told_otherwise(monkeypatch):
    from turbofan_desktop.ui.app import leave_a_core_for_the_gui

    monkeypatch.setenv("TURBOFAN_TORCH_THREADS", "3")
    assert leave_a_core_for_the_gui() is None
    monkeypatch.delenv("TURBOFAN_TORCH_THREADS")
    chosen = leave_a_core_for_the_gui()
    assert chosen is not None and chosen >= 1
    assert int(os.environ["TURBOFAN_TORCH_THREADS"]) == chosen


def test_several_units_plot_together_and_the_mouse_moves_the_crosshair(main_window, qtbot, open_and_wait):
    open_and_wait(main_window, [_sample("train_FD001.txt")])
    main_window.data_panel.select(0, [1, 2], ["s_4"])
    entry = main_window.plot_area.sensor_plot("s_4")
    visible = [c for c in entry.curves if c.isVisible()]
    assert len(visible) == 2 and visible[0].opts["pen"].color() != visible[1].opts["pen"].color()

    view = main_window.plot_area.graphics
    target = entry.plot.sceneBoundingRect().center()
    qtbot.mouseMove(view.viewport(), view.mapFromScene(target))
    qtbot.waitUntil(lambda: entry.crosshair.isVisible(), timeout=3000)
    assert "s_4" in main_window.plot_area.info_label.text()


def test_files_load_as_jobs_in_order_and_never_wait_behind_a_running_job(main_window, qtbot, open_and_wait):
    """File loading uses the same JobManager and handles as training, in a lane of its own."""
    release = threading.Event()
    blocker = main_window.jobs.submit("busy", lambda progress, should_stop: release.wait(30))
    try:
        paths = [_sample("train_FD001.txt"), _sample("test_FD001.txt")]
        with qtbot.waitSignal(main_window.datasets_loaded, timeout=20000):
            requests = main_window.open_files(paths)
        assert not blocker.done  # the window's job manager is still busy: loading did not queue behind it
        assert [loaded.request.path for loaded in main_window.data_panel.loaded] == [r.path for r in requests]
        assert main_window.loader.jobs.active_count() == 0 and main_window.loader.jobs.jobs() == []
    finally:
        release.set()
    with qtbot.waitSignal(blocker.finished, timeout=10000):
        pass
