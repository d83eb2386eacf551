"""RUL benchmark of the Transformer plugin on the official C-MAPSS test sets.

    python benchmarks/rul_cmapss.py --data /work/shared/data/cmapss --subset FD001 --seeds 5 \
        [--set key=value ...] [--json out.json]

Trains on train_FD00x.txt (validation = held-out training units, chosen by unit with the seed), then
scores the last window of every unit of test_FD00x.txt against RUL_FD00x.txt. The true RUL is the
file's value, NOT capped at rul_cap, while the model learns min(remaining cycles, rul_cap).
Prints per seed and mean +- std: RMSE, NASA score S = sum(exp(-d/13)-1 if d<0 else exp(d/10)-1) with
d = predicted - true, 80 % interval coverage, training seconds, inference seconds for all test units
and peak RSS of the process.

Model choices are judged on the validation units only: besides every window against the capped target,
``val_cut_rmse`` scores copies of the held-out training units cut 5..150 cycles before failure (at
least 31 cycles kept) against the true, uncapped RUL, which mimics the test files without reading them.
With the default ensemble each member is scored on its own held-out units and the members' mean is
printed (no unit is held out from the whole ensemble). ``--seeds N`` trains N ensembles; seed s uses the
member seeds s, s + 1000, s + 2000, so no two ensembles share a member.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cmapss import read_cmapss  # noqa: E402

from turbofan_desktop.cli._jobs import parse_settings  # noqa: E402
from turbofan_desktop.config import load_settings
from turbofan_desktop.plugins.contract import build_config  # noqa: E402
from turbofan_transformer import register_models  # noqa: E402
from turbofan_transformer.model import rul_metrics  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_epoch(event) -> None:
    """One short line per epoch, so long runs show they are alive."""
    if event.epoch is not None:
        print(
            f"  epoch {event.epoch}: train {event.train_loss:.4f} val {event.val_loss} {event.message}",
            flush=True,
        )


def truncated_units(data, units: list, *, min_rows: int = 31, max_rul: int = 150, step: int = 5):
    """Test-like copies of run-to-failure ``units``: each cut ``r`` cycles before failure (r = step..max_rul,
    at least ``min_rows`` rows kept), paired with the true, uncapped RUL r, like a test file and its RUL file.

    Scoring the last window of each cut judges the model where the test set does (mid and late life),
    without touching the test RUL file; every window of a held-out unit would mostly score easy early,
    capped windows instead.
    """
    frames, truth = [], {}
    for unit, rows in data.subset(units).iter_units():
        for r in range(step, max_rul + 1, step):
            keep = len(rows) - r
            if keep < min_rows:
                continue
            cut = rows.iloc[:keep].copy()
            new_id = int(unit) * 1000 + r
            cut["unit"] = new_id
            frames.append(cut)
            truth[new_id] = float(r)
    frame = pd.concat(frames, ignore_index=True)
    rul = pd.Series(truth, name="rul")
    return data.with_frame(frame, {"step": "truncate validation units (benchmark)"}, rul=rul)


def rul_arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predicted, true, lower and upper RUL of every unit of a ``predict_rul`` result."""
    units = result.units
    return (
        np.array([u.rul for u in units]),
        np.array([u.true_rul for u in units], dtype=float),
        np.array([u.lower for u in units]),
        np.array([u.upper for u in units]),
    )


def validation_metrics(models: list, train) -> tuple[dict, dict]:
    """Each model scored on its own held-out units (an ensemble's members hold out different units, so
    the ensemble itself has none): every window against the capped target, and the cut copies
    (:func:`truncated_units`) against the uncapped RUL; the members' mean of each metric."""
    every, cut = [], []
    for model in models:
        if not model.val_units:
            continue
        every.append(model.evaluate(train.subset(model.val_units)))
        cut.append(rul_metrics(*rul_arrays(model.predict_rul(truncated_units(train, model.val_units)))))

    def mean(rows: list[dict]) -> dict:
        return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]} if rows else {}

    return mean(every), mean(cut)


def run_seed(spec, settings: dict, seed: int, train, test, save: Path | None = None) -> dict:
    config = build_config(spec.config_class, {**settings, "seed": seed})
    model = spec.build(config, "*", threads=load_settings().torch_threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    fit = model.fit(train, None, progress=print_epoch)
    train_seconds = time.perf_counter() - started
    train_cpu_seconds = time.process_time() - cpu_started
    if save is not None:
        model.save(save / f"seed{seed}")
    started = time.perf_counter()
    result = model.predict_rul(test)
    inference_seconds = time.perf_counter() - started
    pred, true, lower, upper = rul_arrays(result)
    metrics = rul_metrics(pred, true, lower, upper)
    capped = np.minimum(true, config.rul_cap)
    val_metrics, val_cut = validation_metrics(getattr(model, "members", [model]), train)
    return {
        "seed": seed,
        "rmse": metrics["rul_rmse"],
        "score": metrics["rul_score"],
        "coverage80": metrics["rul_coverage80"],
        "rmse_vs_capped_truth": float(np.sqrt(np.mean((pred - capped) ** 2))),
        "coverage80_vs_capped_truth": float(((capped >= lower) & (capped <= upper)).mean()),
        "mean_interval_width": float(np.mean(upper - lower)),
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "inference_seconds": inference_seconds,
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "val_rul_rmse_capped": val_metrics.get("rul_rmse"),
        "val_rul_coverage80": val_metrics.get("rul_coverage80"),
        "val_cut_rmse": val_cut.get("rul_rmse"),
        "val_cut_score": val_cut.get("rul_score"),
        "val_cut_coverage80": val_cut.get("rul_coverage80"),
        "test_units": len(result.units),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--subset", default="FD001")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save", type=Path, help="save each seed's model under DIR/seed<N>")
    args = parser.parse_args(argv)
    spec = register_models()[0]
    settings = parse_settings(args.sets)
    sub = args.subset
    train = read_cmapss(args.data / f"train_{sub}.txt")
    test = read_cmapss(args.data / f"test_{sub}.txt", args.data / f"RUL_{sub}.txt")
    print(
        f"{sub}: {len(train.units)} training units, {len(test.units)} test units; settings {settings or 'defaults'}"
    )
    print(
        "true RUL of the test units is the RUL file's value, uncapped (the model is trained on min(RUL, cap))"
    )
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        row = run_seed(spec, settings, seed, train, test, args.save)
        runs.append(row)
        print(
            f"seed {seed}: rmse {row['rmse']:.2f}  score {row['score']:.0f}  coverage80 {row['coverage80']:.2f}  "
            f"(vs capped truth: rmse {row['rmse_vs_capped_truth']:.2f}, coverage {row['coverage80_vs_capped_truth']:.2f})  "
            f"train {row['train_seconds']:.0f}s wall / {row['train_cpu_seconds']:.0f}s CPU ({row['epochs_run']} epochs, best {row['best_epoch']})  "
            f"inference {row['inference_seconds']:.3f}s  val rmse(capped, all windows) {row['val_rul_rmse_capped']}  "
            f"val cut units (uncapped, RUL 5-150): rmse {row['val_cut_rmse']} coverage80 {row['val_cut_coverage80']}",
            flush=True,
        )
    summary = {"subset": sub, "settings": settings, "true_rul": "uncapped", "runs": runs}
    keys = ("rmse", "score", "coverage80", "coverage80_vs_capped_truth", "train_seconds", "train_cpu_seconds")
    for key in (*keys, "inference_seconds", "rmse_vs_capped_truth", "val_cut_rmse", "val_cut_coverage80"):
        values = np.array([np.nan if r[key] is None else r[key] for r in runs], dtype=float)
        summary[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        }
    summary["peak_rss_mb"] = peak_rss_mb()
    print(
        f"{sub} over {len(runs)} seed(s): rmse {summary['rmse']['mean']:.2f} +- {summary['rmse']['std']:.2f}  "
        f"score {summary['score']['mean']:.0f} +- {summary['score']['std']:.0f}  "
        f"coverage80 {summary['coverage80']['mean']:.2f}  train {summary['train_seconds']['mean']:.0f}s  "
        f"inference {summary['inference_seconds']['mean']:.3f}s  peak RSS {summary['peak_rss_mb']:.0f} MB"
        f"  val cut rmse {summary['val_cut_rmse']['mean']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
