"""The Dask executor on a real ``distributed.LocalCluster`` of two worker processes (one per module).

Stub-model jobs (executor_models.py, no torch) check the mechanics: data verified on arrival,
progress over Dask's events, cancel, a killed worker retried or failed with a sentence. Tiny
Telemanom trainings check the rest end to end: a batch registered through the cluster, a training
whose worker is SIGKILLed mid-fit still registers (retried elsewhere) with a consistent registry,
the same metrics as in-process, and the CLI trained through ``TURBOFAN_EXECUTOR=tcp://...``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask is not installed (pip install -e '.[cluster]'): Dask executor tests skipped"
)

from dask import config as dask_config  # noqa: E402
from executor_models import STUB_SPEC  # noqa: E402
from services_helpers import TINY, require_plugin  # noqa: E402

from turbofan_desktop.config import load_settings  # noqa: E402
from turbofan_desktop.errors import ConfigError  # noqa: E402
from turbofan_desktop.services import Workspace  # noqa: E402
from turbofan_desktop.services.data import load_dataset  # noqa: E402
from turbofan_desktop.services.executors import executor_for  # noqa: E402
from turbofan_desktop.services.executors.dask_cluster import DaskExecutor, lost_sentence  # noqa: E402
from turbofan_desktop.services.executors.inprocess import InProcessExecutor  # noqa: E402
from turbofan_desktop.services.executors.jobs import DataPayload, FitJob  # noqa: E402
from turbofan_desktop.services.models import check_registry  # noqa: E402
from turbofan_desktop.services.training import TrainRequest, train  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two spawn-started worker processes with one thread each, their own TURBOFAN_HOME."""
    home = tmp_path_factory.mktemp("dask_worker_home")
    cluster = distributed.LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"TURBOFAN_HOME": str(home), "TURBOFAN_TORCH_THREADS": "1"},
    )
    yield cluster
    cluster.close()


@pytest.fixture
def dask(cluster):
    """A fresh executor on the module's cluster, once both workers are up (a test may have killed one)."""
    executor = DaskExecutor(cluster.scheduler_address)
    executor.client.wait_for_workers(WORKERS, timeout=120)
    yield executor
    executor.close()


@pytest.fixture
def small_data(tmp_path, fd001_small):
    with Workspace.open(tmp_path / "reg") as ws:
        return load_dataset(ws, fd001_small["train"])


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


def first_fit_event(running, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.stage == "fit" for e in running.events()):
            return
        assert not running.done(), running.result().error
        time.sleep(0.02)
    raise AssertionError(f"no fit event within {timeout} s")


def worker_running(executor: DaskExecutor, key: str) -> str:
    """The address of the worker processing task ``key``."""
    for address, keys in executor.client.processing().items():
        if key in keys:
            return address
    raise AssertionError(f"no worker is processing {key}")


def kill_worker(executor: DaskExecutor, address: str) -> None:
    os.kill(executor.worker_pids()[address], signal.SIGKILL)


# -- without a cluster ------------------------------------------------------------------------------
def test_no_scheduler_at_the_address_is_one_sentence():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError) as caught:
        DaskExecutor(f"tcp://127.0.0.1:{port}", connect_timeout=2)
    message = str(caught.value)
    assert message.startswith(f"No Dask scheduler answers at tcp://127.0.0.1:{port}") and "\n" not in message


def test_without_the_cluster_extra_a_dask_executor_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what an install without the extra sees
    with Workspace.open(tmp_path / "reg") as ws, pytest.raises(ConfigError) as caught:
        executor_for(ws, "tcp://127.0.0.1:8786")
    assert "pip install 'turbofan-desktop[cluster]'" in str(caught.value)


def test_a_tls_address_without_dasks_tls_settings_is_one_sentence():
    unset = {"distributed.comm.tls.ca-file": None, "distributed.comm.tls.client.cert": None}
    with dask_config.set(unset), pytest.raises(ConfigError) as caught:
        DaskExecutor("tls://127.0.0.1:8786", connect_timeout=2)
    message = str(caught.value)
    assert message.startswith("The Dask scheduler tls://127.0.0.1:8786 speaks TLS") and "\n" not in message
    assert "distributed.comm.tls.ca-file" in message


def test_a_tls_scheduler_runs_jobs_with_dasks_tls_settings(small_data, tmp_path):
    """A scheduler that speaks only TLS (a thread worker in this process, to keep it quick): the
    executor setting takes its tls:// address and the client uses Dask's own TLS settings."""
    security = distributed.Security.temporary()  # a self-signed authority and certificate
    cluster = distributed.LocalCluster(
        n_workers=1, processes=False, protocol="tls://", security=security, dashboard_address=None
    )
    settings = {
        "distributed.comm.tls.ca-file": security.tls_ca_file,
        "distributed.comm.tls.client.cert": security.tls_client_cert,
        "distributed.comm.tls.client.key": security.tls_client_key,
    }
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        assert (
            load_settings(env={"TURBOFAN_HOME": str(tmp_path), "TURBOFAN_EXECUTOR": address}).executor
            == address
        )
        with dask_config.set(settings):
            executor = DaskExecutor(address)
        try:
            result = executor.submit(stub_job(small_data, "mean")).result()
            assert result.ok and result.where["worker"].startswith("tls://"), result.error
        finally:
            executor.close()
    finally:
        cluster.close()


def test_the_benchmarks_local_cluster_has_workers_without_the_trim_variable_and_the_profiler():
    """DaskExecutor.local's workers train as fast as local ones (docs/cluster.md, "Worker settings")."""
    executor = DaskExecutor.local(n_workers=1)
    try:
        seen = executor.client.run(
            lambda: (
                os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                dask_config.get("distributed.worker.profile.enabled"),
            )
        )
    finally:
        executor.close()
    assert list(seen.values()) == [(None, False)]


def test_the_lost_worker_sentence():
    assert lost_sentence(["tcp://10.0.0.5:4000"], 0) == (
        "the Dask worker tcp://10.0.0.5:4000 running it was lost (1 attempt; the retries setting allows 0 retries)"
    )


def test_a_job_sent_before_any_worker_exists_waits_for_one(small_data):
    """An adaptive cluster starts with no worker: the job carries its data and runs once one joins
    (a thread worker in this process, to keep it quick)."""
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    executor = DaskExecutor(cluster.scheduler_address, cluster=cluster)
    try:
        running = executor.submit(stub_job(small_data, "mean"))
        time.sleep(0.5)
        assert not running.done()
        cluster.scale(1)
        result = running.result()
        assert result.ok and result.where["executor"] == "dask", result.error
    finally:
        executor.close()


# -- mechanics, with the stub model -----------------------------------------------------------------
def test_a_job_runs_on_a_worker_with_progress_and_says_where(dask, small_data):
    running = dask.submit(stub_job(small_data, "sleep", seconds=0.5))
    first_fit_event(running)
    result = running.result()
    assert result.ok and set(result.metrics) == {"mae"} and result.artifact
    assert result.where["executor"] == "dask" and result.where["worker"] in dask.worker_pids()
    assert dask.workers == WORKERS and "2 workers" in dask.description


def test_data_changed_on_the_way_fails_the_job_on_the_worker(dask, small_data):
    job = stub_job(small_data, "mean")
    changed = small_data.frame.copy()
    changed.loc[0, "s_2"] += 1.0
    job.train = dataclasses.replace(job.train, dataset=dataclasses.replace(small_data, frame=changed))
    result = dask.submit(job).result()
    assert result.error is not None and "arrived changed" in result.error and not result.artifact
    assert result.where["executor"] == "dask"


def test_cancel_reaches_a_running_job_within_a_second(dask, small_data):
    running = dask.submit(stub_job(small_data, "sleep", seconds=120))
    first_fit_event(running)
    asked = time.monotonic()
    running.cancel()
    result = running.result()
    assert result.cancelled and not result.artifact
    assert time.monotonic() - asked < 1.0


def test_a_model_that_ignores_cancel_has_its_task_cancelled_within_a_second(dask, small_data):
    running = dask.submit(stub_job(small_data, "stubborn", seconds=3))  # its thread ends by itself
    first_fit_event(running)
    asked = time.monotonic()
    running.cancel()
    result = running.result()
    assert result.cancelled and not result.artifact
    assert time.monotonic() - asked < 1.5  # 0.5 s grace, then Client.cancel; generous under load
    assert running.future.status == "cancelled"


# -- training through the cluster --------------------------------------------------------------------
def test_a_batch_of_tiny_trainings_registers_through_the_cluster(dask, tmp_path, fd001_small):
    require_plugin("telemanom")
    seen: list = []
    request = TrainRequest(
        plugin="telemanom",
        data_path=fd001_small["train"],
        targets=["s_2", "s_3", "s_4", "s_7"],
        config=TINY["telemanom"],
    )
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(ws, request, executor=dask, progress=seen.append)
        assert summary.successful == 4 and summary.failed == 0, [r.error for r in summary.results]
        assert {p.event.stage for p in seen} >= {"queued", "fit", "done"}
        workers = set(dask.worker_pids())
        for version_id in summary.registered:
            trained_on = ws.registry.get(version_id).provenance.trained_on
            assert trained_on.executor == "dask" and trained_on.worker in workers
            assert trained_on.host == socket.gethostname()
        report = check_registry(ws)
        assert report.ok, report.problems
        assert {r.status for r in ws.registry.list_runs()} == {"succeeded"}


def test_same_seed_same_data_same_metrics_in_process_and_on_the_cluster(dask, tmp_path, fd001_small):
    require_plugin("telemanom")
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_7"], config=TINY["telemanom"], seed=3
    )
    with Workspace.open(tmp_path / "reg") as ws:
        threaded = train(ws, request, executor=InProcessExecutor())
        clustered = train(ws, request, executor=dask)
        assert threaded.successful == clustered.successful == 1
        assert threaded.results[0].metrics == clustered.results[0].metrics


def test_the_executor_setting_names_a_scheduler(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("TURBOFAN_EXECUTOR", cluster.scheduler_address)
    monkeypatch.setenv("TURBOFAN_RETRIES", "2")
    with Workspace.open(tmp_path / "reg") as ws:
        executor = ws.executor()
        assert executor.kind == "dask" and executor.retries == 2
        assert executor.description.startswith(f"Dask cluster at {cluster.scheduler_address}")


def test_the_cli_trains_through_the_scheduler_and_lineage_names_the_worker(
    cluster, fd001_small, isolated_home
):
    require_plugin("telemanom")
    address = cluster.scheduler_address
    settings = [f"--set={key}={value}" for key, value in TINY["telemanom"].items()]
    done = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "train", str(fd001_small["train"]), "--model", "telemanom",
         "--sensor", "s_2", "--sensor", "s_3", *settings, "--executor", address,
         "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["summary"]["successful"] == 2 and answer["summary"]["failed"] == 0
    with distributed.Client(address, set_as_default=False) as client:
        workers = set(client.run(os.getpid))
    with Workspace.open(isolated_home) as ws:
        for version_id in answer["summary"]["registered"]:
            trained_on = ws.registry.get(version_id).provenance.trained_on
            assert trained_on.executor == "dask" and trained_on.worker in workers


# -- lost workers (last: a killed worker comes back cold, without torch imported) --------------------
class Recording:
    """An executor that remembers the running job of each target (so a test can find its worker)."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.workers = executor.workers
        self.by_target: dict = {}

    def submit(self, job):
        running = self.executor.submit(job)
        self.by_target[job.target] = running
        return running


def test_a_worker_killed_mid_training_is_retried_and_the_registry_stays_consistent(
    dask, tmp_path, fd001_small
):
    require_plugin("telemanom")
    recording = Recording(dask)
    killed: list[str] = []

    def progress(job_progress) -> None:
        if job_progress.target == "s_2" and job_progress.event.stage == "fit" and not killed:
            address = worker_running(dask, recording.by_target["s_2"].key)
            kill_worker(dask, address)
            killed.append(address)

    config = dict(TINY["telemanom"], epochs=8, patience=8)
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_2", "s_3"], config=config
    )
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(ws, request, progress=progress, executor=recording)
        assert killed, "s_2 never reported fitting"
        assert summary.successful == 2, [r.error for r in summary.results]
        assert {r.status for r in ws.registry.list_runs()} == {"succeeded"}
        report = check_registry(ws)
        assert report.ok, report.problems


def test_a_killed_worker_is_retried_on_another(dask, small_data):
    running = dask.submit(stub_job(small_data, "sleep", seconds=1.5))
    first_fit_event(running)
    killed = worker_running(dask, running.key)
    kill_worker(dask, killed)
    result = running.result()
    assert result.ok, result.error
    assert result.where["worker"] != killed


def test_with_no_retries_a_killed_worker_fails_the_job_with_a_sentence(cluster, small_data):
    executor = DaskExecutor(cluster.scheduler_address, retries=0)
    try:
        executor.client.wait_for_workers(WORKERS, timeout=120)
        running = executor.submit(stub_job(small_data, "sleep", seconds=30))
        first_fit_event(running)
        killed = worker_running(executor, running.key)
        kill_worker(executor, killed)
        result = running.result()
        assert not result.ok and not result.cancelled
        assert result.error == lost_sentence([killed], 0)
    finally:
        executor.close()
