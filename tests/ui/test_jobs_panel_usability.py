"""The jobs panel as a user meets it (issue 17, point 6): one whole card at the window's default
height, new cards scrolled into view, automatic jobs out of sight unless asked for (or failed),
versions named as everywhere else, and progress that moves within an epoch."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from turbofan_desktop.plugins.contract import ProgressEvent, batch_progress  # noqa: E402
from turbofan_desktop.ui.jobs import JobManager, event_progress  # noqa: E402
from turbofan_desktop.ui.jobs_panel import JobsPanel  # noqa: E402

LOG_FILE = "/tmp/turbofan-test.log"


@pytest.fixture
def manager(qtbot):
    jobs = JobManager(LOG_FILE, max_concurrent=4)
    yield jobs
    assert jobs.shutdown(5000)


def _epochs_then_wait(release: threading.Event):
    def job(progress, should_stop):
        report = event_progress(progress)
        for epoch in (1, 2):
            report(ProgressEvent("fit", epoch / 10, epoch=epoch, epochs=10, train_loss=1.0, val_loss=1.2))
        while not (release.is_set() or should_stop()):
            time.sleep(0.01)
        return {"registered": [3]}

    return job


def test_one_whole_card_shows_at_the_default_height(main_window, qtbot):
    release = threading.Event()
    handle = main_window.jobs.submit("Train transformer: *", _epochs_then_wait(release))
    panel = main_window.jobs_panel
    qtbot.waitUntil(
        lambda: handle.id in panel.rows and not panel.rows[handle.id].plot.isHidden(), timeout=5000
    )
    qtbot.wait(300)
    card = panel.rows[handle.id]
    assert main_window.jobs_dock.isVisible()
    assert panel.scroll.viewport().height() >= card.sizeHint().height(), (
        panel.scroll.viewport().height(),
        card.sizeHint().height(),
    )
    main_window.grab().save("/tmp/i17/window_with_job.png")
    release.set()
    qtbot.waitUntil(lambda: main_window.jobs.running_count() == 0, timeout=5000)


def test_a_new_card_is_scrolled_into_view(manager, qtbot):
    panel = JobsPanel(manager)
    qtbot.addWidget(panel)
    panel.resize(600, 260)
    panel.show()
    qtbot.waitExposed(panel)
    for number in range(6):
        with qtbot.waitSignal(manager.job_finished, timeout=5000):
            manager.submit(f"job {number}", lambda progress, should_stop: None)
    panel.refresh()
    bar = panel.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())  # the user scrolled down to the oldest
    release = threading.Event()
    handle = manager.submit("the newest", _epochs_then_wait(release))
    row = panel.rows[handle.id]

    def in_view() -> bool:
        top = row.mapTo(panel.scroll.viewport(), row.rect().topLeft()).y()
        return 0 <= top < panel.scroll.viewport().height()

    qtbot.waitUntil(in_view, timeout=3000)
    release.set()


def test_automatic_jobs_stay_out_of_sight_unless_asked_for_or_failed(manager, qtbot):
    panel = JobsPanel(manager, version_name=lambda v: f"transformer/* v1 (#{v})")
    qtbot.addWidget(panel)
    with qtbot.waitSignal(manager.job_finished, timeout=5000):
        quiet = manager.submit("Drift against x", lambda p, s: None, background=True)
    with qtbot.waitSignal(manager.job_failed, timeout=5000):
        failing = manager.submit("Drift against y", lambda p, s: 1 / 0, background=True)
    with qtbot.waitSignal(manager.job_finished, timeout=5000):
        trained = manager.submit("Train", lambda p, s: {"registered": [5]})
    panel.refresh()
    assert panel.rows[quiet.id].isHidden()
    assert not panel.rows[failing.id].isHidden() and not panel.rows[trained.id].isHidden()
    assert "(1 automatic hidden)" in panel.summary.text()
    panel.show_background.setChecked(True)
    assert not panel.rows[quiet.id].isHidden() and "hidden" not in panel.summary.text()
    # the version a job registered reads as everywhere else
    assert [b.text() for b in panel.rows[trained.id].version_buttons()] == ["transformer/* v1 (#5)"]


def test_progress_within_the_first_epoch_shows_on_the_card(manager, qtbot):
    panel = JobsPanel(manager)
    qtbot.addWidget(panel)
    release = threading.Event()

    def first_epoch(progress, should_stop):
        report = event_progress(progress)
        for batch in range(1, 40):
            report(batch_progress(1, 10, batch / 40))
            time.sleep(0.005)
        while not (release.is_set() or should_stop()):
            time.sleep(0.01)

    handle = manager.submit("Train", first_epoch)
    qtbot.waitUntil(lambda: manager.job(handle.id).fraction > 0.05, timeout=5000)
    panel.refresh()
    row = panel.rows[handle.id]
    assert row.progress.format() != "0 %" and row.progress.value() > 0
    assert row.eta.text() != "ETA —"
    assert manager.job(handle.id).losses == [] and manager.job(handle.id).log == [
        "started"
    ]  # no per-batch lines
    release.set()
