"""The plugin's sharded training path against the plain-torch reference path at full size, one seed.

    python benchmarks/telemanom_paths.py --data ../shared/data/smap_msl [--channel A-1] [--rows 900]
        [--test-rows 1250] [--epochs 2] [--threads 2] [--json out.json]

Trains the default network (l_s 250, LSTM 80 x 2, batch 64) on the first ``--rows`` rows of the
channel's training file twice per path, with ``--threads`` torch threads: ``training_path =
"reference"`` (the plain loop) once and the plugin's default (batches split over the threads) twice,
then predicts the first ``--test-rows`` rows of the test file. Prints the largest difference between
the two paths' predictions (float rounding only: same weights at the start, same dropout masks,
same batches), their losses per epoch, whether the sharded path repeats itself bit for bit, and
each run's seconds (fit + detect).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from turbofan_desktop.data.readers import read_dataset
from turbofan_desktop.plugins.contract import build_config
from turbofan_desktop.plugins.manager import get_plugin_manager


def first_rows(data, rows: int):
    return data.with_frame(data.frame.iloc[:rows].reset_index(drop=True), {"step": "rows", "last": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--channel", default="A-1")
    parser.add_argument("--rows", type=int, default=900)
    parser.add_argument("--test-rows", type=int, default=1250)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    train = first_rows(read_dataset(args.data / "train" / f"{args.channel}.npy"), args.rows)
    test = first_rows(read_dataset(args.data / "test" / f"{args.channel}.npy"), args.test_rows)
    spec = get_plugin_manager().model("telemanom")
    runs = []
    for path in ("reference", "auto", "auto"):
        model = spec.build(
            build_config(spec.config_class, {"epochs": args.epochs}), "value", threads=args.threads
        )
        model.training_path = path
        began = time.perf_counter()
        fit = model.fit(train, None)
        predicted = model.detect(test).units[args.channel].predicted
        seconds = time.perf_counter() - began
        runs.append((path, predicted, fit.history, seconds))
        print(f"{path:9s} {seconds:7.1f} s  {fit.notes[1]}", flush=True)

    (_, reference, ref_history, _), (_, sharded, history, _), (_, again, _, _) = runs
    result = {
        "channel": args.channel,
        "windows_predicted": len(reference),
        "max_abs_prediction_difference": float(np.max(np.abs(sharded - reference))),
        "prediction_std": float(np.std(reference)),
        "reference_losses": [(h["train_loss"], h["val_loss"]) for h in ref_history],
        "sharded_losses": [(h["train_loss"], h["val_loss"]) for h in history],
        "sharded_repeats_bit_for_bit": bool(np.array_equal(sharded, again)),
        "seconds": {f"{path}{index}": seconds for index, (path, _, _, seconds) in enumerate(runs)},
    }
    print(
        f"{len(reference)} predictions: largest |sharded - reference| "
        f"{result['max_abs_prediction_difference']:.3g} (their std {result['prediction_std']:.3g}); "
        f"sharded repeats bit for bit: {result['sharded_repeats_bit_for_bit']}"
    )
    for name in ("reference_losses", "sharded_losses"):
        print(
            f"  {name}: "
            + ", ".join(f"train {t:.7f} val {v if v is None else round(v, 7)}" for t, v in result[name])
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
