"""The executor seam: jobs as data, the in-process executor and the local process executor.

Jobs of the stub model (executor_models.py, no torch) time the executor itself: a cancel reaches a
model that never checks ``should_stop`` through killing its worker, a worker that segfaults fails
only its own job. Training jobs of the real Telemanom model check the seam end to end: a worker
SIGKILLed mid-training, the same metrics in a thread and in a worker process, and a training
through worker processes that leaves torch out of the calling process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from executor_models import STUB_SPEC
from services_helpers import TINY, require_plugin

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.executors import check_executor_spec, executor_for
from turbofan_desktop.services.executors.inprocess import InProcessExecutor
from turbofan_desktop.services.executors.jobs import DataPayload, FitJob, Throttle, run_fit_job
from turbofan_desktop.services.executors.local import (
    LocalProcessExecutor,
    death_sentence,
    start_failure_sentence,
)
from turbofan_desktop.services.models import check_registry
from turbofan_desktop.services.training import TrainRequest, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_data(tmp_path, fd001_small):
    with Workspace.open(tmp_path / "reg") as ws:
        return load_dataset(ws, fd001_small["train"])


@pytest.fixture(scope="module")
def pool():
    """Two warm workers shared by the stub-model tests (starting one costs seconds under load)."""
    executor = LocalProcessExecutor(workers=2, threads=1)
    yield executor
    executor.close()


def stub_job(data, behaviour: str, seconds: float = 0.0, name: str = "job") -> FitJob:
    payload = DataPayload.of(data)
    return FitJob(
        job_id=name,
        plugin="stub",
        target="s_2",
        config={"behaviour": behaviour, "seconds": seconds},
        seed=0,
        threads=1,
        train=payload,
        val=payload,
        spec=STUB_SPEC,
    )


def wait_for_event(running, stage: str = "fit", timeout: float = 60.0) -> list[ProgressEvent]:
    """The events of ``running`` up to the first of ``stage`` (fails the test after ``timeout``)."""
    seen: list[ProgressEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(running.events())
        if any(e.stage == stage for e in seen):
            return seen
        assert not running.done(), running.result().error
        time.sleep(0.01)
    raise AssertionError(f"no {stage} event within {timeout} s")


# -- jobs as data ----------------------------------------------------------------------------------
def test_data_changed_on_the_way_fails_the_job_with_a_sentence(small_data):
    job = stub_job(small_data, "mean")
    changed = small_data.frame.copy()
    changed.loc[0, "s_2"] += 1.0
    job.train = dataclasses.replace(job.train, dataset=dataclasses.replace(small_data, frame=changed))
    result = run_fit_job(job, lambda event: None, lambda: False)
    assert result.error is not None and "arrived changed" in result.error and result.error.endswith(".")
    assert not result.ok and result.artifact == b""


def test_a_job_returns_metrics_and_a_packed_artifact(small_data):
    result = run_fit_job(stub_job(small_data, "mean"), lambda event: None, lambda: False)
    assert result.ok and set(result.metrics) == {"mae"} and result.artifact
    assert result.where["executor"] == "inprocess" and result.where["host"]


def test_a_job_without_validation_data_fits_and_is_not_evaluated(small_data, pool):
    """val None (telemanom_nasa.py's jobs): the model holds out its own share; no metrics come back."""
    job = dataclasses.replace(stub_job(small_data, "mean", name="no-val"), val=None)
    for result in (run_fit_job(job, lambda event: None, lambda: False), pool.submit(job).result()):
        assert result.ok and result.metrics == {} and result.artifact, result.error
        assert result.epochs_run == 1


def test_progress_is_throttled_to_twenty_a_second_and_the_last_event_arrives():
    sent: list[ProgressEvent] = []
    throttle = Throttle(sent.append)
    started = time.monotonic()
    for step in range(2000):
        throttle(ProgressEvent(stage="fit", fraction=step / 1999))
    throttle.flush()
    elapsed = time.monotonic() - started
    assert len(sent) <= 20 * elapsed + 2
    assert sent[-1].fraction == 1.0


def test_every_epoch_of_the_loss_curve_passes_the_throttle():
    sent: list[ProgressEvent] = []
    throttle = Throttle(sent.append)
    for epoch in range(1, 51):
        throttle(ProgressEvent(stage="fit", fraction=epoch / 50, epoch=epoch, train_loss=1.0 / epoch))
        throttle(ProgressEvent(stage="fit", fraction=epoch / 50, message="batch"))
    throttle.flush()
    assert [e.epoch for e in sent if e.train_loss is not None] == list(range(1, 51))


def test_an_unknown_executor_is_one_sentence():
    with pytest.raises(ConfigError) as caught:
        check_executor_spec("tcp://nowhere")
    assert "tcp://host:8786" in str(caught.value) and "\n" not in str(caught.value)
    assert check_executor_spec(" Local ") == "local"


def test_the_setting_picks_the_executor(tmp_path, monkeypatch):
    monkeypatch.setenv("TURBOFAN_EXECUTOR", "local")
    monkeypatch.setenv("TURBOFAN_WORKERS", "3")
    with Workspace.open(tmp_path / "reg") as ws:
        executor = ws.executor()
        assert executor.kind == "local" and executor.workers == 3
        assert executor_for(ws, "inprocess").kind == "inprocess"


# -- the local process executor --------------------------------------------------------------------
def test_a_model_that_ignores_cancel_is_stopped_within_a_second(pool, small_data):
    running = pool.submit(stub_job(small_data, "stubborn", seconds=120))
    wait_for_event(running)
    asked = time.monotonic()
    running.cancel()
    result = running.result()
    latency = time.monotonic() - asked
    assert result.cancelled and not result.artifact
    assert latency < 1.5, f"cancel took {latency:.2f} s"  # 0.5 s grace + kill; generous under load


def test_a_cooperative_cancel_ends_the_job_without_killing_its_worker(pool, small_data):
    deaths = pool.deaths
    running = pool.submit(stub_job(small_data, "sleep", seconds=120))
    wait_for_event(running)
    pid = pool.busy_worker_pid(running)
    asked = time.monotonic()
    running.cancel()
    result = running.result()
    assert result.cancelled and time.monotonic() - asked < 1.0
    assert pid in pool.worker_pids() and pool.deaths == deaths


def test_a_queued_job_is_cancelled_at_once(pool, small_data):
    busy = [pool.submit(stub_job(small_data, "sleep", seconds=120, name=f"busy{i}")) for i in range(2)]
    queued = pool.submit(stub_job(small_data, "mean", name="queued"))
    queued.cancel()
    assert queued.done() and queued.result().cancelled and queued.result().where == {}
    for running in busy:
        running.cancel()
        assert running.result().cancelled


def test_a_worker_that_segfaults_fails_only_its_job_and_is_replaced(pool, small_data):
    deaths = pool.deaths
    crashing = pool.submit(stub_job(small_data, "segfault", name="crash"))
    fine = pool.submit(stub_job(small_data, "sleep", seconds=0.3, name="fine"))
    crashed = crashing.result()
    assert crashed.error == "the worker process died (signal SIGSEGV)" and not crashed.cancelled
    assert fine.result().ok
    again = pool.submit(stub_job(small_data, "mean", name="again")).result()
    assert again.ok and again.where["executor"] == "local" and pool.deaths == deaths + 1


def test_death_sentences():
    assert death_sentence(-signal.SIGKILL) == "the worker process died (signal SIGKILL)"
    assert death_sentence(3) == "the worker process died (exit code 3)"


def finished(running, timeout: float = 120.0):
    """``running``'s result, polled (fails the test after ``timeout`` instead of hanging it)."""
    deadline = time.monotonic() + timeout
    while not running.done():
        assert time.monotonic() < deadline, f"no result within {timeout} s: the pool stopped serving"
        time.sleep(0.01)
    return running.result()


def test_a_job_that_cannot_be_sent_fails_with_a_sentence_and_the_pool_serves_on(pool, small_data):
    unpicklable = stub_job(small_data, "mean", name="unpicklable")
    unpicklable.config = {**unpicklable.config, "callback": lambda: None}
    failed = finished(pool.submit(unpicklable))
    assert failed.error.startswith("the job could not be sent to a worker: ") and not failed.cancelled
    assert finished(pool.submit(stub_job(small_data, "mean", name="after"))).ok


UNGUARDED_SCRIPT = """
import json, os, sys
from executor_models import STUB_SPEC
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.executors.jobs import DataPayload, FitJob
from turbofan_desktop.services.executors.local import LocalProcessExecutor

# top-level code, no main guard: each spawn-started worker runs this again while importing the script
with Workspace.open(sys.argv[2]) as ws:
    payload = DataPayload.of(load_dataset(ws, sys.argv[1]))
pool = LocalProcessExecutor(workers=1, threads=1)
job = FitJob(job_id="unguarded", plugin="stub", target="s_2", config={"behaviour": "mean"}, seed=0,
             threads=1, train=payload, val=payload, spec=STUB_SPEC)
result = pool.submit(job).result()
pool.close()
print(json.dumps({"pid": os.getpid(), "error": result.error}), flush=True)
if result.error:
    sys.exit(1)  # as a service raises the job's error
"""


def test_a_script_without_a_main_guard_fails_with_a_sentence_instead_of_waiting_forever(
    tmp_path, fd001_small
):
    """The script's worker imports the script, whose top-level code submits a job of its own there;
    that worker cannot start workers while it is being started. Before the fix its dispatcher thread
    died of it, its job waited forever, and so did the script's (found as a fleet assessment idle for
    18 minutes). Now the worker's job fails, the worker ends, and the script hears why."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(UNGUARDED_SCRIPT))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), str(REPO)]))
    process = subprocess.Popen(
        [sys.executable, str(script), str(fd001_small["train"]), str(tmp_path / "reg")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=240)  # a hang guard: the fixed script ends in seconds
    finally:
        with contextlib.suppress(ProcessLookupError):  # the script and its workers, had they hung
            os.killpg(process.pid, signal.SIGKILL)
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    script_answer = next(a for a in answers if a["pid"] == process.pid)
    worker_answer = next(a for a in answers if a["pid"] != process.pid)
    assert process.returncode == 1, err
    assert worker_answer["error"].startswith("no worker process could be started: RuntimeError: ")
    assert script_answer["error"] == start_failure_sentence(1)
    assert 'must be under `if __name__ == "__main__":`' in script_answer["error"]


# -- training through the executors ---------------------------------------------------------------
class Recording:
    """An executor that remembers the job of each target (so a test can find its worker)."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.workers = executor.workers
        self.by_target: dict = {}

    def submit(self, job):
        running = self.executor.submit(job)
        self.by_target[job.target] = running
        return running


def test_sigkill_of_a_worker_fails_its_target_and_the_other_registers(pool, tmp_path, fd001_small):
    require_plugin("telemanom")
    deaths = pool.deaths
    recording = Recording(pool)
    killed: list[int] = []

    def progress(job_progress) -> None:
        if job_progress.target == "s_2" and job_progress.event.stage == "fit" and not killed:
            pid = pool.busy_worker_pid(recording.by_target["s_2"])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    config = dict(TINY["telemanom"], epochs=8, patience=8)
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_2", "s_3"], config=config
    )
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(ws, request, progress=progress, executor=recording)
        by_target = {r.target: r for r in summary.results}
        assert killed, "s_2 never reported fitting"
        assert by_target["s_2"].error == "the worker process died (signal SIGKILL)"
        assert by_target["s_3"].ok and summary.registered == [by_target["s_3"].version_id]
        trained_on = ws.registry.get(by_target["s_3"].version_id).provenance.trained_on
        assert trained_on.executor == "local" and trained_on.worker.startswith("local-")
        assert trained_on.host == socket.gethostname()
        runs = {r.target: r.status for r in ws.registry.list_runs()}
        assert runs == {"s_2": "failed", "s_3": "succeeded"}
        report = check_registry(ws)
        assert report.ok, report.problems
        assert pool.deaths == deaths + 1


def test_cancel_stops_every_target_of_a_batch_on_local_workers(pool, tmp_path, fd001_small):
    require_plugin("telemanom")
    fitting: set[str] = set()
    asked: list[float] = []

    def progress(job_progress) -> None:
        if job_progress.event.stage == "fit":
            fitting.add(job_progress.target)

    def should_stop() -> bool:
        if len(fitting) == 2 and not asked:
            asked.append(time.monotonic())
        return bool(asked)

    # epochs enough that the first target cannot finish before the second worker fits: under load a
    # worker started afresh (the test before kills one) takes seconds; 200 tiny epochs once were done first
    config = dict(TINY["telemanom"], epochs=1000, patience=1000)  # the setting's maximum
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_2", "s_3", "s_4"], config=config
    )
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(ws, request, progress=progress, should_stop=should_stop, executor=pool)
        latency = time.monotonic() - asked[0]
        assert summary.cancelled and summary.registered == []
        assert [r.cancelled for r in summary.results] == [True, True, True]
        assert sorted(r.status for r in ws.registry.list_runs()) == ["cancelled", "cancelled"]
        assert latency < 1.5, f"the batch took {latency:.2f} s to stop"
        assert check_registry(ws).ok


def test_same_seed_same_data_same_metrics_in_a_thread_and_in_a_worker_process(pool, tmp_path, fd001_small):
    require_plugin("telemanom")
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_7"], config=TINY["telemanom"], seed=3
    )
    with Workspace.open(tmp_path / "reg") as ws:
        threaded = train(ws, request, executor=InProcessExecutor())
        spawned = train(ws, request, executor=pool)
        assert threaded.successful == spawned.successful == 1
        assert threaded.results[0].metrics == spawned.results[0].metrics


TRAIN_AND_SHOW_WITHOUT_TORCH = """
import json, sys
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.training import TrainRequest, train
from turbofan_desktop.services.validation import validate
from turbofan_desktop.ui.main_window import run_show_on_plot

data, registry, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with Workspace.open(registry) as ws:
    request = TrainRequest(plugin="telemanom", data_path=data, targets=["s_2"], config=config)
    summary = train(ws, request)
    dataset = load_dataset(ws, data)
    shown = run_show_on_plot(ws, summary.registered[0], dataset, dataset.units[0])
    again = run_show_on_plot(ws, summary.registered[0], dataset, dataset.units[1])
    held = validate(ws, summary.registered)
    print(json.dumps({"registered": summary.registered, "executor": ws.executor().kind,
                      "detected": sorted(str(u) for u in shown.detection.units),
                      "again": sorted(str(u) for u in again.detection.units),
                      "validated": held.failed == 0 and len(held.results) == 1,
                      "torch": "torch" in sys.modules}))
"""


def test_training_show_on_plot_and_validation_through_workers_leave_torch_out_of_this_process(
    tmp_path, fd001_small
):
    require_plugin("telemanom")
    env = dict(os.environ, TURBOFAN_EXECUTOR="local", TURBOFAN_WORKERS="1")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TRAIN_AND_SHOW_WITHOUT_TORCH), str(fd001_small["train"]),
         str(tmp_path / "reg"), json.dumps(TINY["telemanom"])],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["executor"] == "local" and len(answer["registered"]) == 1
    assert answer["detected"] == ["1"] and answer["again"] == ["2"] and answer["validated"]
    assert answer["torch"] is False


def test_cli_trains_targets_in_parallel_on_local_workers(capsys, tmp_path, fd001_small):
    require_plugin("telemanom")
    from turbofan_desktop.cli import main

    settings = [arg for key, value in TINY["telemanom"].items() for arg in ("--set", f"{key}={value}")]
    reg = tmp_path / "reg"
    argv = ["train", str(fd001_small["train"]), "--model", "telemanom", "--sensor", "s_2", "s_3", *settings]
    code = main([*argv, "--executor", "local", "--workers", "2", "--registry", str(reg), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    ids = json.loads(captured.out)["summary"]["registered"]
    with Workspace.open(reg) as ws:
        workers = {ws.registry.get(i).provenance.trained_on.worker.split()[0] for i in ids}
        # both targets at once: one on each worker
        assert all(w.startswith("local-") for w in workers) and len(ids) == len(workers) == 2
    code = main([*argv, "--executor", "tcp://nowhere", "--registry", str(reg)])
    err = capsys.readouterr().err
    assert code == 2 and "tcp://host:8786" in err and len(err.strip().splitlines()) == 1
