"""Nonparametric vs POT/SPOT thresholds on the NASA SMAP/MSL channels, in one run on the same errors.

    python benchmarks/telemanom_pot.py --data ../shared/data/smap_msl [--channels T-9 ...]
        [--risk 1e-3 ...] [--level 0.98] [--init-share 0.3] [--train-missing] [--set key=value ...]
        [--json out.json]

Models come from the cache of ``benchmarks/telemanom_nasa.py`` (same key: channel, settings, seed);
a channel without a cached model is skipped unless ``--train-missing`` trains and caches it the
way that script does. Each channel's test file is run through the model once; the nonparametric
threshold (the model's own ``detect``) and SPOT (``turbofan_telemanom.pot``, calibrated on the first
``init-share`` of each test series, then streaming: "series"; or calibrated on the smoothed errors of
the newest training windows (held out for early stopping when validation_pick = "newest"), then
streaming over the whole test series: "train-tail") judge the *same* smoothed errors. All are scored by
the paper's overlap rule (``telemanom_nasa.score_channel``) and pooled into precision, recall and
F0.5. The first ``--risk`` is the declared setting; further risks are listed for context only
(choosing among them on these labels would be tuning on the test set).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import telemanom_nasa as nasa  # noqa: E402

from turbofan_desktop.config import load_settings
from turbofan_desktop.data.readers import read_dataset  # noqa: E402
from turbofan_desktop.plugins.contract import build_config  # noqa: E402
from turbofan_desktop.plugins.manager import get_plugin_manager  # noqa: E402


def pot_ranges(
    unit, config, *, risk: float, level: float, init_share: float, calibration=None
) -> list[tuple[int, int]]:
    """SPOT's anomalous sequences on the detection's errors, as raw test-row ranges."""
    from turbofan_telemanom.pot import find_anomalies_pot
    from turbofan_telemanom.threshold import ThresholdParams

    params = ThresholdParams.from_config(config)
    # like detect(): the last n_predictions errors are not judged (their windows run past the end)
    judged = unit.errors[: max(0, len(unit.errors) - config.n_predictions)]
    found = find_anomalies_pot(
        judged,
        judged,
        params,
        risk=risk,
        level=level,
        init_share=init_share,
        calibration=calibration,
    )
    return [(s.start + config.l_s, s.end + config.l_s) for s in found.sequences]


def held_out_train_errors(model, train) -> object:
    """Smoothed errors on the newest ``validation_split`` of the training series: the windows the
    fit held out for early stopping when it held out the newest ones (``validation_pick = "newest"``,
    the only behaviour before that setting existed); with random hold-out they are partly in-sample."""
    from turbofan_telemanom.threshold import smooth_errors

    (unit,) = model.detect(train).units.values()
    config = model.config
    smoothed = smooth_errors(unit.errors, config.smoothing_window, config.l_s)
    keep = max(1, int(round(len(smoothed) * config.validation_split)))
    return smoothed[-keep:]


def load_cached(spec, config, channel: str, *, any_cached: bool = False):
    """The model cached for these settings; with ``any_cached`` the newest cached model of the
    channel whatever its settings (it loads with its own stored settings)."""
    folder = nasa.cache_dir(channel, config)
    if not (folder / "fit.json").is_file():
        if not any_cached:
            return None
        found = sorted(nasa.CACHE.glob(f"{channel}-*/fit.json"), key=lambda f: f.stat().st_mtime)
        if not found:
            return None
        folder = found[-1].parent
    return spec.load(folder / "model", config=config, target="value", threads=load_settings().torch_threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--channels", nargs="*")
    parser.add_argument(
        "--risk", type=float, nargs="+", default=[1e-3], help="SPOT risk q (first = declared)"
    )
    parser.add_argument("--level", type=float, default=0.98, help="initial threshold quantile")
    parser.add_argument("--init-share", type=float, default=0.3, help="share of each series to calibrate on")
    parser.add_argument("--train-missing", action="store_true", help="train channels without a cached model")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--any-cached",
        action="store_true",
        help="score the newest cached model of a channel whatever its settings",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    labels = nasa.read_labels(args.labels or args.data / "labeled_anomalies.csv")
    channels = args.channels or [c for c in labels if (args.data / "test" / f"{c}.npy").is_file()]
    spec = get_plugin_manager().model("telemanom")
    config = build_config(spec.config_class, nasa.parse_settings(args.set))
    nasa.CACHE.mkdir(parents=True, exist_ok=True)

    pot_methods = [(q, cal) for q in args.risk for cal in ("series", "train-tail")]
    methods = ["nonparametric", *[f"pot q={q:g} {cal}" for q, cal in pot_methods]]
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    per_channel: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for channel in channels:
        model = load_cached(spec, config, channel, any_cached=args.any_cached)
        if model is None and args.train_missing:
            nasa.run_channel(spec, config, channel, args.data, True)
            model = load_cached(spec, config, channel)
        if model is None:
            print(f"{channel:6s} skipped: no cached model (use --train-missing)", flush=True)
            continue
        test = read_dataset(args.data / "test" / f"{channel}.npy")
        (unit,) = model.detect(test).units.values()
        truth = labels[channel]["ranges"]
        found = {"nonparametric": [(a.start_index, a.end_index) for a in unit.anomalies]}
        train_errors = held_out_train_errors(model, read_dataset(args.data / "train" / f"{channel}.npy"))
        for (q, cal), name in zip(pot_methods, methods[1:], strict=True):
            found[name] = pot_ranges(
                unit,
                model.config,
                risk=q,
                level=args.level,
                init_share=args.init_share,
                calibration=train_errors if cal == "train-tail" else None,
            )
        per_channel[channel] = {"labels": truth, "spacecraft": labels[channel]["spacecraft"]}
        for name, predicted in found.items():
            counts = nasa.score_channel(predicted, truth)
            rows[name].append(counts)
            per_channel[channel][name] = {"predicted": predicted, **counts}
        line = "  ".join(
            f"{name}: TP {per_channel[channel][name]['tp']} FP {per_channel[channel][name]['fp']} "
            f"FN {per_channel[channel][name]['fn']}"
            for name in methods
        )
        print(f"{channel:6s} {line}  labels {truth}", flush=True)

    summary = {name: nasa.pooled(rows[name]) for name in methods}
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for name, block in summary.items():
        print(
            f"{name:22s} channels {block['channels']:2d}  TP {block['tp']} FP {block['fp']} FN {block['fn']}  "
            f"P {fmt(block['precision'])} R {fmt(block['recall'])} F0.5 {fmt(block['f0_5'])}"
        )
    if args.json:
        out = {
            "risk": args.risk,
            "level": args.level,
            "init_share": args.init_share,
            "wall_seconds": time.perf_counter() - started,
            "summary": summary,
            "channels": per_channel,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
