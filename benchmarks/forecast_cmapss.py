"""Forecast benchmark of the Transformer plugin: MASE against persistence and interval coverage.

    python benchmarks/forecast_cmapss.py --data /work/shared/data/cmapss --subset FD001 [--seeds N] \
        [--holdout 0.2] [--set key=value ...] [--json out.json]

A share of the training units (chosen by unit with the seed) is held out entirely; the model trains on
the rest (which it splits again for early stopping and calibration). On the held-out units, forecast
origins every ``eval_stride`` cycles with a full horizon ahead are scored: MASE = mean absolute error of
the median over steps 1..H / that of the persistence forecast (last observed value) at the same origins,
per informative sensor, plus the share of true values inside the 80 % interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cmapss import read_cmapss  # noqa: E402
from rul_cmapss import peak_rss_mb, print_epoch  # noqa: E402

from turbofan_desktop.cli._jobs import parse_settings  # noqa: E402
from turbofan_desktop.config import load_settings
from turbofan_desktop.plugins.contract import build_config  # noqa: E402
from turbofan_transformer import register_models  # noqa: E402


def run_seed(spec, settings: dict, seed: int, data, holdout: float) -> dict:
    rng = np.random.default_rng(10_000 + seed)
    units = data.units
    held = sorted(rng.choice(len(units), size=max(1, int(round(holdout * len(units)))), replace=False))
    held_units = [units[i] for i in held]
    train = data.subset([u for u in units if u not in set(held_units)], note="benchmark training units")
    test = data.subset(held_units, note="benchmark held-out units")
    config = build_config(spec.config_class, {**settings, "seed": seed})
    model = spec.build(config, "*", threads=load_settings().torch_threads)
    started = time.perf_counter()
    model.fit(train, None, progress=print_epoch)
    train_seconds = time.perf_counter() - started
    errors = model.forecast_errors(test)
    per_sensor = {}
    for name, e in errors.items():
        per_sensor[name] = {
            "mase": float(e["model_abs"].mean() / e["persistence_abs"].mean()),
            "mase_at_h": float(e["model_abs"][:, -1].mean() / e["persistence_abs"][:, -1].mean()),
            "coverage80": float(e["covered"].mean()),
        }
    origins = next(iter(errors.values()))["model_abs"].shape[0] if errors else 0
    return {
        "seed": seed,
        "horizon": config.horizon,
        "held_out_units": len(held_units),
        "origins": origins,
        "train_seconds": train_seconds,
        "sensors": per_sensor,
        "mase_mean": float(np.mean([s["mase"] for s in per_sensor.values()])),
        "mase_max": float(np.max([s["mase"] for s in per_sensor.values()])),
        "coverage80_mean": float(np.mean([s["coverage80"] for s in per_sensor.values()])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--subset", default="FD001")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    spec = register_models()[0]
    settings = parse_settings(args.sets)
    data = read_cmapss(args.data / f"train_{args.subset}.txt")
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        row = run_seed(spec, settings, seed, data, args.holdout)
        runs.append(row)
        print(
            f"seed {seed}: {row['held_out_units']} held-out units, {row['origins']} origins, horizon {row['horizon']}; "
            f"train {row['train_seconds']:.0f}s"
        )
        print("  sensor   MASE(1..H)  MASE(at H)  coverage80")
        for name, s in row["sensors"].items():
            print(f"  {name:<8} {s['mase']:10.3f}  {s['mase_at_h']:10.3f}  {s['coverage80']:10.3f}")
        print(
            f"  mean MASE {row['mase_mean']:.3f}, worst {row['mase_max']:.3f}, mean coverage {row['coverage80_mean']:.3f}"
        )
    summary = {"subset": args.subset, "settings": settings, "runs": runs, "peak_rss_mb": peak_rss_mb()}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
