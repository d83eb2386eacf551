"""How responsive the desktop application is. Prints the numbers (``--json`` for machines).

Four measurements, each against the target in issue 7:

* ``cold_start``: a fresh Python process (subprocess) until the main window's first paint, and until
  the bundled FD001 sample is loaded and plotted (target: first paint < 1.5 s).
* ``training_stall``: a 10 ms heartbeat QTimer on the GUI thread while a Telemanom model trains through
  the JobManager with the window showing the jobs panel; the lateness of each beat is the GUI-thread
  stall (target: max < 50 ms; p99 and max reported). Per executor (``--executor``): "local" (worker
  processes, the default setting: the GUI thread only waits) and "inprocess" (the model trains on a
  thread of the GUI's process, as before issue 18). The session's first training (worker start,
  torch import) and a second one on the same workspace (warm workers) are measured.
* ``job_overhead``: wall time of a tiny training job (one Telemanom target, a few units, one epoch)
  through the services, per executor, after one warm-up job: what the process executor adds per
  job (pickling the data, the pipe, unpacking the artifact) over a thread.
* ``fd002_all_sensors``: read train_FD002, add it to the data panel and draw all its sensors for one
  unit, painted (target < 300 ms).
* ``pan_zoom``: frame time (range change + synchronous repaint) while panning and zooming over one
  channel of 10 million points (target < 30 ms).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/ui_responsiveness.py [--json] [--only NAME]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CMAPSS = Path(os.environ.get("TURBOFAN_SHARED_DATA", REPO.parent / "shared" / "data")) / "cmapss"
TARGETS_MS = {"cold_start": 1500.0, "training_stall": 50.0, "fd002_all_sensors": 300.0, "pan_zoom": 30.0}
EXECUTORS = ("local", "inprocess")
# --quick: fewer epochs and units (a loaded machine, a smoke run)
SIZES = {
    "full": {"first_epochs": 3, "warm_epochs": 20, "units": 20},
    "quick": {"first_epochs": 2, "warm_epochs": 4, "units": 10},
}

COLD_START_CHILD = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QEvent, QObject, QTimer
    from turbofan_desktop.ui.app import _application, sample_files
    app = _application()
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.ui.main_window import MainWindow

    class FirstPaint(QObject):
        painted = None
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and self.painted is None:
                self.painted = time.time()
                print(f"painted {self.painted:.6f}", flush=True)
            return False

    window = MainWindow(Workspace.open(), defer_panels=True)  # as run_app does
    probe = FirstPaint()
    window.installEventFilter(probe)
    window.show()
    window.open_files(sample_files())

    def loaded():
        app.processEvents()
        window.plot_area.graphics.repaint()
        print(f"loaded {time.time():.6f} {len(window.plot_area.shown_sensors)}", flush=True)
        window.close()
        app.quit()

    window.datasets_loaded.connect(loaded)
    QTimer.singleShot(60000, app.quit)
    app.exec()
    """
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cold_start(repeats: int = 3) -> dict:
    paints, loads = [], []
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as home:
        env["TURBOFAN_HOME"] = home
        env["TURBOFAN_CONFIG_DIR"] = str(Path(home) / "config")
        for _ in range(repeats):
            started = time.time()
            result = subprocess.run(
                [sys.executable, "-c", COLD_START_CHILD], capture_output=True, text=True, env=env, timeout=120
            )
            stamps = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
            if "painted" not in stamps:
                raise RuntimeError(f"cold start child failed: {result.stderr[-2000:]}")
            paints.append((float(stamps["painted"]) - started) * 1000)
            loads.append((float(stamps["loaded"].split()[0]) - started) * 1000)
    return {
        "first_paint_ms": statistics.median(paints),
        "first_paint_min_ms": min(paints),
        "sample_plotted_ms": statistics.median(loads),
        "repeats": repeats,
        "value_ms": statistics.median(paints),
    }


def _window(workspace=None):
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.ui.app import _application, leave_a_core_for_the_gui
    from turbofan_desktop.ui.main_window import MainWindow
    from turbofan_desktop.ui.settings import UiSettings

    leave_a_core_for_the_gui()  # as run_app does
    app = _application()
    workspace = workspace or Workspace.open()
    window = MainWindow(workspace, ui_settings=UiSettings(Path(tempfile.mkdtemp()) / "ui.ini"))
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    return app, workspace, window


def training_stall(executors: tuple[str, ...] = EXECUTORS, size: str = "full") -> dict:
    """Per executor, twice on one workspace: the session's first training (local: the worker
    process starts and imports torch; inprocess: torch is imported on the job's thread while the
    GUI runs), then a longer second one (warm). The headline is the worst first-training stall of
    the first executor named (the default, "local")."""
    from turbofan_desktop.services import Workspace

    sizes = SIZES[size]
    result = {f"idle_{k}": v for k, v in _idle_stall().items()}
    for executor in executors:
        os.environ["TURBOFAN_EXECUTOR"] = executor
        workspace = Workspace.open()
        try:
            first = _training_stall_once(workspace, epochs=sizes["first_epochs"], units=sizes["units"])
            # long enough (several seconds) to see the steady state
            second = _training_stall_once(workspace, epochs=sizes["warm_epochs"], units=sizes["units"])
        finally:
            workspace.close()
        result.update({f"{executor}_first_{k}": v for k, v in first.items() if k != "value_ms"})
        result.update({f"{executor}_warm_{k}": v for k, v in second.items() if k != "value_ms"})
        result.setdefault("value_ms", first["value_ms"])
    result["executors"] = list(executors)
    result["size"] = size
    return result


def job_overhead(executors: tuple[str, ...] = EXECUTORS, size: str = "full", repeats: int = 3) -> dict:
    """A tiny training job through ``services.training.train`` per executor: the first job (a local
    worker starts and imports torch) and the median of ``repeats`` warm ones; ``local_overhead_ms``
    is the warm local median minus the warm in-process median."""
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.executors import executor_for
    from turbofan_desktop.services.training import TrainRequest, train
    from turbofan_desktop.ui.app import sample_files

    result: dict = {}
    with Workspace.open() as workspace:
        dataset = load_dataset(workspace, sample_files()[0])
        subset = dataset.subset(dataset.units[: 6 if size == "quick" else 10])
        config = {"l_s": 10, "n_predictions": 1, "lstm_units": (8,), "epochs": 1, "batch_size": 64}
        request = TrainRequest(plugin="telemanom", dataset=subset, targets=["s_2"], config=config)
        for name in executors:
            executor = executor_for(workspace, name, workers=1)
            try:
                times = []
                for _ in range(repeats + 1):
                    started = time.perf_counter()
                    summary = train(workspace, request, executor=executor)
                    times.append((time.perf_counter() - started) * 1000)
                    if summary.failed:
                        raise RuntimeError(f"{name}: {summary.results[0].error}")
            finally:
                executor.close()
            result[f"{name}_first_ms"] = times[0]
            result[f"{name}_warm_median_ms"] = statistics.median(times[1:])
    if all(f"{name}_warm_median_ms" in result for name in ("local", "inprocess")):
        result["local_overhead_ms"] = result["local_warm_median_ms"] - result["inprocess_warm_median_ms"]
    result["repeats"] = repeats
    return result


def _idle_stall(seconds: float = 5.0, heartbeat_ms: int = 10) -> dict:
    """The same heartbeat with nothing running: what the machine itself (scheduling, other
    processes) adds, so the training numbers can be read against it."""
    from PySide6.QtCore import QEventLoop, QTimer

    app, workspace, window = _window()
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(heartbeat_ms)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    window.close()
    workspace.close()
    stalls = [max(0.0, (b - a) * 1000 - heartbeat_ms) for a, b in zip(beats, beats[1:], strict=False)]
    return {"stall_p99_ms": _percentile(stalls, 99), "stall_max_ms": max(stalls) if stalls else float("nan")}


def _training_stall_once(workspace, epochs: int = 3, units: int = 20, heartbeat_ms: int = 10) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer

    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.training import TrainRequest
    from turbofan_desktop.ui.app import sample_files

    app, workspace, window = _window(workspace)
    dataset = load_dataset(workspace, sample_files()[0])
    window.loader.loaded.emit(_loaded(dataset, sample_files()[0]))
    app.processEvents()
    subset = dataset.subset(dataset.units[:units])
    config = {"l_s": 30, "n_predictions": 1, "lstm_units": (32, 32), "epochs": epochs, "batch_size": 64}
    request = TrainRequest(plugin="telemanom", dataset=subset, targets=["s_2"], config=config)

    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(heartbeat_ms)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    loop = QEventLoop()
    outcome: dict = {}

    def finished(job_id, result):
        outcome["result"] = result
        loop.quit()

    def failed(job_id, message):
        outcome["error"] = message
        loop.quit()

    marks: dict[str, float] = {}

    def progressed(job_id, progress):
        marks.setdefault("first_progress", time.perf_counter())
        marks["last_progress"] = time.perf_counter()

    window.jobs.job_started.connect(lambda job_id: marks.setdefault("started", time.perf_counter()))
    window.jobs.job_progress.connect(progressed)
    window.jobs.job_finished.connect(lambda *_: marks.setdefault("finished", time.perf_counter()))
    window.jobs.job_finished.connect(finished)
    window.jobs.job_failed.connect(failed)
    timer.start()
    started = time.perf_counter()
    window.submit_training(request)
    QTimer.singleShot(600_000, loop.quit)
    loop.exec()
    seconds = time.perf_counter() - started
    timer.stop()
    window.close()
    if "error" in outcome:
        raise RuntimeError(f"training failed: {outcome['error']}")
    gaps = [(b - a) * 1000 for a, b in zip(beats, beats[1:], strict=False)]
    stalls = [max(0.0, gap - heartbeat_ms) for gap in gaps]
    worst = sorted(range(len(stalls)), key=stalls.__getitem__, reverse=True)[:5]
    events = {name: round(stamp - started, 2) for name, stamp in marks.items()}
    return {
        "train_seconds": seconds,
        "heartbeats": len(beats),
        "stall_p50_ms": _percentile(stalls, 50),
        "stall_p99_ms": _percentile(stalls, 99),
        "stall_max_ms": max(stalls) if stalls else float("nan"),
        "value_ms": max(stalls) if stalls else float("nan"),
        # when the worst stalls happened (seconds after submit) next to the job's milestones
        "worst_stalls": [(round(beats[i] - started, 2), round(stalls[i], 1)) for i in sorted(worst)],
        "job_events_s": events,
    }


def _loaded(dataset, path):
    from turbofan_desktop.ui.loading import LoadedData, LoadRequest, sensor_flags

    return LoadedData(LoadRequest(Path(path)), dataset, dataset.data_hash, sensor_flags(dataset))


def fd002_all_sensors(repeats: int = 3) -> dict:
    from turbofan_desktop.services.data import load_dataset

    path = CMAPSS / "train_FD002.txt"
    if not path.is_file():
        return {"skipped": f"{path} not found"}
    app, workspace, window = _window()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dataset = load_dataset(workspace, path)
        t1 = time.perf_counter()
        index = window.data_panel.add_dataset(_loaded(dataset, path))
        t2 = time.perf_counter()
        unit = dataset.units[0]
        window.plot_area.plot_dataset(dataset, [unit], list(dataset.sensors))
        window.plot_area.graphics.repaint()
        app.processEvents()
        t3 = time.perf_counter()
        runs.append({"load_ms": (t1 - t0) * 1000, "panel_ms": (t2 - t1) * 1000, "draw_ms": (t3 - t2) * 1000})
        runs[-1]["total_ms"] = (t3 - t0) * 1000
        window.data_panel.tree.clear()
        del index
    window.close()
    workspace.close()
    best = min(runs, key=lambda r: r["total_ms"])
    return {
        **{k: statistics.median(r[k] for r in runs) for k in runs[0]},
        "best_total_ms": best["total_ms"],
        "first_total_ms": runs[0]["total_ms"],  # includes creating the pooled plots once
        "sensors": len(dataset.sensors),
        "rows": dataset.n_rows,
        "value_ms": statistics.median(r["total_ms"] for r in runs),
    }


def pan_zoom(points: int = 10_000_000, frames: int = 30) -> dict:
    import numpy as np

    from turbofan_desktop.ui.plot_area import Series

    app, workspace, window = _window()
    rng = np.random.default_rng(0)
    time_axis = np.arange(points, dtype=np.float64)
    values = np.cumsum(rng.standard_normal(points)).astype(np.float64)
    window.plot_area.plot_series({"channel": [Series(0, time_axis, values)]}, time_label="step")
    plot = window.plot_area.sensor_plot("channel").plot
    window.plot_area.graphics.repaint()
    app.processEvents()

    def frame(x0: float, x1: float) -> float:
        started = time.perf_counter()
        plot.setXRange(x0, x1, padding=0)
        app.processEvents()
        window.plot_area.graphics.repaint()
        return (time.perf_counter() - started) * 1000

    scenarios = {}
    scenarios["full_view_pan"] = [frame(i * 1000, points + i * 1000) for i in range(frames)]
    width = points / 100
    scenarios["zoomed_1pct_pan"] = [frame(i * width / 10, i * width / 10 + width) for i in range(frames)]
    spans = np.geomspace(points, 1000, frames)
    scenarios["zoom_in"] = [frame(points / 2 - s / 2, points / 2 + s / 2) for s in spans]
    window.close()
    workspace.close()
    result = {}
    for name, times in scenarios.items():
        result[f"{name}_median_ms"] = statistics.median(times)
        result[f"{name}_max_ms"] = max(times)
    result["points"] = points
    result["value_ms"] = max(statistics.median(t) for t in scenarios.values())
    return result


BENCHMARKS = {
    "cold_start": cold_start,
    "fd002_all_sensors": fd002_all_sensors,
    "pan_zoom": pan_zoom,
    "training_stall": training_stall,
    "job_overhead": job_overhead,
}
# the benchmarks that take --executor and --quick
EXECUTOR_BENCHMARKS = ("training_stall", "job_overhead")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only these")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        action="append",
        help="training_stall / job_overhead: only these executors (default: local, then inprocess)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller trainings (a loaded machine)")
    args = parser.parse_args(argv)
    executors = tuple(args.executor or EXECUTORS)
    size = "quick" if args.quick else "full"
    home = tempfile.mkdtemp(prefix="turbofan-bench-")
    os.environ.setdefault("TURBOFAN_HOME", home)
    os.environ.setdefault("TURBOFAN_CONFIG_DIR", str(Path(home) / "config"))
    results = {}
    for name in args.only or list(BENCHMARKS):
        if name in EXECUTOR_BENCHMARKS:
            result = BENCHMARKS[name](executors=executors, size=size)
        else:
            result = BENCHMARKS[name]()
        if "value_ms" in result and name in TARGETS_MS:
            result["target_ms"] = TARGETS_MS[name]
            result["meets_target"] = result["value_ms"] < TARGETS_MS[name]
        results[name] = result
        if not args.json:
            numbers = ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in result.items()
                if k != "value_ms"
            )
            print(f"{name}: {numbers}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
