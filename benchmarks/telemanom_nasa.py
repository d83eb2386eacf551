"""Telemanom on the NASA SMAP/MSL telemetry channels, scored the way the paper counted.

    python benchmarks/telemanom_nasa.py --data ../shared/data/smap_msl [--channels A-1 T-9 ...]
        [--spacecraft MSL] [--set key=value ...] [--seed N] [--json out.json] [--no-cache]

``--data`` is any folder laid out like the NASA release: ``train/<chan>.npy``, ``test/<chan>.npy`` and
``labeled_anomalies.csv`` (chan_id, spacecraft, anomaly_sequences). Each channel gets its own model
(target = column 0, inputs = every column), trained on the train file with the plugin's defaults
(the authors' settings) unless ``--set`` overrides them, then run over the test file.

Scoring (shared/telemanom_spec.md, "Evaluation"): a predicted range overlapping a labelled range
(inclusive raw indices) is a true positive for the first such label not yet matched; one that only
overlaps already-matched labels counts as nothing; one overlapping no label is a false positive;
unmatched labels are false negatives. Precision and recall are pooled over channels and
F0.5 = 1.25 P R / (0.25 P + R) is computed from them.

Trained models are cached under benchmarks/.cache/telemanom/ keyed by channel, the settings that
shape training, and the seed, together with their prediction errors on the test file: a rerun only
thresholds and scores, also after a threshold setting changed (``--no-cache`` retrains and re-detects).
Nothing here looks at the test labels before scoring.

Channels run on the project's local executor (turbofan_desktop.services.executors.local): ``--workers``
spawn-started worker processes (default: one per usable core), each with ``--threads`` torch threads
(default: the cores shared out), one FitJob per channel (fitted with no validation data, so the plugin
holds out its share of the training windows as it does in process) and then one PredictJob "detect";
the longest training files are sent first, one channel per worker at a time (its detection right
after its fit). Each channel's row carries the worker's CPU seconds for its fit (``cpu_seconds``,
load-robust where wall times are not).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from turbofan_desktop.cli._jobs import parse_settings
from turbofan_desktop.data.readers import read_dataset
from turbofan_desktop.plugins.contract import build_config
from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_desktop.services.executors.local import LocalProcessExecutor

CACHE = Path(__file__).resolve().parent / ".cache" / "telemanom"
CACHE_VERSION = "2"
# Settings read only after training (errors, smoothing, thresholds): changing them reuses a cached model.
THRESHOLD_SETTINGS = frozenset(
    {
        "predict_batch_size",
        "window_size",
        "smoothing_perc",
        "error_buffer",
        "p",
        "z_min",
        "z_max",
        "z_step",
        "ignore_first",
        "threshold_method",
        "exclude_labelled",
    }
)


def read_labels(path: Path) -> dict[str, dict[str, Any]]:
    """chan_id -> spacecraft and inclusive label ranges; a channel listed twice keeps its first row."""
    labels: dict[str, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            channel = row["chan_id"].strip()
            if channel in labels:
                print(f"note: {channel} appears twice in {path.name}; keeping the first row", file=sys.stderr)
                continue
            ranges = json.loads(row["anomaly_sequences"]) if row.get("anomaly_sequences") else []
            labels[channel] = {"spacecraft": row.get("spacecraft", "").strip(), "ranges": ranges}
    return labels


def score_channel(predicted: list[tuple[int, int]], labelled: list[list[int]]) -> dict[str, int]:
    """TP/FP/FN for one channel by the paper's overlap rule."""
    matched = [False] * len(labelled)
    tp = fp = 0
    for start, end in predicted:
        overlapping = [i for i, (a, b) in enumerate(labelled) if start <= b and end >= a]
        if not overlapping:
            fp += 1
            continue
        fresh = [i for i in overlapping if not matched[i]]
        if fresh:
            matched[fresh[0]] = True
            tp += 1
    return {"tp": tp, "fp": fp, "fn": matched.count(False)}


def rates(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None or (0.25 * precision + recall) == 0:
        f05 = None
    else:
        f05 = 1.25 * precision * recall / (0.25 * precision + recall)
    return {"precision": precision, "recall": recall, "f0_5": f05}


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    return {"channels": len(rows), "tp": tp, "fp": fp, "fn": fn, **rates(tp, fp, fn)}


def training_settings(config: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in THRESHOLD_SETTINGS}


def cache_dir(channel: str, config: Any) -> Path:
    key = json.dumps(
        {"v": CACHE_VERSION, "channel": channel, "config": training_settings(config)}, sort_keys=True
    )
    return CACHE / f"{channel}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_channel(spec, config, channel: str, data: Path, use_cache: bool) -> dict[str, Any]:
    """One channel in this process (telemanom_pot.py's ``--train-missing``); :func:`main` sends the
    same work to the local executor's worker processes instead."""
    from turbofan_desktop.config import load_settings

    train = read_dataset(data / "train" / f"{channel}.npy")
    test = read_dataset(data / "test" / f"{channel}.npy")
    folder = cache_dir(channel, config)
    fit_file = folder / "fit.json"
    threads = load_settings().torch_threads
    if use_cache and fit_file.is_file():
        model = spec.load(folder / "model", config=config, target="value", threads=threads)
        fit = json.loads(fit_file.read_text())
        fit["cached"] = True
    else:
        model = spec.build(config, "value", threads=threads)
        started = time.perf_counter()
        result = model.fit(train, None, progress=lambda e: print_epoch(channel, e))
        fit = fit_summary(result, time.perf_counter() - started, len(train.frame), config)
        model.save(folder / "model")
        fit_file.write_text(json.dumps(fit, indent=2))
    errors_file = folder / "errors.npz"
    if use_cache and errors_file.is_file():
        predicted, scores, detect_seconds = rethreshold(errors_file, config)
    else:
        started = time.perf_counter()
        detection = model.detect(test)
        predicted, scores = store_detection(
            detection, model.mean[0], model.std[0], errors_file, time.perf_counter() - started
        )
        detect_seconds = float(np.load(errors_file)["detect_seconds"])
    return channel_row(predicted, scores, detect_seconds, len(test.frame), fit)


def fit_summary(result: Any, seconds: float, train_rows: int, config: Any) -> dict[str, Any]:
    """fit.json: what one channel's training did (``result`` a plugin or executor fit result)."""
    epochs = [h["seconds"] for h in result.history]
    return {
        "train_seconds": seconds,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "seconds_per_epoch": sum(epochs) / len(epochs),
        "train_windows": train_rows - config.l_s - config.n_predictions + 1,
        "notes": list(result.notes),
        "history": result.history,
        "cached": False,
    }


def store_detection(
    detection: Any, mean0: float, std0: float, errors_file: Path, seconds: float
) -> tuple[list[tuple[int, int]], list[float]]:
    """The ranges and scores of a one-unit detection; its errors saved for :func:`rethreshold`."""
    (unit,) = detection.units.values()
    predicted = [(a.start_index, a.end_index) for a in unit.anomalies]
    scores = [a.score for a in unit.anomalies]
    scaled_actual = (unit.actual - mean0) / std0
    np.savez(errors_file, errors=unit.errors, actual=scaled_actual, detect_seconds=seconds)
    return predicted, scores


def channel_row(
    predicted: list, scores: list[float], detect_seconds: float, test_rows: int, fit: dict[str, Any]
) -> dict[str, Any]:
    return {
        "predicted": [tuple(p) for p in predicted],
        "scores": [round(s, 3) for s in scores],
        "detect_seconds": detect_seconds,
        "test_rows": test_rows,
        **fit,
    }


def rethreshold(errors_file: Path, config: Any) -> tuple[list[tuple[int, int]], list[float], float]:
    """Ranges from a cached detection's errors under ``config``'s threshold settings.

    The LSTM's predictions do not depend on the threshold settings, so after the first detection
    only the threshold runs again; the steps mirror the plugin's detect (windows with a whole
    ``n_predictions`` target are judged; ranges shift by ``l_s`` onto the raw rows).
    """
    from turbofan_telemanom.pot import find_anomalies_pot
    from turbofan_telemanom.threshold import ThresholdParams, find_anomalies

    cached = np.load(errors_file)
    errors, actual = cached["errors"], cached["actual"]
    judged = max(0, len(errors) - config.n_predictions)
    method = find_anomalies_pot if config.threshold_method == "pot" else find_anomalies
    found = method(errors[:judged], actual[:judged], ThresholdParams.from_config(config))
    ranges = [(seq.start + config.l_s, seq.end + config.l_s) for seq in found.sequences]
    return ranges, [seq.score for seq in found.sequences], float(cached["detect_seconds"])


# -- the channels on the local executor's worker processes ------------------------------------------
POLL_S = 0.25


def worker_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far, all its threads (Linux; else None)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class ChannelWork:
    """One channel's way through the executor: fit (unless cached), then detect (unless cached)."""

    channel: str
    folder: Path
    test: Any
    fit: dict[str, Any] | None = None
    running: Any = None  # the RunningJob in flight
    pid: int | None = None  # the worker running it, once seen
    cpu_at_start: float | None = None
    train_rows: int = 0


def run_on_executor(
    spec: Any,
    config: Any,
    settings: dict[str, str],
    channels: list[str],
    data: Path,
    use_cache: bool,
    executor: Any,
    threads: int,
) -> Any:
    """Yield (channel, row) as channels finish: fits and detections run as executor jobs (FitJob with
    no validation split, so the plugin holds out its own share as in-process; PredictJob "detect" on
    the cached model folder); thresholding from cached errors runs here. Longest channels go first."""
    from turbofan_desktop.registry.artifacts import artifact_sha256, unpack_folder
    from turbofan_desktop.services.executors import DataPayload, FitJob
    from turbofan_desktop.services.executors.predict import PredictJob

    def submit_fit(work: ChannelWork) -> None:
        train = read_dataset(data / "train" / f"{work.channel}.npy")
        work.train_rows = len(train.frame)
        work.running = executor.submit(
            FitJob(
                job_id=f"fit-{work.channel}",
                plugin=spec.name,
                target="value",
                config=dict(settings),
                seed=config.seed,
                threads=threads,
                train=DataPayload.of(train),
                val=None,
                spec=spec,
            )
        )

    def submit_detect(work: ChannelWork) -> None:
        model_dir = work.folder / "model"
        work.running = executor.submit(
            PredictJob(
                job_id=f"detect-{work.channel}",
                version_id=0,
                name=f"the {work.channel} model",
                spec=spec,
                target="value",
                config=dict(settings),
                threads=threads,
                artifact_dir=str(model_dir),
                artifact_sha256=artifact_sha256(model_dir),
                method="detect",
                data=DataPayload.of(work.test),
            )
        )

    def cpu_used(work: ChannelWork) -> float | None:
        now = worker_cpu_seconds(work.pid)
        return None if now is None or work.cpu_at_start is None else now - work.cpu_at_start

    def finish(work: ChannelWork) -> dict[str, Any] | None:
        """Handle ``work``'s finished job; a row when the channel is done, else None (detect sent)."""
        result = work.running.result()
        cpu = cpu_used(work)
        work.running, work.pid, work.cpu_at_start = None, None, None
        if not result.ok:
            raise SystemExit(f"{work.channel}: {result.error}")
        errors_file = work.folder / "errors.npz"
        if hasattr(result, "artifact"):  # the fit
            shutil.rmtree(work.folder / "model", ignore_errors=True)  # an older model of this key
            unpack_folder(result.artifact, work.folder / "model")
            fit = fit_summary(result, result.seconds, work.train_rows, config)
            fit["cpu_seconds"] = cpu
            fit["worker"] = result.where.get("worker")
            (work.folder / "fit.json").write_text(json.dumps(fit, indent=2))
            work.fit = fit
            errors_file.unlink(missing_ok=True)  # errors of an older model of this key
            submit_detect(work)
            return None
        meta = json.loads((work.folder / "model" / "meta.json").read_text())
        predicted, scores = store_detection(
            result.value, meta["scaler"]["mean"][0], meta["scaler"]["std"][0], errors_file, result.seconds
        )
        work.fit["detect_cpu_seconds"] = cpu
        return channel_row(predicted, scores, result.seconds, len(work.test.frame), work.fit)

    works = []
    for channel in channels:
        folder = cache_dir(channel, config)
        work = ChannelWork(channel, folder, read_dataset(data / "test" / f"{channel}.npy"))
        fit_file, errors_file = folder / "fit.json", folder / "errors.npz"
        if use_cache and fit_file.is_file() and (folder / "model").is_dir():
            work.fit = {**json.loads(fit_file.read_text()), "cached": True}
            if errors_file.is_file():
                predicted, scores, seconds = rethreshold(errors_file, config)
                yield channel, channel_row(predicted, scores, seconds, len(work.test.frame), work.fit)
                continue
        works.append(work)
    # longest training files first: the last job to start is a short one (a shorter makespan); one
    # channel per worker in flight, so a channel's detection runs right after its fit (rows arrive as
    # the run goes, not all at the end behind every queued fit)
    rows_of = {w.channel: np.load(data / "train" / f"{w.channel}.npy", mmap_mode="r").shape[0] for w in works}
    waiting = sorted(works, key=lambda w: -rows_of[w.channel] if w.fit is None else 0)
    running: list[ChannelWork] = []
    while waiting or running:
        while waiting and len(running) < executor.workers:
            work = waiting.pop(0)
            work.folder.mkdir(parents=True, exist_ok=True)
            if work.fit is None:
                submit_fit(work)
            else:
                submit_detect(work)
            running.append(work)
        for work in list(running):
            for event in work.running.events():
                print_epoch(work.channel, event)
            if work.pid is None:
                work.pid = executor.busy_worker_pid(work.running)
                work.cpu_at_start = worker_cpu_seconds(work.pid)
            if work.running.done():
                row = finish(work)
                if row is not None:
                    running.remove(work)
                    yield work.channel, row
        time.sleep(POLL_S)


def print_epoch(channel: str, event: Any) -> None:
    """A finished epoch's line (progress within an epoch carries no epoch number)."""
    if event.epoch is not None and event.message:
        print(f"    {channel} {event.message}", flush=True)


def print_channel(channel: str, row: dict[str, Any]) -> None:
    early = next((n for n in row["notes"] if n.startswith("early stopping")), "no early stop")
    cpu = "" if row.get("cpu_seconds") is None else f", {row['cpu_seconds']:.0f} s CPU"
    print(
        f"{channel:6s} {row['spacecraft']:4s} TP {row['tp']} FP {row['fp']} FN {row['fn']}  "
        f"epochs {row['epochs_run']} ({row['seconds_per_epoch']:.1f} s each, {row['train_seconds']:.0f} s"
        f"{cpu}"
        f"{', cached' if row['cached'] else ''})  predicted {row['predicted']} labels {row['labels']}"
        f"  [{early.split(':')[0]}]",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="folder with train/, test/, labeled_anomalies.csv"
    )
    parser.add_argument("--labels", type=Path, help="labels CSV (default: DATA/labeled_anomalies.csv)")
    parser.add_argument("--channels", nargs="*", help="channel ids (default: every channel with files)")
    parser.add_argument("--spacecraft", choices=("SMAP", "MSL"), help="only this spacecraft's channels")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--seed", type=int, help="random seed (default: the config's)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-cache", action="store_true", help="retrain even when a cached model exists")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes of the local executor, channels trained at once (default 0: one per usable core)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per worker (default 0: the cores shared out)"
    )
    args = parser.parse_args(argv)

    labels = read_labels(args.labels or args.data / "labeled_anomalies.csv")
    available = [c for c in labels if (args.data / "train" / f"{c}.npy").is_file()]
    available = [c for c in available if (args.data / "test" / f"{c}.npy").is_file()]
    channels = args.channels or available
    unknown = [c for c in channels if c not in available]
    if unknown:
        raise SystemExit(f"no train/test files or labels for: {', '.join(unknown)}")
    if args.spacecraft:
        channels = [c for c in channels if labels[c]["spacecraft"] == args.spacecraft]

    spec = get_plugin_manager().model("telemanom")
    settings = parse_settings(args.set)
    if args.seed is not None:
        settings["seed"] = str(args.seed)
    config = build_config(spec.config_class, settings)  # fails here, once, on a bad --set
    CACHE.mkdir(parents=True, exist_ok=True)

    cores = usable_cores()
    workers = max(1, min(args.workers or cores, len(channels)))
    threads = args.threads or max(1, cores // workers)
    executor = LocalProcessExecutor(workers=workers, threads=threads)
    print(f"{len(channels)} channels on the local executor: {executor.description}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    executor.start()
    try:
        for channel, row in run_on_executor(
            spec, config, settings, channels, args.data, not args.no_cache, executor, threads
        ):
            row.update(score_channel(row["predicted"], labels[channel]["ranges"]))
            row.update(rates(row["tp"], row["fp"], row["fn"]))
            row["spacecraft"] = labels[channel]["spacecraft"]
            row["labels"] = labels[channel]["ranges"]
            results[channel] = row
            print_channel(channel, row)
    finally:
        executor.close()
    results = {c: results[c] for c in channels}
    summary = {
        "pooled": pooled(list(results.values())),
        "by_spacecraft": {
            craft: pooled([r for r in results.values() if r["spacecraft"] == craft])
            for craft in sorted({r["spacecraft"] for r in results.values()})
        },
    }
    out = {
        "config": dataclasses.asdict(config),
        "seed": config.seed,
        "wall_seconds": time.perf_counter() - started,
        "executor": executor.description,
        "workers": workers,
        "torch_threads_per_worker": threads,
        "train_cpu_seconds": sum(r.get("cpu_seconds") or 0.0 for r in results.values() if not r["cached"]),
        "channels": results,
        **summary,
    }
    for name, block in [("pooled", summary["pooled"]), *summary["by_spacecraft"].items()]:
        p, r, f = (block[k] for k in ("precision", "recall", "f0_5"))
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(
            f"{name:7s} channels {block['channels']:2d}  TP {block['tp']} FP {block['fp']} FN {block['fn']}  "
            f"P {fmt(p)} R {fmt(r)} F0.5 {fmt(f)}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
