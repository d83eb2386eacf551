"""Batch training over executors: Telemanom on the informative FD001 sensors, one model per sensor.

    python benchmarks/batch_scaling.py [--data ../shared/data/cmapss/train_FD001.txt] [--sensors N]
        [--epochs E] [--set key=value ...] [--modes inprocess local1 local2 dask2] [--overhead-repeats R]
        [--thread-scaling K] [--json out.json]

The same batch (same data, seed and settings) is trained through ``services.training.train`` with
each executor, each into a fresh registry:

* ``inprocess`` — today's path: one model at a time on a thread of this process, torch using every
  core (``torch_threads`` 0);
* ``local1`` / ``local2`` — 1 or 2 spawn-started local worker processes, the cores shared out;
* ``dask2`` — a ``distributed.LocalCluster`` of 2 worker processes (one thread each) started here,
  through the Dask executor (the ``[cluster]`` extra; skipped with a note when it is missing).

For each it prints the wall time of starting the executor (with one tiny training per worker, so
torch is imported there) and of the batch (loading the data, the split, every target's training and
registration), the speed-up of the batch over ``inprocess`` (the issue's goal: at least 1.6x with 2
workers on 2 cores for the 14-sensor batch) and which executors registered identical metrics (those
whose models ran with the same number of torch threads should), and the CPU seconds per model: the
worker processes' and this process's (where a LocalCluster's scheduler and nannies run), read from
/proc, so the figure holds on a busy machine where the wall times do not. Then, on warm executors, the
per-job overhead: the median time of a tiny training (the ``tiny`` preset, one sensor of the bundled
10-unit sample) minus the same in process. Results depend on how busy the machine is: run it on a quiet one for the real figure.

``--thread-scaling K`` first trains the first K sensors in process with 1 torch thread and with one
per core, and prints seconds and CPU seconds per model for each: what one core adds to one model
bounds the batch speed-up of one single-thread worker per core over the in-process batch (the
"ceiling" line: cores x seconds per model with every core / seconds per model with one thread).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._jobs import parse_settings
from turbofan_desktop.config import load_settings
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.training import TrainRequest, preset_configs, train

REPO = Path(__file__).resolve().parents[1]
# the shared data beside the checkout (or beside the folder of worktrees); TURBOFAN_SHARED_DATA wins
SHARED_CANDIDATES = [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
SHARED = Path(
    os.environ.get("TURBOFAN_SHARED_DATA")
    or next((p for p in SHARED_CANDIDATES if p.is_dir()), SHARED_CANDIDATES[0])
)
DEFAULT_DATA = SHARED / "cmapss" / "train_FD001.txt"
SAMPLE = REPO / "resources" / "sample" / "train_FD001.txt"
MODES = ("inprocess", "local1", "local2", "dask2")
GOAL = 1.6


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def make_executor(mode: str) -> Any:
    """A started executor for ``mode`` (the caller closes it)."""
    if mode == "inprocess":
        from turbofan_desktop.services.executors.inprocess import InProcessExecutor

        return InProcessExecutor(workers=1)
    if mode.startswith("local"):
        from turbofan_desktop.services.executors.local import LocalProcessExecutor

        count = workers_of(mode)
        executor = LocalProcessExecutor(workers=count, threads=max(1, cores() // count))
        executor.start()
        return executor
    if mode.startswith("dask"):
        from turbofan_desktop.services.executors.dask_cluster import DaskExecutor

        count = workers_of(mode)
        return DaskExecutor.local(n_workers=count, threads_per_worker=1, threads=max(1, cores() // count))
    raise SystemExit(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")


def threads_per_model(mode: str) -> int:
    """The torch threads each model of ``mode`` trains with."""
    if mode == "inprocess":
        return cores()
    return max(1, cores() // workers_of(mode))


def workers_of(mode: str) -> int:
    """The worker count a mode names ("local2" -> 2, "dask2" -> 2)."""
    return int(mode.removeprefix("local").removeprefix("dask"))


def dask_missing() -> str | None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        return f"the [cluster] extra is not installed ({exc})"
    return None


def run_batch(
    mode: str, data: Path, sensors: list[str], config: dict[str, Any], seed: int, *, threads: int = 0
) -> dict[str, Any]:
    """One batch through ``mode`` in a fresh registry: timings, CPU seconds, outcomes and metrics
    (``threads``: the in-process torch threads, 0 = every core)."""
    with tempfile.TemporaryDirectory(prefix=f"batch-{mode}-") as home:
        started = time.perf_counter()
        executor = make_executor(mode)
        try:
            with Workspace.open(Path(home) / "registry", settings=_settings(home, threads)) as ws:
                warm_up(ws, executor)
                setup = time.perf_counter() - started
                request = TrainRequest(
                    plugin="telemanom", data_path=data, targets=sensors, config=config, seed=seed
                )
                pids = worker_pids(executor)
                workers_before, own_before = cpu_of(pids), own_cpu()
                began = time.perf_counter()
                summary = train(ws, request, executor=executor)
                seconds = time.perf_counter() - began
                workers_cpu, own = cpu_of(pids) - workers_before, own_cpu() - own_before
        finally:
            executor.close()
    failed = {r.target: r.error for r in summary.results if not r.ok}
    return {
        "setup_s": setup,
        "batch_s": seconds,
        "successful": summary.successful,
        "failed": failed,
        "target_s": {r.target: r.seconds for r in summary.results},
        "cpu_s": {
            "workers": workers_cpu,
            "this_process": own,
            "per_model": (workers_cpu + own) / max(1, len(sensors)),
        },
        "metrics": {r.target: r.metrics for r in summary.results},
    }


def worker_pids(executor: Any) -> list[int]:
    """The process ids of ``executor``'s workers (none for the in-process one)."""
    pids = getattr(executor, "worker_pids", None)
    if pids is None:
        return []
    found = pids()
    return list(found.values()) if isinstance(found, dict) else list(found)


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``pids`` so far (from /proc; NaN without it)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def own_cpu() -> float:
    """User + system CPU seconds of this process so far (its threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def warm_up(ws: Workspace, executor: Any) -> None:
    """One tiny training per worker (torch and the plugin imported there), so that the batch times
    steady-state training and the start column what a session's first batch pays on top."""
    dataset = load_dataset(ws, SAMPLE)
    count = max(1, int(executor.workers))
    request = TrainRequest(
        plugin="telemanom",
        dataset=dataset,
        targets=dataset.informative_sensors[:count],
        config=preset_configs(ws, "tiny")["telemanom"],
    )
    summary = train(ws, request, executor=executor)
    assert summary.failed == 0, [r.error for r in summary.results]


def _settings(home: str, threads: int = 0):
    """This machine's settings with the registry and artifacts under ``home`` (torch threads of the
    in-process path: ``threads``, 0 = all cores, as today)."""
    return load_settings(env={**os.environ, "TURBOFAN_HOME": home, "TURBOFAN_TORCH_THREADS": str(threads)})


def thread_scaling(data: Path, sensors: list[str], config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Seconds and CPU seconds per model in process with 1 torch thread and with one per core, and
    the batch speed-up that one single-thread worker per core can reach at most over the in-process
    batch with every core: cores x (seconds per model, every core) / (seconds per model, 1 thread)."""
    rows: dict[str, dict[str, float]] = {}
    for threads in sorted({1, cores()}):
        run = run_batch("inprocess", data, sensors, config, seed, threads=threads)
        rows[str(threads)] = {
            "model_s": statistics.mean(run["target_s"].values()),
            "cpu_per_model_s": run["cpu_s"]["per_model"],
        }
    one, every = rows["1"], rows[str(cores())]
    return {
        "sensors": sensors,
        "by_threads": rows,
        "thread_speedup": one["model_s"] / every["model_s"],
        "ceiling": cores() * every["model_s"] / one["model_s"],
    }


def tiny_overhead(modes: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds of a tiny one-sensor training per mode on a warm executor (the first, which
    imports torch in the worker, is left out), and the difference to in-process."""
    times: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="batch-overhead-") as home,
        Workspace.open(Path(home) / "registry", settings=_settings(home)) as ws,
    ):
        config = preset_configs(ws, "tiny")["telemanom"]
        dataset = load_dataset(ws, SAMPLE)
        request = TrainRequest(plugin="telemanom", dataset=dataset, targets=["s_2"], config=config)
        for mode in modes:
            times[mode] = _timed_tiny_jobs(ws, mode, request, repeats)
    base = statistics.median(times["inprocess"]) if "inprocess" in times else None
    return {
        mode: {
            "median_s": statistics.median(runs),
            "overhead_s": statistics.median(runs) - base if base is not None else float("nan"),
        }
        for mode, runs in times.items()
    }


def _timed_tiny_jobs(ws: Workspace, mode: str, request: TrainRequest, repeats: int) -> list[float]:
    """Seconds of ``repeats`` tiny trainings through a fresh executor of ``mode``, after one warm-up
    (torch imported in the worker)."""
    executor = make_executor(mode)
    try:
        train(ws, request, executor=executor)
        runs = []
        for _ in range(repeats):
            began = time.perf_counter()
            summary = train(ws, request, executor=executor)
            runs.append(time.perf_counter() - began)
            assert summary.successful == 1, summary.results[0].error
        return runs
    finally:
        executor.close()


def metric_groups(runs: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The modes grouped by identical registered metrics (same seed, data and settings: modes whose
    models ran with the same number of torch threads should share a group; a different thread count
    changes the order of floating-point sums)."""
    groups: list[list[str]] = []
    for mode, run in runs.items():
        home = next((g for g in groups if runs[g[0]]["metrics"] == run["metrics"]), None)
        if home is None:
            groups.append([mode])
        else:
            home.append(mode)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a C-MAPSS training file")
    parser.add_argument("--sensors", type=int, default=14, metavar="N", help="first N informative sensors")
    parser.add_argument("--epochs", type=int, help="Telemanom epochs (default: the model's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--overhead-repeats", type=int, default=5, metavar="R", help="0 skips it")
    parser.add_argument(
        "--thread-scaling",
        type=int,
        default=0,
        metavar="K",
        help="first K sensors in process, 1 thread and all",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    modes = list(args.modes)
    skipped = {}
    missing = dask_missing()
    if missing:
        skipped = {m: missing for m in modes if m.startswith("dask")}
        modes = [m for m in modes if m not in skipped]
    with Workspace.open(tempfile.mkdtemp(prefix="batch-probe-")) as ws:
        sensors = load_dataset(ws, args.data).informative_sensors[: args.sensors]
    config = parse_settings(args.set)
    if args.epochs is not None:
        config["epochs"] = str(args.epochs)
    load = os.getloadavg()
    print(
        f"{args.data.name}: Telemanom on {len(sensors)} sensors ({', '.join(sensors)}), settings {config or 'defaults'}; "
        f"{cores()} cores, load average {load[0]:.1f} at the start"
    )
    for mode, why in skipped.items():
        print(f"{mode:9s} skipped: {why}")

    scaling = {}
    if args.thread_scaling > 0:
        scaling = thread_scaling(args.data, sensors[: args.thread_scaling], config, args.seed)
        for threads, row in scaling["by_threads"].items():
            print(
                f"in process, {threads} torch thread(s): {row['model_s']:6.2f} s per model, "
                f"{row['cpu_per_model_s']:6.2f} CPU s per model ({len(scaling['sensors'])} sensors)"
            )
        print(
            f"{cores()} threads make one model {scaling['thread_speedup']:.2f}x faster than 1: "
            f"{cores()} one-thread workers can reach at most {scaling['ceiling']:.2f}x over in-process",
            flush=True,
        )

    runs: dict[str, dict[str, Any]] = {}
    for mode in modes:
        run = runs[mode] = run_batch(mode, args.data, sensors, config, args.seed)
        note = f"  FAILED {run['failed']}" if run["failed"] else ""
        cpu = run["cpu_s"]
        print(
            f"{mode:9s} start {run['setup_s']:6.1f} s  batch {run['batch_s']:7.1f} s  "
            f"({run['successful']}/{len(sensors)} registered){note}  "
            f"CPU per model {cpu['per_model']:5.2f} s (workers {cpu['workers']:.1f} s, "
            f"this process {cpu['this_process']:.1f} s)",
            flush=True,
        )
    speedup = {}
    if "inprocess" in runs:
        base = runs["inprocess"]["batch_s"]
        for mode, run in runs.items():
            speedup[mode] = {
                "batch": base / run["batch_s"],
                "with_start": (base + runs["inprocess"]["setup_s"]) / (run["batch_s"] + run["setup_s"]),
            }
        for mode in runs:
            if mode != "inprocess":
                goal = " (goal >= 1.6x)" if mode in ("local2", "dask2") else ""
                if scaling and workers_of(mode) == cores():
                    goal += f"; the thread-scaling ceiling is {scaling['ceiling']:.2f}x"
                print(
                    f"speed-up {mode:9s} {speedup[mode]['batch']:.2f}x over in-process "
                    f"({speedup[mode]['with_start']:.2f}x counting the executor's start){goal}"
                )
    groups = metric_groups(runs)
    threads = {mode: threads_per_model(mode) for mode in runs}
    print(
        "identical metrics: "
        + "; ".join(" = ".join(f"{m} ({threads[m]} thr)" for m in group) for group in groups)
    )

    overhead = {}
    if args.overhead_repeats > 0:
        overhead = tiny_overhead(
            ["inprocess", *[m for m in modes if m != "inprocess"]], args.overhead_repeats
        )
        for mode, row in overhead.items():
            print(
                f"tiny job {mode:9s} median {row['median_s'] * 1000:7.0f} ms"
                + ("" if mode == "inprocess" else f"  overhead {row['overhead_s'] * 1000:+7.0f} ms")
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")

    if args.json:
        document = {
            "data": str(args.data),
            "sensors": sensors,
            "settings": config,
            "seed": args.seed,
            "cores": cores(),
            "load_average": {"start": load[0], "end": os.getloadavg()[0]},
            "python": sys.version.split()[0],
            "runs": runs,
            "skipped": skipped,
            "speedup": speedup,
            "goal_speedup": GOAL,
            "identical_metrics": groups,
            "threads_per_model": {mode: threads_per_model(mode) for mode in runs},
            "tiny_job": overhead,
            "thread_scaling": scaling,
        }
        args.json.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
