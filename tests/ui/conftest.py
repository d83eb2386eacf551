"""UI fixtures: a workspace on the isolated TURBOFAN_HOME and a main window that must not leak threads.

Like napari's ``make_napari_viewer``: the ``main_window`` fixture closes the window the way a user
quitting would (jobs asked to stop and awaited, file loads awaited) and then fails the test if any
worker thread is still running.
"""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QThreadPool  # noqa: E402


@pytest.fixture(autouse=True)
def questions_answered_yes(monkeypatch):
    """A modal QMessageBox.question would hang a headless test: answered Yes unless a test patches
    it itself (its texts are recorded here)."""
    from PySide6.QtWidgets import QMessageBox

    asked: list[str] = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))

    def message(parent, title, text, *args, **kwargs):  # an error dialog must not hang the run either
        asked.append(text)
        print(f"[dialog] {title}: {text}")  # shown with the failing test's output
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(message))
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(message))
    return asked


@pytest.fixture
def workspace(isolated_home):
    from turbofan_desktop.services import Workspace

    ws = Workspace.open()
    yield ws
    ws.close()


@pytest.fixture
def make_main_window(qtbot, workspace):
    """Factory: ``make_main_window(**kwargs)`` builds (and later closes and checks) a MainWindow."""
    from turbofan_desktop.ui.main_window import MainWindow

    windows = []

    def make(**kwargs):
        window = MainWindow(workspace, **kwargs)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.loader.running_threads() == 0, "a file-loading thread is still running"
        if window.jobs is not None:
            assert window.jobs.running_count() == 0, "a job thread is still running"
        window.deleteLater()
    assert QThreadPool.globalInstance().waitForDone(5000)


@pytest.fixture
def main_window(make_main_window, qtbot):
    window = make_main_window()
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def open_and_wait(qtbot):
    """``open_and_wait(window, paths)``: open files in ``window`` and wait until the loader is idle."""

    def open_files(window, paths, timeout=20000):
        with qtbot.waitSignal(window.datasets_loaded, timeout=timeout):
            requests = window.open_files(paths)
        return requests

    return open_files
