"""Side by side: the authors' Telemanom network (Keras) and ours, on the same windows and seeds.

    python benchmarks/telemanom_fidelity.py --data ../shared/data/smap_msl \
        --keras-python /work/tfvenv/bin/python [--channels P-1 E-13 ... | --all] [--seeds 0 1 2] \
        [--ours-seeds 0 1 2 3 4] [--variants ours ours-torchadam ours-pergate] \
        [--jobs 2] [--keras-jobs 1] [--train-deadline SECONDS] [--work DIR] [--json out.json]

For each channel and seed the harness builds one task: the channel's training and test series scaled
by our plugin's own code, and the training and validation window starts exactly as our ``fit`` draws
them (``split_windows`` with ``numpy.random.default_rng(seed)``). Both stacks train on those windows:

* ``keras``: the authors' network, loss, optimiser and early stopping (``_keras_init`` is not ours:
  Keras' own initialisers), in ``benchmarks/_keras_telemanom.py`` run by ``--keras-python`` (a
  separate interpreter with Keras 3 and a backend; ``KERAS_BACKEND`` picks it). Seeded with
  ``keras.utils.set_random_seed(seed)``. Keras and its backends are never a project dependency.
* ``ours``: the plugin's ``TelemanomModel.fit`` as users run it, seeded by its ``seed`` setting
  (on CUDA when available, as ``telemanom_seed_spread.py`` moves it).
* ablations of ours, to see which difference matters: ``ours-torchadam`` (``torch.optim.Adam``
  with eps 1e-7 instead of the plugin's ``KerasAdam``) and ``ours-pergate`` (the plugin before
  issue 24: Glorot and orthogonal drawn on each gate's block, both PyTorch biases trainable, and
  ``torch.optim.Adam``).

Then every 1-step test prediction is thresholded by the plugin's nonparametric threshold and scored
as ``telemanom_nasa.py`` scores (pooled TP/FP/FN, F0.5). Both stacks are scored alike, by our rule:
the first l_s smoothed errors are replaced by the mean of the first 2 l_s on every channel. The
authors' errors.py skips that replacement for C-2 by name (its first labelled anomaly lies in that
stretch); a by-name exception chosen on a test label is no rule a user's data could follow, so the
plugin has none. ``--start-fix-exempt C-2`` scores the named channels without the replacement, to
show what the authors' exception is worth (a what-if; the report says when it is on).
Printed per channel: TP/FP/FN per stack
summed over seeds, the epochs run (early stopping), the last validation loss, and between ours and
Keras the correlation of the smoothed test-error series (paired by seed; beside it Keras against
Keras across seeds, the spread seeds alone give) and the scale ratio mean |e| ours / Keras. Where
test targets leave the training range of the target (e.g. P-15), per seed: the mean |e| on the
targets inside and outside that range and the share of the first LSTM's units saturated
(|h| > 0.95 at the last step, every 25th test window) for windows ending inside and outside it.
Per stack, beside the pooled scores: on the runs where both stacks ran every epoch, the median of
the last training loss and of the last validation loss over Keras' (where the curves end side by side).
Trained results are kept under ``--work`` (default ``benchmarks/.cache/telemanom_fidelity``); a
rerun trains only what is missing. ``--train-deadline`` stops handing out new training jobs after
that many seconds (jobs run in priority order: the first 8 channels' base seeds first), then scores
whatever finished. No setting here is chosen on test labels: the labels are read only to score.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import telemanom_nasa as nasa  # noqa: E402

from turbofan_desktop.cli._jobs import parse_settings  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = HERE / ".cache" / "telemanom_fidelity"
ISSUE_CHANNELS = ["P-1", "E-13", "A-1", "P-4", "M-3", "M-5", "P-15", "C-2"]
MSL_CHECK = ["M-3", "M-5", "P-15", "C-2"]
OURS_VARIANTS = ("ours", "ours-torchadam", "ours-pergate")


# -- tasks: the windows both stacks train on -----------------------------------------------------------
def task_file(work: Path, channel: str, seed: int) -> Path:
    return work / "tasks" / f"{channel}-s{seed}.npz"


def result_file(work: Path, stack: str, channel: str, seed: int) -> Path:
    return work / stack / f"{channel}-s{seed}.npz"


def make_task(data: Path, channel: str, seed: int, settings: dict[str, str], out: Path) -> None:
    """Scaled series and window starts exactly as our ``fit`` builds them for this seed."""
    from turbofan_desktop.data.readers import read_dataset
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_telemanom.config import TelemanomConfig
    from turbofan_telemanom.model import TelemanomModel, split_windows

    config = build_config(TelemanomConfig, {**settings, "seed": seed})
    train = read_dataset(data / "train" / f"{channel}.npy")
    test = read_dataset(data / "test" / f"{channel}.npy")
    model = TelemanomModel(config, "value")
    model.features = model._choose_features(train)
    blocks = model._blocks(train, healthy=False)
    model._fit_scaler(np.concatenate([raw for _, raw in blocks]))
    series = model._series(train, healthy=False, blocks=blocks)
    rng = np.random.default_rng(config.seed)  # fit's generator: the split is its first draw
    starts = series.window_starts(config.l_s + config.n_predictions)
    train_idx, val_idx = split_windows(starts, config.validation_split, config.validation_pick, rng)
    shared = {
        "l_s": config.l_s,
        "n_predictions": config.n_predictions,
        "units": list(config.lstm_units),
        "dropout": config.dropout,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "patience": config.patience,
        "min_delta": config.min_delta,
        "lr": config.lr,
        "our_settings": settings,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        train=series.values,
        test=model._series(test, healthy=False).values,
        train_idx=train_idx,
        val_idx=val_idx,
        settings=json.dumps(shared),
    )


# -- our side, in a worker process ---------------------------------------------------------------------
def pergate_init(net) -> None:
    """The initialiser before issue 24: each gate's block drawn on its own, both biases trainable."""
    from torch import nn

    for lstm in net.lstms:
        hidden = lstm.hidden_size
        for name, param in lstm.named_parameters():
            if name.startswith("weight_ih"):
                for gate in range(4):
                    nn.init.xavier_uniform_(param.data[gate * hidden : (gate + 1) * hidden])
            elif name.startswith("weight_hh"):
                for gate in range(4):
                    nn.init.orthogonal_(param.data[gate * hidden : (gate + 1) * hidden])
            elif name.startswith("bias_ih"):
                param.data.zero_()
                param.data[hidden : 2 * hidden] = 1.0
            else:
                param.data.zero_()
    nn.init.xavier_uniform_(net.head.weight)
    nn.init.zeros_(net.head.bias)


SATURATION_STRIDE = 25  # every 25th test window is probed (as _keras_telemanom.py does)
SATURATED = 0.95


def first_layer_saturation(model, test, starts: np.ndarray, l_s: int):
    """The first LSTM's last-step output on every 25th test window: mean |h| and the share of units
    with |h| > 0.95 (how far the unseen inputs push the layer towards tanh's flat ends)."""
    import torch

    probe = starts[::SATURATION_STRIDE]
    net = model.net.eval()
    device = next(net.parameters()).device
    with torch.inference_mode():
        x = test[torch.from_numpy(probe)[:, None] + torch.arange(l_s)[None, :]].to(device)
        h = net.lstms[0](x)[0][:, -1, :].abs().cpu().numpy()
    return probe, h.mean(axis=1), (h > SATURATED).mean(axis=1)


def ours_worker() -> int:
    """Stdin/stdout job loop: one JSON job per line, one JSON answer per line."""
    import telemanom_seed_spread as spread
    import torch

    import turbofan_telemanom.model as tm
    from turbofan_desktop.data.readers import read_dataset
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_telemanom.config import TelemanomConfig

    net_class = tm.TelemanomNet
    plain_init, plain_adam = net_class._keras_init, tm.KerasAdam

    def torch_adam(params, lr):
        return torch.optim.Adam(params, lr=lr, eps=1e-7)

    tm = spread._use_cuda_when_available()
    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(json.dumps({"ready": True, "torch": torch.__version__, "device": device}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            net_class._keras_init = pergate_init if job["stack"] == "ours-pergate" else plain_init
            tm.KerasAdam = torch_adam if job["stack"] in ("ours-torchadam", "ours-pergate") else plain_adam
            task = np.load(job["task"])
            shared = json.loads(str(task["settings"]))
            config = build_config(TelemanomConfig, {**shared["our_settings"], "seed": job["seed"]})
            model = tm.TelemanomModel(config, "value", threads=1)  # one thread per worker process
            began = time.perf_counter()
            fit = model.fit(read_dataset(Path(job["data"]) / "train" / f"{job['channel']}.npy"), None)
            seconds = time.perf_counter() - began
            expected = f"{len(task['train_idx'])} training windows, {len(task['val_idx'])} validation windows"
            if not any(n.startswith(expected) for n in fit.notes):
                raise RuntimeError(f"fit did not train on the task's windows ({expected}): {fit.notes}")
            test = torch.from_numpy(task["test"])
            starts = np.arange(len(task["test"]) - config.l_s, dtype=np.int64)
            predicted = model._predict_first(test, starts, lambda: False)
            sat_starts, h1_abs_mean, h1_saturated = first_layer_saturation(model, test, starts, config.l_s)
            tmp = job["out"] + ".tmp.npz"
            np.savez(
                tmp,
                predicted=predicted.astype(np.float32),  # keeps the returned files small
                train_loss=np.array([h["train_loss"] for h in fit.history]),
                val_loss=np.array([h["val_loss"] for h in fit.history]),
                train_seconds=seconds,
                stack=f"{job['stack']} (torch {torch.__version__}, {device})",
                sat_starts=sat_starts,
                h1_abs_mean=h1_abs_mean,
                h1_saturated=h1_saturated,
            )
            os.replace(tmp, job["out"])
            answer = {"ok": True, "epochs": fit.epochs_run, "seconds": seconds}
        except Exception as exc:  # report and carry on with the next job
            import traceback

            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        finally:
            net_class._keras_init, tm.KerasAdam = plain_init, plain_adam
        print(json.dumps(answer), flush=True)
    return 0


# -- running both stacks -------------------------------------------------------------------------------
class Pool:
    """Worker subprocesses of one stack kind, fed from one ordered queue by one thread each."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], jobs: list[dict], size: int, log: Path
    ):
        self.name, self.command, self.env, self.log = name, command, env, log
        self.queue = collections.deque(jobs)
        self.lock = threading.Lock()
        self.done: list[dict] = []
        self.failures = 0
        self.threads = [threading.Thread(target=self._drive, args=(i,), daemon=True) for i in range(size)]

    def start(self, deadline: float) -> None:
        self.deadline = deadline
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _next(self) -> dict | None:
        with self.lock:
            if time.time() > self.deadline or not self.queue:
                return None
            if self.failures >= 3 and not any(
                a["ok"] for a in self.done
            ):  # the stack is broken: stop feeding it
                self.queue.clear()
                return None
            return self.queue.popleft()

    def _drive(self, index: int) -> None:
        with open(self.log.with_name(f"{self.log.stem}-{self.name}-{index}.log"), "w") as log:
            self._serve(index, log)

    def _serve(self, index: int, log) -> None:
        proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env
        )
        ready = _answer(proc)
        if ready is None:
            print(f"[{self.name}] worker {index} did not start (see {log.name})", flush=True)
            with self.lock:
                self.failures += 1
            return
        if index == 0:
            print(f"[{self.name}] {ready}", flush=True)
        while (job := self._next()) is not None:
            began = time.perf_counter()
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            answer = _answer(proc) or {"ok": False, "error": "worker exited"}
            answer.update(stack=job["stack"], channel=job["channel"], seed=job["seed"])
            answer["wall"] = time.perf_counter() - began
            with self.lock:
                self.done.append(answer)
                if not answer["ok"]:
                    self.failures += 1
            state = (
                f"{answer.get('epochs')} epochs, {answer['wall']:.0f} s" if answer["ok"] else answer["error"]
            )
            if answer.get("fallback_lstm_calls"):
                state += f" ({answer['fallback_lstm_calls']} calls of Keras' non-cuDNN LSTM loop)"
            print(f"[{job['stack']}] {job['channel']} seed {job['seed']}: {state}", flush=True)
            if not answer["ok"]:
                log.write(answer.get("trace", "") + "\n")
                log.flush()
                if proc.poll() is not None:
                    break
        proc.stdin.close()
        proc.wait()


def _answer(proc: subprocess.Popen) -> dict | None:
    """The next JSON line the worker prints (other lines, e.g. a backend's notices, are skipped)."""
    for line in proc.stdout:
        if line.startswith("{"):
            return json.loads(line)
    return None


def ensure_tasks(args, settings, work: Path, pairs: list[tuple[str, int]]) -> None:
    """Write the missing task files (channel, seed), in parallel."""
    needed = [(c, s) for c, s in dict.fromkeys(pairs) if not task_file(work, c, s).is_file()]
    with concurrent.futures.ProcessPoolExecutor(max(1, args.score_jobs)) as pool:
        jobs = [pool.submit(make_task, args.data, c, s, settings, task_file(work, c, s)) for c, s in needed]
        for job in jobs:
            job.result()


def train_all(args, settings, channels, work: Path) -> dict[str, list[dict]]:
    rest = [c for c in channels if c not in ISSUE_CHANNELS]
    first = [c for c in channels if c in ISSUE_CHANNELS]
    ours_seeds = args.ours_seeds if args.ours_seeds is not None else args.seeds

    def jobs_for(stack: str, seeds: list[int], group: list[str]) -> list[dict]:
        return [
            {
                "stack": stack,
                "channel": c,
                "seed": s,
                "task": str(task_file(work, c, s)),
                "out": str(result_file(work, stack, c, s)),
                "data": str(args.data),
            }
            for s in seeds
            for c in group
            if not result_file(work, stack, c, s).is_file()
        ]

    extra = [s for s in ours_seeds if s not in args.seeds]
    base = [s for s in ours_seeds if s in args.seeds]
    ablations = [v for v in args.variants if v != "ours"]
    main_variant = ["ours"] if "ours" in args.variants else []
    # Priority (a deadline cuts from the end): the issue's channels with the main variant, then with
    # the first ablation, the other channels, our extra seeds, then the other ablations.
    tiers = [
        *(jobs_for(v, base, first) for v in main_variant),
        *(jobs_for(v, args.seeds, first) for v in ablations[:1]),
        *(jobs_for(v, base, rest) + jobs_for(v, extra, first + rest) for v in main_variant),
        *(jobs_for(v, args.seeds, first) for v in ablations[1:]),
        *(jobs_for(v, args.seeds, rest) for v in ablations),
    ]
    ours_jobs = [job for tier in tiers for job in tier]
    keras_jobs = (
        jobs_for("keras", args.seeds, first) + jobs_for("keras", args.seeds, rest)
        if args.keras_python
        else []
    )

    ensure_tasks(args, settings, work, [(j["channel"], j["seed"]) for j in keras_jobs + ours_jobs])
    for job in ours_jobs + keras_jobs:
        Path(job["out"]).parent.mkdir(parents=True, exist_ok=True)
    print(f"to train: {len(ours_jobs)} ours-side jobs, {len(keras_jobs)} Keras jobs", flush=True)

    env = dict(os.environ, TURBOFAN_TORCH_THREADS="1", PYTHONUNBUFFERED="1")  # Keras on torch: 1 thread
    log = work / "logs" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pools = []
    if ours_jobs:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        pools.append(Pool("ours", command, env, ours_jobs, min(args.jobs, len(ours_jobs)), log))
    if keras_jobs:
        command = [args.keras_python, str(HERE / "_keras_telemanom.py")]
        pools.append(Pool("keras", command, env, keras_jobs, min(args.keras_jobs, len(keras_jobs)), log))
    deadline = time.time() + (args.train_deadline if args.train_deadline else 1e9)
    for pool in pools:
        pool.start(deadline)
    for pool in pools:
        pool.join()
    left = {pool.name: len(pool.queue) for pool in pools}
    if any(left.values()):
        print(f"not trained (deadline or a broken stack): {left}", flush=True)
    return {pool.name: pool.done for pool in pools}


# -- scoring -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def without_start_fix(active: bool):
    """While active, the plugin's threshold smooths without replacing the first l_s smoothed errors
    (what the authors' errors.py does for C-2 alone, by name). A what-if for ``--start-fix-exempt``:
    the plugin itself applies the replacement on every series."""
    import pandas as pd

    import turbofan_telemanom.threshold as threshold

    plain = threshold.smooth_errors

    def ewma_only(errors, span, l_s):  # noqa: ARG001 - smooth_errors' signature
        errors = np.asarray(errors, dtype=float)
        return pd.Series(errors).ewm(span=max(1, span)).mean().to_numpy(copy=True)

    if active:
        threshold.smooth_errors = ewma_only
    try:
        yield
    finally:
        threshold.smooth_errors = plain


def range_split(task, result, actual: np.ndarray, errors: np.ndarray, l_s: int) -> dict[str, Any]:
    """Test errors and first-layer saturation inside and outside the training range of the target:
    an error is "out of range" when its target value lies outside [min, max] of the training
    series' column 0 (the network then extrapolates); a probed window when its last input does."""
    low, high = float(task["train"][:, 0].min()), float(task["train"][:, 0].max())
    outside = (actual < low) | (actual > high)
    split: dict[str, Any] = {
        "train_range": [low, high],
        "out_of_range_share": float(outside.mean()) if len(outside) else 0.0,
        "mean_error_in_range": float(errors[~outside].mean()) if (~outside).any() else None,
        "mean_error_out_of_range": float(errors[outside].mean()) if outside.any() else None,
    }
    if "h1_saturated" in result.files:
        last_input = task["test"][result["sat_starts"] + l_s - 1, 0]
        probe_out = (last_input < low) | (last_input > high)
        for name, mask in (("in_range", ~probe_out), ("out_of_range", probe_out)):
            split[f"h1_saturated_{name}"] = float(result["h1_saturated"][mask].mean()) if mask.any() else None
            split[f"h1_abs_mean_{name}"] = float(result["h1_abs_mean"][mask].mean()) if mask.any() else None
    return split


def score_one(
    work: str,
    stack: str,
    channel: str,
    seed: int,
    settings: dict,
    ranges: list,
    start_fix_exempt: bool = False,
) -> dict | None:
    """Threshold one stack's test predictions with the plugin's threshold and score them
    (``start_fix_exempt``: smoothed without the start-of-series replacement, see ``without_start_fix``)."""
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_telemanom.config import TelemanomConfig
    from turbofan_telemanom.threshold import ThresholdParams, find_anomalies, smooth_errors

    path = result_file(Path(work), stack, channel, seed)
    if not path.is_file():
        return None
    result = np.load(path)
    task = np.load(task_file(Path(work), channel, seed))
    config = build_config(TelemanomConfig, {**settings, "seed": seed})
    actual = task["test"][config.l_s :, 0].astype(np.float64)
    errors = np.abs(result["predicted"] - actual)
    judged = len(errors) - config.n_predictions
    params = ThresholdParams.from_config(config)
    with without_start_fix(start_fix_exempt):
        found = find_anomalies(errors[:judged], actual[:judged], params)
    predicted = [(s.start + config.l_s, s.end + config.l_s) for s in found.sequences]
    val_loss = result["val_loss"]
    return {
        "stack": stack,
        "channel": channel,
        "seed": seed,
        "label": str(result["stack"]),
        **nasa.score_channel(predicted, ranges),
        "predicted": predicted,
        "epochs": int(len(val_loss)),
        "max_epochs": config.epochs,
        "best_val_epoch": int(np.argmin(val_loss)) + 1,
        "last_val_loss": float(val_loss[-1]),
        "min_val_loss": float(val_loss.min()),
        "train_loss": [float(v) for v in result["train_loss"]],
        "val_loss": [float(v) for v in val_loss],
        "train_seconds": float(result["train_seconds"]),
        "mean_error": float(errors[:judged].mean()),
        "start_fix_exempt": start_fix_exempt,
        **range_split(task, result, actual[:judged], errors[:judged], config.l_s),
        "smoothed": smooth_errors(errors[:judged], params.smoothing_window, params.l_s).astype(np.float32),
    }


def compare(rows: list[dict], channels: list[str], stacks: list[str]) -> dict[str, Any]:
    """Per channel and stack: scores summed over seeds, epochs, losses; ours against Keras."""
    by = {(r["stack"], r["channel"], r["seed"]): r for r in rows}
    table: dict[str, Any] = {}
    for channel in channels:
        entry: dict[str, Any] = {}
        for stack in stacks:
            mine = [r for (s, c, _), r in by.items() if s == stack and c == channel]
            if not mine:
                continue
            entry[stack] = {
                "seeds": sorted(r["seed"] for r in mine),
                **{k: sum(r[k] for r in mine) for k in ("tp", "fp", "fn")},
                "per_seed": {r["seed"]: f"{r['tp']}-{r['fp']}-{r['fn']}" for r in mine},
                "epochs": [r["epochs"] for r in sorted(mine, key=lambda r: r["seed"])],
                "last_val_loss_median": float(np.median([r["last_val_loss"] for r in mine])),
                "mean_error_median": float(np.median([r["mean_error"] for r in mine])),
                "out_of_range_share": mine[0]["out_of_range_share"],
                **{
                    f"{key}_per_seed": [r.get(key) for r in sorted(mine, key=lambda r: r["seed"])]
                    for key in RANGE_KEYS
                },
            }
        keras = {r["seed"]: r for (s, c, _), r in by.items() if s == "keras" and c == channel}
        for stack in stacks:
            if stack == "keras" or stack not in entry or not keras:
                continue
            pairs = [
                (by[(stack, channel, seed)], k) for seed, k in keras.items() if (stack, channel, seed) in by
            ]
            if pairs:
                entry[stack]["corr_with_keras"] = float(
                    np.mean([_corr(a["smoothed"], b["smoothed"]) for a, b in pairs])
                )
                entry[stack]["error_scale_vs_keras"] = float(
                    np.median([a["mean_error"] / b["mean_error"] for a, b in pairs])
                )
        seeds = sorted(keras)
        across = [
            _corr(keras[a]["smoothed"], keras[b]["smoothed"])
            for i, a in enumerate(seeds)
            for b in seeds[i + 1 :]
        ]
        if across and "keras" in entry:
            entry["keras"]["corr_across_seeds"] = float(np.mean(across))
        table[channel] = entry
    return table


RANGE_KEYS = (
    "mean_error_in_range",
    "mean_error_out_of_range",
    "h1_saturated_in_range",
    "h1_saturated_out_of_range",
)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    if n < 3 or np.std(a[:n]) == 0 or np.std(b[:n]) == 0:
        return float("nan")
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def full_length_loss_ratios(rows: list[dict], stack: str) -> dict[str, Any] | None:
    """Last training and validation loss, this stack over Keras, on the runs where both ran every
    epoch (no early stopping on either side), paired by channel and seed: where the two training
    curves end side by side. The training loss is the epoch's mean with dropout on, as Keras reports it."""
    keras = {(r["channel"], r["seed"]): r for r in rows if r["stack"] == "keras"}
    train, val = [], []
    for r in rows:
        k = keras.get((r["channel"], r["seed"]))
        if r["stack"] != stack or k is None or not r.get("train_loss") or not k.get("train_loss"):
            continue
        if r["epochs"] == r["max_epochs"] == k["epochs"] == k["max_epochs"]:
            train.append(r["train_loss"][-1] / k["train_loss"][-1])
            val.append(r["last_val_loss"] / k["last_val_loss"])
    if not train:
        return None
    return {
        "runs": len(train),
        "train_ratio_median": float(np.median(train)),
        "train_higher": int(sum(x > 1 for x in train)),
        "val_ratio_median": float(np.median(val)),
        "val_higher": int(sum(x > 1 for x in val)),
    }


def summarise(rows: list[dict], labels: dict, stacks: list[str], channels: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def complete_seeds(mine: list[dict]) -> list[int]:
        seeds = sorted({r["seed"] for r in mine})
        return [s for s in seeds if sum(r["seed"] == s for r in mine) == len(channels)]

    reference = complete_seeds([r for r in rows if r["stack"] == "keras"])
    for stack in stacks:
        mine = [r for r in rows if r["stack"] == stack]
        if not mine:
            continue
        complete = complete_seeds(mine)
        full = [r for r in mine if r["seed"] in complete]
        msl = [r for r in mine if r["channel"] in MSL_CHECK]
        issue = [r for r in mine if r["channel"] in ISSUE_CHANNELS]
        paired = [r for r in full if r["seed"] in reference]  # the seeds Keras ran too
        out[stack] = {
            "label": mine[0]["label"],
            "models": len(mine),
            "complete_seeds": complete,
            "pooled_complete_seeds": nasa.pooled(full) if full else None,
            "keras_seeds": sorted({r["seed"] for r in paired}),
            "pooled_keras_seeds": nasa.pooled(paired) if paired else None,
            "issue_channels_keras_seeds": nasa.pooled([r for r in paired if r["channel"] in ISSUE_CHANNELS])
            if paired
            else None,
            "msl_check_keras_seeds": nasa.pooled([r for r in paired if r["channel"] in MSL_CHECK])
            if paired
            else None,
            "per_seed": {s: nasa.pooled([r for r in full if r["seed"] == s]) for s in complete},
            "issue_channels": nasa.pooled(issue) if issue else None,
            "issue_channels_per_seed": {
                s: nasa.pooled([r for r in issue if r["seed"] == s])
                for s in sorted({r["seed"] for r in issue})
            },
            "msl_check": nasa.pooled(msl) if msl else None,
            "by_spacecraft": {
                craft: nasa.pooled([r for r in full if labels[r["channel"]]["spacecraft"] == craft])
                for craft in ("SMAP", "MSL")
                if any(labels[r["channel"]]["spacecraft"] == craft for r in full)
            },
            "epochs_median": float(np.median([r["epochs"] for r in mine])),
            "stopped_before_max": sum(r["epochs"] < r["max_epochs"] for r in mine),
            "full_length_loss_vs_keras": full_length_loss_ratios(rows, stack) if stack != "keras" else None,
        }
    return out


def fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_report(table: dict, summary: dict, stacks: list[str], exempt: list[str]) -> None:
    print(
        "scoring: every stack's 1-step test errors go through the plugin's threshold, which replaces the "
        "first l_s smoothed errors by the mean of the first 2 l_s on every channel; the authors' errors.py "
        "skips that replacement for C-2 by name (its first anomaly lies in that stretch) and we follow "
        "no by-name rule. "
        + (
            f"Scored WITHOUT the replacement here (a what-if, not the plugin): {', '.join(exempt)}."
            if exempt
            else "No channel exempted (--start-fix-exempt C-2 shows what the authors' exception is worth)."
        )
    )
    print(
        "\nper channel: TP-FP-FN summed over seeds | epochs per seed | median last val loss | "
        "corr of smoothed test errors with Keras (Keras across seeds) | mean |e| ratio to Keras"
    )
    for channel, entry in table.items():
        for stack in stacks:
            if stack not in entry:
                continue
            e = entry[stack]
            extra = ""
            if "corr_with_keras" in e:
                extra = f"  corr {e['corr_with_keras']:.2f}  scale {e['error_scale_vs_keras']:.2f}"
            if "corr_across_seeds" in e:
                extra = f"  corr across seeds {e['corr_across_seeds']:.2f}"
            print(
                f"{channel:5s} {stack:15s} {e['tp']}-{e['fp']}-{e['fn']:<3d} epochs {e['epochs']}  "
                f"val {e['last_val_loss_median']:.2e}{extra}"
            )
            if e["out_of_range_share"] > 0:
                cells = "  ".join(
                    f"{key} {' '.join('n/a' if v is None else f'{v:.3f}' for v in e[f'{key}_per_seed'])}"
                    for key in RANGE_KEYS
                )
                print(f"      {e['out_of_range_share']:.0%} of test targets outside training range: {cells}")
    print()
    for stack, s in summary.items():
        print(
            f"{stack}: {s['label']}; {s['models']} models; median epochs {s['epochs_median']:.0f}, "
            f"{s['stopped_before_max']} stopped early"
        )
        names = ("pooled_complete_seeds", "pooled_keras_seeds", "issue_channels_keras_seeds")
        for name in (*names, "msl_check_keras_seeds", "issue_channels", "msl_check"):
            block = s[name]
            if block:
                seeds = ""
                if name == "pooled_complete_seeds":
                    seeds = f" seeds {s['complete_seeds']}"
                elif name.endswith("keras_seeds"):
                    seeds = f" seeds {s['keras_seeds']}"
                print(
                    f"    {name:22s}{seeds} TP {block['tp']} FP {block['fp']} FN {block['fn']}  "
                    f"P {fmt(block['precision'])} R {fmt(block['recall'])} F0.5 {fmt(block['f0_5'])}"
                )
        for seed, block in s["per_seed"].items():
            print(
                f"    seed {seed}: TP {block['tp']} FP {block['fp']} FN {block['fn']} F0.5 {fmt(block['f0_5'])}"
            )
        ratios = s.get("full_length_loss_vs_keras")
        if ratios:
            print(
                f"    runs where both ran every epoch ({ratios['runs']}), last loss over Keras': training "
                f"median {ratios['train_ratio_median']:.3f} (higher in {ratios['train_higher']}), validation "
                f"median {ratios['val_ratio_median']:.3f} (higher in {ratios['val_higher']})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="folder with train/, test/, labeled_anomalies.csv")
    parser.add_argument("--channels", nargs="*", default=ISSUE_CHANNELS, help="default: the issue's 8")
    parser.add_argument("--all", action="store_true", help="every channel with files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of both stacks")
    parser.add_argument("--ours-seeds", type=int, nargs="+", help="seeds of ours (default: --seeds)")
    parser.add_argument(
        "--variants", nargs="*", default=["ours"], choices=OURS_VARIANTS, help="none: Keras only"
    )
    parser.add_argument("--keras-python", help="interpreter with Keras 3 and a backend (none: ours only)")
    parser.add_argument("--jobs", type=int, default=1, help="our-side worker processes")
    parser.add_argument("--keras-jobs", type=int, default=1, help="Keras worker processes")
    parser.add_argument("--score-jobs", type=int, default=1, help="processes that threshold and score")
    parser.add_argument("--train-deadline", type=float, help="seconds after which no new training starts")
    parser.add_argument("--no-train", action="store_true", help="only score what is already trained")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=WORK, help="tasks and trained results")
    parser.add_argument("--json", type=Path, help="write the comparison here")
    parser.add_argument(
        "--start-fix-exempt",
        nargs="*",
        default=[],
        metavar="CHANNEL",
        help="score these channels without the start-of-series smoothing replacement (the authors "
        "exempt C-2 by name; a what-if, never the plugin's rule)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return ours_worker()
    if args.data is None:
        parser.error("--data is required")

    settings = {k: str(v) for k, v in parse_settings(args.sets).items()}
    labels = nasa.read_labels(args.data / "labeled_anomalies.csv")
    available = sorted(p.stem for p in (args.data / "test").glob("*.npy") if p.stem in labels)
    channels = available if args.all else list(args.channels)
    unknown = [c for c in channels if c not in available]
    if unknown:
        raise SystemExit(f"no train/test files or labels for: {', '.join(unknown)}")
    channels = [c for c in ISSUE_CHANNELS if c in channels] + [c for c in channels if c not in ISSUE_CHANNELS]
    stacks = (["keras"] if args.keras_python or args.no_train else []) + list(args.variants)
    started = time.perf_counter()
    training = {} if args.no_train else train_all(args, settings, channels, args.work)
    train_wall = time.perf_counter() - started

    ours_seeds = args.ours_seeds if args.ours_seeds is not None else args.seeds
    wanted = [
        (stack, c, s)
        for stack in stacks
        for s in (ours_seeds if stack == "ours" else args.seeds)
        for c in channels
    ]
    trained = [(c, s) for st, c, s in wanted if result_file(args.work, st, c, s).is_file()]
    ensure_tasks(args, settings, args.work, trained)  # results copied from elsewhere come without tasks
    with concurrent.futures.ProcessPoolExecutor(max(1, args.score_jobs)) as pool:
        futures = [
            pool.submit(
                score_one,
                str(args.work),
                st,
                c,
                s,
                settings,
                labels[c]["ranges"],
                c in args.start_fix_exempt,
            )
            for st, c, s in wanted
        ]
        rows = [r for f in futures if (r := f.result()) is not None]
    stacks = [s for s in stacks if any(r["stack"] == s for r in rows)]
    table = compare(rows, channels, stacks)
    summary = summarise(rows, labels, stacks, channels)
    print_report(table, summary, stacks, args.start_fix_exempt)
    if args.json:
        slim = [{k: v for k, v in r.items() if k != "smoothed"} for r in rows]
        args.json.write_text(
            json.dumps(
                {
                    "channels": channels,
                    "settings": settings,
                    "start_fix_exempt": args.start_fix_exempt,
                    "train_wall_seconds": train_wall,
                    "training": training,
                    "summary": summary,
                    "per_channel": table,
                    "runs": slim,
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
