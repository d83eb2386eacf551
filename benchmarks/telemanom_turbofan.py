"""Telemanom on C-MAPSS run-to-failure engines: how early, and how falsely, does it alarm?

    python benchmarks/telemanom_turbofan.py --data ../shared/data/cmapss [--subset FD001]
        [--sensors s_2 s_11 ...] [--set key=value ...] [--seed N] [--json out.json]

The training file's engines run until failure. Units are split by engine with the seed: 70 % train,
10 % validation (early stopping), 20 % evaluation. One model per sensor is trained on the healthy early
life of each training engine (``healthy_fraction``, default the first half) with the plugin's turbofan
scaling rule, then run over the whole life of each evaluation engine. Per sensor it prints the median
first-alarm lead time before failure (and the same for the first alarm in the second half of life),
the share of engines alarmed at all, and the share with a false alarm in the first half of life.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

from turbofan_desktop.cli._jobs import parse_settings
from turbofan_desktop.config import load_settings
from turbofan_desktop.data.readers import read_dataset
from turbofan_desktop.data.split import split_units
from turbofan_desktop.plugins.contract import build_config
from turbofan_desktop.plugins.manager import get_plugin_manager


def fmt(value: float, digits: int = 1) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train_FD00x.txt")
    parser.add_argument("--subset", default="FD001")
    parser.add_argument("--sensors", nargs="*", help="sensors (default: every informative sensor)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0, help="split and model seed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    data = read_dataset(args.data / f"train_{args.subset}.txt")
    split = split_units(data, val_fraction=0.1, test_fraction=0.2, seed=args.seed)
    train, val, held_out = split.apply(data)
    sensors = args.sensors or data.informative_sensors
    spec = get_plugin_manager().model("telemanom")
    config = build_config(spec.config_class, {**parse_settings(args.set), "seed": str(args.seed)})
    print(
        f"{args.subset}: {len(train.units)} training, {len(val.units)} validation, "
        f"{len(held_out.units)} evaluation engines; seed {args.seed}"
    )

    rows = {}
    for sensor in sensors:
        model = spec.build(config, sensor, threads=load_settings().torch_threads)
        began = time.perf_counter()
        fit = model.fit(train, val)
        seconds = time.perf_counter() - began
        metrics = model.evaluate(held_out)
        rows[sensor] = {
            **metrics,
            "train_seconds": seconds,
            "epochs_run": fit.epochs_run,
            "stopped_early": fit.stopped_early,
            "notes": fit.notes,
            "effective_config": dataclasses.asdict(model.config),
        }
        print(
            f"{sensor:5s} lead {fmt(metrics['lead_time_median'])} cycles (2nd-half alarm "
            f"{fmt(metrics['late_lead_time_median'])})  alarmed {fmt(metrics['alarmed_share'], 2)}  "
            f"false alarm in 1st half {fmt(metrics['false_alarm_share'], 2)}  mse {metrics['prediction_mse']:.3f}"
            f"  epochs {fit.epochs_run}{' (early stop)' if fit.stopped_early else ''}  {seconds:.0f} s",
            flush=True,
        )
    if args.json:
        out = {"subset": args.subset, "seed": args.seed, "split": split.to_dict(), "sensors": rows}
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
