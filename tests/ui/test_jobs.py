"""JobManager: plain functions on QThreads, queued, throttled, cancellable, cleaned up; and the JobsPanel."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QThread  # noqa: E402

from turbofan_desktop.errors import Cancelled, InsufficientDataError  # noqa: E402
from turbofan_desktop.plugins.contract import ProgressEvent  # noqa: E402
from turbofan_desktop.ui.jobs import (  # noqa: E402
    CANCELLED,
    FAILED,
    FINISHED,
    JobManager,
    Progress,
    ProgressThrottle,
    event_progress,
)

LOG_FILE = "/tmp/turbofan-test.log"  # named in internal-error messages


@pytest.fixture
def manager(qtbot):
    jobs = JobManager(LOG_FILE)
    yield jobs
    assert jobs.shutdown(5000)


def _epochs(n: int, delay: float = 0.0):
    """A plain job function reporting one event per epoch, like Model.fit (adapted at the submit site)."""

    def fit(progress, should_stop):
        report = event_progress(progress)
        for epoch in range(1, n + 1):
            if should_stop():
                raise Cancelled()
            time.sleep(delay)
            report(
                ProgressEvent(
                    "fit", epoch / n, epoch=epoch, epochs=n, train_loss=1.0 / epoch, val_loss=2.0 / epoch
                )
            )
        return {"epochs": n}

    return fit


def test_runs_a_function_with_progress_and_returns_its_result(manager, qtbot):
    seen = []
    manager.job_progress.connect(lambda job_id, event: seen.append(event))
    with qtbot.waitSignal(manager.job_finished, timeout=5000) as blocker:
        job_id = manager.submit("fit", _epochs(3, 0.06)).id
    assert blocker.args == [job_id, {"epochs": 3}]
    job = manager.job(job_id)
    assert job.state == FINISHED and job.fraction == 1.0 and job.result == {"epochs": 3}
    assert [p.epoch for p in job.losses] == [1, 2, 3]
    assert job.losses[-1].val_loss == pytest.approx(2 / 3)
    assert seen and seen[-1].epoch == 3  # the final event always arrives
    qtbot.waitUntil(lambda: manager.running_count() == 0, timeout=2000)


def test_every_job_is_called_with_progress_and_should_stop_and_its_handle_reports(manager, qtbot):
    def add(a, b, *, scale=1):  # a service that takes neither (like export_report): bound at submit
        return (a + b) * scale

    seen = []

    def job(progress, should_stop):
        seen.append((callable(progress), should_stop()))
        progress(Progress(0.5, stage="add", message="half way"))
        return add(2, 3, scale=10)

    handle = manager.submit("add", job)
    progressed = []
    handle.progressed.connect(progressed.append)
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [50] and seen == [(True, False)]
    assert progressed == [Progress(0.5, stage="add", message="half way")]
    assert handle.done and handle.job.result == 50 and manager.job(handle.id).log[1] == "half way"


def test_each_handle_hears_only_its_own_job(manager, qtbot):
    first = manager.submit("one", lambda progress, should_stop: 1)
    second = manager.submit("two", lambda progress, should_stop: 1 / 0)
    heard: list = []
    first.finished.connect(lambda result: heard.append(("first finished", result)))
    first.failed.connect(lambda message: heard.append(("first failed", message)))
    second.finished.connect(lambda result: heard.append(("second finished", result)))
    with qtbot.waitSignal(second.failed, timeout=5000) as blocker:
        pass
    assert heard == [("first finished", 1)]
    assert blocker.args == [f"internal error, see {LOG_FILE}"]


def test_signals_arrive_on_the_gui_thread(manager, qtbot):
    gui = QThread.currentThread()
    threads = []
    manager.job_progress.connect(lambda *a: threads.append(QThread.currentThread()))
    manager.job_finished.connect(lambda *a: threads.append(QThread.currentThread()))
    ran_on = []

    def fn(progress, should_stop):
        ran_on.append(threading.current_thread() is threading.main_thread())
        progress(Progress(0.5, stage="fit"))
        return 1

    with qtbot.waitSignal(manager.job_finished, timeout=5000):
        manager.submit("t", fn)
    assert ran_on == [False]
    assert threads and all(t is gui for t in threads)


def test_cancel_mid_run_emits_job_cancelled_and_the_function_saw_should_stop(manager, qtbot):
    started = threading.Event()
    saw_stop = []

    def long_fit(progress, should_stop):
        started.set()
        for _ in range(500):
            if should_stop():
                saw_stop.append(True)
                raise Cancelled()
            time.sleep(0.01)
        return "ran to the end"

    handle = manager.submit("long", long_fit)
    job_id = handle.id
    assert started.wait(5)
    heard = []
    handle.cancelled.connect(lambda: heard.append("cancelled"))
    handle.finished.connect(lambda result: heard.append("finished"))
    with qtbot.waitSignal(manager.job_cancelled, timeout=5000) as blocker:
        handle.cancel()
    assert blocker.args == [job_id] and heard == ["cancelled"]
    assert saw_stop == [True]
    assert manager.job(job_id).state == CANCELLED


def test_a_returned_cancelled_summary_counts_as_cancelled(manager, qtbot):
    started = threading.Event()

    def train_like(progress, should_stop):
        started.set()
        while not should_stop():
            time.sleep(0.01)
        return {"cancelled": True, "registered": []}

    job_id = manager.submit("train", train_like).id
    assert started.wait(5)
    with qtbot.waitSignal(manager.job_cancelled, timeout=5000):
        manager.cancel(job_id)
    assert manager.job(job_id).result == {"cancelled": True, "registered": []}


def test_user_error_fails_with_its_sentence_and_a_bug_points_to_the_log(manager, qtbot):
    def short(progress, should_stop):
        raise InsufficientDataError("Unit 3 has 12 cycles; the model needs at least 30.")

    def bug(progress, should_stop):
        return 1 / 0

    with qtbot.waitSignal(manager.job_failed, timeout=5000) as blocker:
        first = manager.submit("short", short).id
    assert blocker.args == [first, "Unit 3 has 12 cycles; the model needs at least 30."]
    with qtbot.waitSignal(manager.job_failed, timeout=5000) as blocker:
        manager.submit("bug", bug)
    assert blocker.args[1] == "internal error, see /tmp/turbofan-test.log"
    assert manager.job(first).state == FAILED


def test_jobs_queue_and_run_one_at_a_time(manager, qtbot):
    order = []
    release = threading.Event()

    def first(progress, should_stop):
        order.append("first start")
        release.wait(5)
        order.append("first end")
        return 1

    def second(progress, should_stop):
        order.append("second start")
        return 2

    a = manager.submit("a", first).id
    b = manager.submit("b", second).id
    qtbot.wait(150)
    assert manager.running_count() == 1 and manager.queued_count() == 1
    assert manager.job(b).state == "queued"
    with qtbot.waitSignals([manager.job_finished, manager.job_finished], timeout=5000):
        release.set()
    assert order == ["first start", "first end", "second start"]
    assert manager.job(a).state == manager.job(b).state == FINISHED


def test_max_concurrent_two_runs_two_together(qtbot):
    jobs = JobManager(LOG_FILE, max_concurrent=2)
    both = threading.Barrier(2, timeout=5)

    def meet(progress, should_stop):
        both.wait()  # only returns when the two jobs run at the same time
        return True

    with qtbot.waitSignals([jobs.job_finished, jobs.job_finished], timeout=5000):
        jobs.submit("a", meet)
        jobs.submit("b", meet)
    assert jobs.shutdown(5000)


def test_cancel_a_queued_job_just_removes_it(manager, qtbot):
    release = threading.Event()
    manager.submit("blocker", lambda progress, should_stop: release.wait(5))
    ran = []
    queued = manager.submit("never", lambda progress, should_stop: ran.append(1)).id
    with qtbot.waitSignal(manager.job_cancelled, timeout=1000):
        manager.cancel(queued)
    release.set()
    qtbot.waitUntil(lambda: manager.running_count() == 0, timeout=5000)
    qtbot.wait(50)
    assert ran == [] and manager.job(queued).state == CANCELLED


def test_shutdown_while_running_stops_and_waits(qtbot):
    jobs = JobManager(LOG_FILE)
    started = threading.Event()
    stopped = []

    def spin(progress, should_stop):
        started.set()
        while not should_stop():
            time.sleep(0.005)
        stopped.append(True)
        raise Cancelled()

    job_id = jobs.submit("spin", spin).id
    queued = jobs.submit("queued", spin).id
    assert started.wait(5)
    cancelled = []
    jobs.job_cancelled.connect(cancelled.append)
    t0 = time.monotonic()
    assert jobs.shutdown(5000) is True
    assert time.monotonic() - t0 < 2
    assert stopped == [True] and jobs.running_count() == 0
    assert sorted(cancelled) == sorted([job_id, queued])
    assert jobs.job(job_id).state == CANCELLED
    late = jobs.submit("late", spin)  # after shutdown nothing starts
    assert late.job.state == FAILED
    with qtbot.waitSignal(late.failed, timeout=1000) as refused:  # connected after submit: still heard
        pass
    assert refused.args == ["the application is shutting down"]


def test_throttling_bounds_the_number_of_progress_signals(manager, qtbot):
    n = 20000

    def chatty(progress, should_stop):
        report = event_progress(progress)
        for i in range(n):
            report(ProgressEvent("fit", (i + 1) / n, epoch=i // 2000 + 1, epochs=10, train_loss=1.0))
        return "ok"

    count = []
    manager.job_progress.connect(lambda job_id, event: count.append(event))
    with qtbot.waitSignal(manager.job_finished, timeout=10000):
        job_id = manager.submit("chatty", chatty).id
    assert 1 <= len(count) <= 101 + 10  # rounded percentage (and epoch) changes, never every event
    assert count[-1].fraction == 1.0  # the final event is delivered
    assert [p.epoch for p in manager.job(job_id).losses] == list(range(1, 11))  # no loss point lost


def test_throttle_rate_limit_and_flush():
    now = [0.0]
    throttle = ProgressThrottle(max_hz=20, clock=lambda: now[0])
    assert throttle.offer(Progress(0.10, stage="fit")) is not None
    now[0] += 0.01  # too soon: held back even though the percentage changed
    assert throttle.offer(Progress(0.20, stage="fit")) is None
    now[0] += 0.1
    assert throttle.offer(Progress(0.20, stage="fit")) is not None
    assert throttle.offer(Progress(0.30, stage="fit")) is None
    event, _, _ = throttle.flush()
    assert event.fraction == 0.30
    assert throttle.flush() is None


def test_progress_adapts_a_contract_event_and_a_per_target_job_progress():
    from turbofan_desktop.services.training import JobProgress

    event = ProgressEvent("fit", 0.5, epoch=2, epochs=4, train_loss=0.3, val_loss=0.4, message="epoch 2")
    assert Progress.of_event(event) == Progress(
        0.5, stage="fit", message="epoch 2", epoch=2, epochs=4, train_loss=0.3, val_loss=0.4
    )
    per_target = Progress.of_target(JobProgress("telemanom", "s_3", 1, 2, event, 0.75))
    assert (per_target.fraction, per_target.series, per_target.text) == (0.75, "s_3", "s_3: epoch 2")
    assert Progress.of_event(ProgressEvent("fit", 7.0)).fraction == 1.0  # clamped


def test_installed_qt_binding_keeps_singleton_references(tmp_path):
    """PySide6 6.12.0 on CPython 3.11 dropped a reference to None on every void call and aborted the
    interpreter after a few thousand widget updates; pyproject pins below it. This guards the pin."""
    import subprocess
    import sys

    code = (
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "app = QApplication([])\n"
        "label = QLabel()\n"
        "for _ in range(100_000):\n"
        "    label.setText('x')\n"
        "print('alive')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0 and "alive" in result.stdout, result.stderr[-500:]


def test_a_worker_is_destroyed_on_the_gui_thread_not_on_its_job_thread(manager, qtbot):
    """Destroyed on its job's thread, a worker's ~QObject asks for the GIL while holding a Qt
    connection lock, and a GUI thread connecting a signal at that moment waits for the lock while
    holding the GIL: the window froze that way once. The worker must die where it was made."""
    gui = QThread.currentThread()
    died_on = []
    handle = manager.submit("quick", lambda progress, should_stop: 1)
    worker = manager._running[handle.id].worker
    worker.destroyed.connect(lambda: died_on.append(QThread.currentThread() is gui))
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    qtbot.waitUntil(lambda: bool(died_on), timeout=5000)
    assert died_on == [True]
