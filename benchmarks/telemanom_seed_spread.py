"""How much of the Telemanom score is the seed: several seeds, and seed ensembles, on SMAP/MSL.

    python benchmarks/telemanom_seed_spread.py --data ../shared/data/smap_msl --seeds 0 1 2 3 4 \
        [--jobs 8] [--set key=value ...]

An experiment, not the benchmark of record (that is ``telemanom_nasa.py``, on the CPU): it trains the
plugin's own model class once per channel and seed and keeps each channel's 1-step test predictions
under ``benchmarks/.cache/telemanom_seeds/``. Then it scores every seed alone and the mean prediction of
the first 2, 3, ... seeds (an ensemble of predictors) with the plugin's threshold and the benchmark's
scoring. Where CUDA is available the network and its batches are moved to the GPU by wrapping the
model's two tensor-gathering methods; the plugin itself has no device setting. On this project's
2-core CPU one seed of all 37 channels took 91 minutes on a loaded machine (``telemanom_nasa.py``); on
one H100, 37 channels x 5 seeds took about 5 minutes with 8 to 12 worker processes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import telemanom_nasa as nasa  # noqa: E402

from turbofan_desktop.cli._jobs import parse_settings  # noqa: E402
from turbofan_desktop.config import load_settings

CACHE = Path(__file__).resolve().parent / ".cache" / "telemanom_seeds"


def _use_cuda_when_available():
    """Wrap the model so its network and batches live on the GPU (a no-op without CUDA)."""
    import torch

    import turbofan_telemanom.model as tm

    if not torch.cuda.is_available():
        return tm
    device = torch.device("cuda")
    net_class, gather = tm.TelemanomNet, tm.TelemanomModel._gather

    def on_device_gather(self, values, starts):
        x, y = gather(self, values, starts)
        return x.to(device), y.to(device)

    def on_device_predict_first(self, values, starts, should_stop):
        self.net.eval()
        out = np.empty(len(starts), dtype=np.float64)
        steps = torch.arange(self.config.l_s)
        with torch.no_grad():
            for first in range(0, len(starts), 1024):
                batch = torch.from_numpy(starts[first : first + 1024])
                x = values[batch[:, None] + steps[None, :]].to(device)
                out[first : first + len(batch)] = self.net(x)[:, 0].float().cpu().numpy()
        return out

    tm.TelemanomNet = lambda *args, **kwargs: net_class(*args, **kwargs).to(device)
    tm.TelemanomModel._gather = on_device_gather
    tm.TelemanomModel._predict_first = on_device_predict_first
    return tm


def predictions_file(channel: str, seed: int, settings: dict[str, str]) -> Path:
    key = "-".join(f"{k}={v}" for k, v in sorted(settings.items())) or "defaults"
    return CACHE / key / f"seed{seed}" / f"{channel}.npz"


def predict_channel(channel: str, seed: int, settings: dict[str, str], data: Path) -> str:
    """Train one channel's model with ``seed`` and save its 1-step test predictions."""
    import torch

    from turbofan_desktop.data.readers import read_dataset
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_telemanom.config import TelemanomConfig

    out = predictions_file(channel, seed, settings)
    if out.is_file():
        return channel
    tm = _use_cuda_when_available()
    torch.set_num_threads(1)
    config = build_config(TelemanomConfig, {**settings, "seed": seed})
    model = tm.TelemanomModel(config, "value", load_settings().torch_threads)
    fit = model.fit(read_dataset(data / "train" / f"{channel}.npy"), None)
    series = model._series(read_dataset(data / "test" / f"{channel}.npy"), healthy=False)
    starts = np.arange(len(series.values) - config.l_s, dtype=np.int64)
    predicted = model._predict_first(torch.from_numpy(series.values), starts, lambda: False)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".npz", delete=False) as handle:
        np.savez(handle, predicted=predicted, actual=series.values[config.l_s :, 0], epochs=fit.epochs_run)
    Path(handle.name).replace(out)
    return channel


def score(predicted: dict[str, np.ndarray], actual: dict[str, np.ndarray], labels, settings) -> dict:
    """Pooled TP/FP/FN and rates of 1-step predictions under the plugin's threshold."""
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_telemanom.config import TelemanomConfig
    from turbofan_telemanom.threshold import ThresholdParams, find_anomalies

    config = build_config(TelemanomConfig, settings)
    params = ThresholdParams.from_config(config)
    rows = []
    for channel, values in predicted.items():
        errors = np.abs(values - actual[channel])
        judged = len(errors) - config.n_predictions
        found = find_anomalies(errors[:judged], actual[channel][:judged], params)
        ranges = [(s.start + config.l_s, s.end + config.l_s) for s in found.sequences]
        rows.append(nasa.score_channel(ranges, labels[channel]["ranges"]))
    return nasa.pooled(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    settings = {k: str(v) for k, v in parse_settings(args.sets).items()}
    labels = nasa.read_labels(args.data / "labeled_anomalies.csv")
    channels = sorted(p.stem for p in (args.data / "test").glob("*.npy") if p.stem in labels)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        jobs = [pool.submit(predict_channel, c, s, settings, args.data) for s in args.seeds for c in channels]
        for done, job in enumerate(concurrent.futures.as_completed(jobs), 1):
            job.result()
            print(f"\r{done}/{len(jobs)} channel models", end="", flush=True)
    print()
    runs = {}
    for seed in args.seeds:
        loaded = {c: np.load(predictions_file(c, seed, settings)) for c in channels}
        runs[seed] = {c: d["predicted"] for c, d in loaded.items()}
        actual = {c: d["actual"].astype(np.float64) for c, d in loaded.items()}
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for name, predicted in [
        *[(f"seed {s}", runs[s]) for s in args.seeds],
        *[
            (
                f"mean of seeds {args.seeds[:k]}",
                {c: np.mean([runs[s][c] for s in args.seeds[:k]], 0) for c in channels},
            )
            for k in range(2, len(args.seeds) + 1)
        ],
    ]:
        block = score(predicted, actual, labels, settings)
        print(
            f"{name:28s} TP {block['tp']} FP {block['fp']} FN {block['fn']}  P {fmt(block['precision'])} "
            f"R {fmt(block['recall'])} F0.5 {fmt(block['f0_5'])}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
