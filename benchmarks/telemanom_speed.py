"""Telemanom training and inference speed: the plugin, the plain-torch reference and the authors' Keras
network, interleaved epoch by epoch in one run.

    python benchmarks/telemanom_speed.py --data ../shared/data/smap_msl [--channel A-1] [--epochs 4]
        [--keras-python /path/to/tf-venv/bin/python] [--stacks plugin,reference,keras] [--json out.json]

Each stack trains in its own worker process (so each has its own peak memory and thread pools), one
``fit`` of ``--epochs`` epochs on the channel's training file, and the driver lets one epoch run at a
time, stack after stack, rotating the order every round, so that machine noise hits all alike:
- ``plugin``: the Telemanom plugin as shipped (its sharded path when more than one torch thread is
  allowed: batches split over the threads);
- ``reference``: the same plugin with ``training_path = "reference"``: the plain torch loop, one batch
  at a time through ``TelemanomNet.forward`` and ``loss.backward()`` (what the plugin ran before);
- ``keras`` (with ``--keras-python``): the authors' network in Keras, run by that interpreter
  (benchmarks/_telemanom_keras_worker.py; TensorFlow is never a dependency of this project).
All train on the same windows (l_s 250, n_predictions 10, batch 64, 20 % held out at random and scored
after every epoch) with the torch thread count from the settings (default: every usable core).

An epoch's seconds run from the driver's go signal to the epoch's end (validation included). The
first epoch (setup, and tracing on Keras) is reported apart; the summary is the median and the range
of the later epochs, plus the median CPU seconds of the stack's process per epoch (all its threads):
on a machine shared with other jobs the wall time also measures how a stack's threads fare against
them (torch's OpenMP threads spin at every barrier, which costs dearly when a core is taken away). Inference, after training: seconds per 1,000 test windows of the bare forward
passes (chunks of 1,024 windows) and, for the torch stacks, of the plugin's whole ``detect``
(prediction + dynamic thresholds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

STACKS = ("plugin", "reference", "keras")


# -- the torch worker (this file run with --worker) ------------------------------------------------
def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def wait_for(expected: str) -> None:
    line = sys.stdin.readline().strip()
    if line != expected:
        raise SystemExit(f"torch worker: expected '{expected}' from the driver, got '{line}'")


def torch_worker(args: argparse.Namespace) -> int:
    import numpy as np

    from turbofan_desktop.config import load_settings
    from turbofan_desktop.data.readers import read_dataset
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_desktop.plugins.manager import get_plugin_manager
    from turbofan_telemanom.model import configure_threads

    train = read_dataset(args.data / "train" / f"{args.channel}.npy")
    test = read_dataset(args.data / "test" / f"{args.channel}.npy")
    spec = get_plugin_manager().model("telemanom")
    config = build_config(spec.config_class, {"epochs": args.epochs})
    threads = configure_threads(load_settings().torch_threads)
    model = spec.build(config, "value", threads=threads)
    model.training_path = "reference" if args.worker == "reference" else "auto"
    say({"ready": True, "stack": f"torch, {threads} thread(s), training_path {model.training_path}"})

    resumed = [0.0, 0.0]  # wall clock and this process's CPU time at the go signal

    def on_epoch(event) -> None:
        if event.epoch is None:  # progress within an epoch (contract.batch_progress): not an epoch's end
            return
        say(
            {
                "epoch": event.epoch,
                "seconds": time.perf_counter() - resumed[0],
                "cpu_seconds": time.process_time() - resumed[1],
            }
        )
        if event.epoch < args.epochs:
            wait_for("go")
            resumed[:] = time.perf_counter(), time.process_time()

    wait_for("go")
    resumed[:] = time.perf_counter(), time.process_time()
    result = model.fit(train, None, progress=on_epoch)
    wait_for("predict")
    import torch

    values = torch.from_numpy(model._series(test, healthy=False).values)
    starts = np.arange(len(test.frame) - config.l_s)
    runner = model._runner(configure_threads(threads))
    with runner if runner is not None else contextlib.nullcontext():
        model._predict_first(values, starts[:8], lambda: False, runner)  # warm-up, not counted
        began = time.perf_counter()
        model._predict_first(values, starts, lambda: False, runner)
        predict = time.perf_counter() - began
    began = time.perf_counter()
    model.detect(test)
    detect = time.perf_counter() - began
    notes = [n for n in result.notes if "windows" in n or "split over" in n]
    say(
        {
            "predict_seconds_per_1000": predict * 1000 / len(starts),
            "detect_seconds_per_1000": detect * 1000 / len(starts),
            "test_windows": len(starts),
            "train_windows": int(notes[0].split()[0]) if notes else None,
            "notes": notes,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    return 0


# -- the driver ------------------------------------------------------------------------------------
class Worker:
    def __init__(self, name: str, command: list[str]):
        self.name = name
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.info = self.read()

    def read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"The {self.name} worker ended early (exit code {self.process.wait()}).")
            if line.startswith("{"):
                return json.loads(line)

    def send(self, word: str) -> dict:
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        return self.read()


def summary(seconds: list[float], cpu: list[float]) -> dict:
    later = seconds[1:]
    return {
        "first_epoch_seconds": seconds[0],
        "median_seconds_per_epoch": statistics.median(later),
        "min_seconds_per_epoch": min(later),
        "max_seconds_per_epoch": max(later),
        "epochs": seconds,
        # CPU time of the stack's whole process (every thread): the work an epoch takes, less
        # dependent than the wall time on what else the machine runs (spin-waiting counts as work)
        "median_cpu_seconds_per_epoch": statistics.median(cpu[1:]),
        "epochs_cpu": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--channel", default="A-1")
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per stack (the first is reported apart)"
    )
    parser.add_argument("--keras-python", type=Path, help="a Python with TensorFlow/Keras (optional)")
    parser.add_argument(
        "--stacks", default="plugin,reference,keras", help="which to run (keras only with --keras-python)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=["plugin", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return torch_worker(args)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is reported apart")
    if args.epochs > 10:  # early stopping (patience 10) could end a fit before the driver expects
        parser.error("--epochs must be at most 10 (the plugin's early-stopping patience)")
    if args.keras_python is not None and not args.keras_python.exists():
        parser.error(f"--keras-python {args.keras_python}: no such interpreter")

    here = Path(__file__).resolve()
    common = ["--data", str(args.data.resolve()), "--channel", args.channel, "--epochs", str(args.epochs)]
    wanted = [name.strip() for name in args.stacks.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(STACKS))
    if unknown or "plugin" not in wanted:
        parser.error(f"--stacks {args.stacks}: choose from {', '.join(STACKS)}, the plugin included")
    workers = [
        Worker(stack, [sys.executable, str(here), "--worker", stack, *common])
        for stack in ("plugin", "reference")
        if stack in wanted
    ]
    if args.keras_python is not None and "keras" in wanted:
        keras_script = here.with_name("_telemanom_keras_worker.py")
        workers.append(Worker("keras", [str(args.keras_python), str(keras_script), *common]))
    for worker in workers:
        print(f"{worker.name:9s} {worker.info['stack']}", flush=True)

    seconds: dict[str, list[float]] = {w.name: [] for w in workers}
    cpu: dict[str, list[float]] = {w.name: [] for w in workers}
    for round_ in range(args.epochs):
        order = workers[round_ % len(workers) :] + workers[: round_ % len(workers)]
        for worker in order:
            epoch = worker.send("go")
            seconds[worker.name].append(epoch["seconds"])
            cpu[worker.name].append(epoch["cpu_seconds"])
        print(
            f"epoch {round_ + 1}: " + ", ".join(f"{w.name} {seconds[w.name][-1]:.2f} s" for w in workers),
            flush=True,
        )
    inference = {}
    for worker in workers:
        inference[worker.name] = worker.send("predict")
        worker.process.wait()

    result = {"channel": args.channel, "stacks": {}}
    for worker in workers:
        result["stacks"][worker.name] = {
            "stack": worker.info["stack"],
            **summary(seconds[worker.name], cpu[worker.name]),
            **inference[worker.name],
        }
    stacks = result["stacks"]
    plugin = stacks["plugin"]["median_seconds_per_epoch"]
    ratios = {f"{name}_over_plugin": s["median_seconds_per_epoch"] / plugin for name, s in stacks.items()}
    ratios = {k: v for k, v in ratios.items() if not k.startswith("plugin_")}
    result["speedup"] = ratios
    # per-round ratios: each round's epochs ran back to back, so their ratio is less noisy
    result["speedup_per_round"] = {
        f"{name}_over_plugin": [
            other / mine for other, mine in zip(seconds[name][1:], seconds["plugin"][1:], strict=True)
        ]
        for name in seconds
        if name != "plugin"
    }
    train_windows = stacks["plugin"].get("train_windows")
    print(f"\n{args.channel}: {train_windows} training windows, {args.epochs} epochs per stack (first apart)")
    for name, s in stacks.items():
        print(
            f"  {name:9s} {s['median_seconds_per_epoch']:6.2f} s/epoch (range "
            f"{s['min_seconds_per_epoch']:.2f}-{s['max_seconds_per_epoch']:.2f}; first "
            f"{s['first_epoch_seconds']:.2f}; CPU {s['median_cpu_seconds_per_epoch']:.1f} s)  predict {s['predict_seconds_per_1000']:.3f} s/1000"
            + (
                f"  detect {s['detect_seconds_per_1000']:.3f} s/1000"
                if "detect_seconds_per_1000" in s
                else ""
            )
            + f"  peak RSS {s['peak_rss_mib']:.0f} MiB"
        )
    for name, ratio in ratios.items():
        per_round = result["speedup_per_round"][name]
        print(
            f"  {name.replace('_over_plugin', '')} / plugin: {ratio:.2f}x per epoch "
            f"(per round {min(per_round):.2f}-{max(per_round):.2f}x)"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
