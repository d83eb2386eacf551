"""Clicking through the models and jobs panels inside the main window, as a user would with the mouse:
select a version row, Show on plot (a job whose row appears in the jobs panel and whose handle draws
the result), Cancel a running job from its row, Clear finished, and the version link back to the
models panel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.errors import Cancelled  # noqa: E402
from turbofan_desktop.plugins.contract import AnomalyRange, DetectionResult, UnitDetection  # noqa: E402
from turbofan_desktop.ui import main_window as main_window_module  # noqa: E402
from turbofan_desktop.ui.app import sample_files  # noqa: E402
from turbofan_desktop.ui.jobs import CANCELLED, FINISHED  # noqa: E402
from turbofan_desktop.ui.models_panel import COLUMNS  # noqa: E402


def _sample(name: str) -> Path:
    return next(p for p in sample_files() if p.name == name)


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualItemRect(table.item(row, COLUMNS.index("target")))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _fake_show_on_plot(sensor: str):
    def run(ws, version_id, dataset, unit, *, progress=None, should_stop=None, accept_out_of_scope=False):
        time_axis = np.arange(20, 60)
        detection = UnitDetection(
            unit=unit,
            time=time_axis,
            actual=np.zeros(40),
            predicted=np.zeros(40),
            errors=np.ones(40),
            smoothed=np.ones(40),
            threshold=np.full(40, 2.0),
            anomalies=[AnomalyRange(30, 35, 3.0, 10, 15)],
        )
        return main_window_module.ShowOnPlotResult(
            version_id, ("anomaly",), detection=DetectionResult(sensor, {unit: detection})
        )

    return run


def test_click_through_the_models_and_jobs_panels(main_window, qtbot, monkeypatch, open_and_wait, workspace):
    window = main_window
    window.resize(1200, 800)
    open_and_wait(window, [_sample("train_FD001.txt")])
    sensor = window.current_sensors()[0]
    first = register_stub_version(workspace.registry, plugin="fake", target=sensor)
    second = register_stub_version(workspace.registry, plugin="fake", target="s_3")
    models, jobs_panel = window.models_panel, window.jobs_panel

    # the models panel: click a row, its details show; the stage buttons follow the selection
    window.models_dock.raise_()
    models.refresh()
    assert models.table.rowCount() == 2
    assert not models.buttons["plot"].isEnabled()
    row = next(r for r in range(2) if models.table.item(r, 0).text() == str(first.id))
    _click_row(qtbot, models.table, row)
    assert models.selected_ids() == [first.id]
    assert first.label in models.details.toPlainText()
    assert models.buttons["plot"].isEnabled() and models.buttons["promote"].isEnabled()
    models.grab().save("/tmp/click_through_models.png")

    # Show on plot: a job; its row appears in the jobs panel and its handle draws the result
    monkeypatch.setattr(main_window_module, "run_show_on_plot", _fake_show_on_plot(sensor))
    with qtbot.waitSignal(window.plot_results_shown, timeout=20000) as shown:
        qtbot.mouseClick(models.buttons["plot"], Qt.MouseButton.LeftButton)
    assert shown.args == [first.id]
    assert len(window.plot_area.overlay_items("anomaly")) == 1
    assert window.session.last_shown.version_id == first.id
    window.jobs_dock.raise_()
    plot_job = max(jobs_panel.rows)
    qtbot.waitUntil(lambda: jobs_panel.rows[plot_job].state.text() == FINISHED, timeout=5000)
    # the version as the models table names it; a quick look is an automatic job, shown on request
    assert jobs_panel.rows[plot_job].title.text() == f"Show {first.label} on unit 1"
    assert jobs_panel.rows[plot_job].isHidden()
    jobs_panel.show_background.setChecked(True)
    assert not jobs_panel.rows[plot_job].isHidden()
    assert not jobs_panel.rows[plot_job].cancel_button.isVisibleTo(jobs_panel.rows[plot_job])

    # a running job: its row's Cancel button stops it; the handle says cancelled
    started = threading.Event()

    def long_job(progress, should_stop):
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if should_stop():
                raise Cancelled()
            time.sleep(0.01)
        return "ran to the end"

    handle = window.jobs.submit("long", long_job)
    assert started.wait(10)
    jobs_panel.refresh()
    row = jobs_panel.rows[handle.id]
    qtbot.waitUntil(lambda: row.cancel_button.isVisibleTo(row), timeout=5000)
    qtbot.wait(100)  # let the scroll area lay the new row out before the picture
    jobs_panel.grab().save("/tmp/click_through_jobs_running.png")
    with qtbot.waitSignal(handle.cancelled, timeout=15000):
        qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert handle.job.state == CANCELLED
    qtbot.waitUntil(lambda: row.state.text() == CANCELLED, timeout=5000)

    # Clear finished removes the finished and cancelled rows
    qtbot.waitUntil(lambda: window.jobs.running_count() == 0, timeout=5000)
    clear = next(
        b for b in jobs_panel.findChildren(type(models.buttons["plot"])) if b.text() == "Clear finished"
    )
    qtbot.mouseClick(clear, Qt.MouseButton.LeftButton)
    assert plot_job not in jobs_panel.rows and handle.id not in jobs_panel.rows

    # the version link of a finished training job selects that version in the models panel
    window.reveal_version(second.id)
    assert models.selected_ids() == [second.id]
    assert window.models_dock.isVisible()
