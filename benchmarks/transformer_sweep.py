"""Compare Transformer settings on the validation units, one ensemble member per job.

    python benchmarks/transformer_sweep.py --data ../shared/data/cmapss --subset FD001 \
        --variant base --variant w30:window=30 --variant ep20:epochs=20 \
        --seeds 0 1000 2000 1 1001 2001 [--jobs 12] [--out results.jsonl]
    python benchmarks/transformer_sweep.py --summary results.jsonl

An experiment for choosing defaults, not the benchmark of record (that is ``rul_cmapss.py``, on the CPU,
with whole ensembles). Each job trains one model of ``variant`` with ``seed``, which holds out its own
validation units (as an ensemble member of ``rul_cmapss.py`` does: member i of seed s uses seed
s + 1000 i), and records:

- ``val_cut_rmse``: the held-out training units cut 5..150 cycles before failure, scored against the
  true, uncapped RUL (``rul_cmapss.truncated_units``). **Choices are made on this alone**;
- ``val_all_rmse``: every validation window against the capped target (what early stopping watches);
- the test RMSE and the test predictions, for information: ``--summary`` also averages the members
  s, s + 1000, s + 2000 into the ensembles ``rul_cmapss.py --seeds`` would train (up to the GPU's and
  thread scheduling's numerical noise).

The summary compares every variant with the first, paired by seed (the same seed holds out the same
units in every variant), as mean difference +- its standard error and the number of seeds it wins.
Where CUDA is available the network and its batches are moved to the GPU by wrapping four of the
model's methods (the plugin has no device setting); one H200 ran about 14 jobs at a time, 25-100 s
each. Rows are appended to ``--out`` as JSON lines, and jobs already there are skipped.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _use_cuda_when_available():
    """Wrap the model so its network, dropout draws and batches live on the GPU (a no-op without CUDA)."""
    import torch

    import turbofan_transformer.model as tm

    if not torch.cuda.is_available():
        return "cpu"
    device = torch.device("cuda")
    tensors = tm.TransformerModel._tensors

    def dropout_on_device(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)

    def network_on_device(n_inputs, n_forecast, cfg, seed):
        with tm._BUILD_LOCK:
            torch.manual_seed(seed)
            generator = torch.Generator(device=device).manual_seed(seed)
            return tm._Network(n_inputs, n_forecast, cfg, generator=generator).to(device)

    def tensors_on_device(win, index):
        return {key: value.to(device, non_blocking=True) for key, value in tensors(win, index).items()}

    def predict_on_device(self, win, batch_size=tm.EVAL_BATCH):
        self.net.eval()
        ruls, fcs = [], []
        with torch.no_grad():
            for start in range(0, len(win), batch_size):
                part = tensors_on_device(win, slice(start, start + batch_size))
                rul, fc = self.net(part["x"], part["pad"], part["base"])
                ruls.append(rul.cpu().numpy() * self.config.rul_cap)
                fcs.append(fc.cpu().numpy())
        return np.concatenate(ruls), np.concatenate(fcs)

    tm._SeededDropout.forward = dropout_on_device
    tm._seeded_network = network_on_device
    tm.TransformerModel._tensors = staticmethod(tensors_on_device)
    tm.TransformerModel._predict_windows = predict_on_device
    tm.TransformerModel._quantiles = property(
        lambda self: torch.tensor([float(q) for q in self.config.quantiles], device=device)
    )
    return "cuda"


def _metrics_of(result) -> tuple[np.ndarray, np.ndarray, dict]:
    from rul_cmapss import rul_arrays

    from turbofan_transformer.model import rul_metrics

    pred, true, lower, upper = rul_arrays(result)
    return pred, true, rul_metrics(pred, true, lower, upper)


def run_job(data: str, subset: str, variant: str, settings: dict[str, str], seed: int) -> dict:
    """Train one member of ``variant`` with ``seed``; its validation and test numbers."""
    os.environ.setdefault("TURBOFAN_TORCH_THREADS", "1")
    from _cmapss import read_cmapss
    from rul_cmapss import truncated_units

    from turbofan_desktop.config import load_settings
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_transformer.config import TransformerConfig
    from turbofan_transformer.model import TransformerModel

    device = _use_cuda_when_available()
    folder = Path(data)
    train = read_cmapss(folder / f"train_{subset}.txt")
    test = read_cmapss(folder / f"test_{subset}.txt", folder / f"RUL_{subset}.txt")
    started = time.perf_counter()
    model = TransformerModel(
        build_config(TransformerConfig, {**settings, "seed": str(seed)}), "*", load_settings().torch_threads
    )
    fit = model.fit(train, None)
    seconds = time.perf_counter() - started
    pred, true, test_metrics = _metrics_of(model.predict_rul(test))
    _, _, cut_metrics = _metrics_of(model.predict_rul(truncated_units(train, model.val_units)))
    every = model.evaluate(train.subset(model.val_units))
    return {
        "subset": subset,
        "variant": variant,
        "settings": settings,
        "seed": seed,
        "device": device,
        "val_cut_rmse": cut_metrics["rul_rmse"],
        "val_cut_coverage80": cut_metrics["rul_coverage80"],
        "val_all_rmse": every["rul_rmse"],
        "test_rmse": test_metrics["rul_rmse"],
        "test_coverage80": test_metrics["rul_coverage80"],
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "train_seconds": seconds,
        "test_pred": pred.tolist(),
        "test_true": true.tolist(),
    }


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name:key=value,key=value``."""
    name, _, rest = text.partition(":")
    settings = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    return name, settings


def summarise(rows: list[dict], reference_name: str = "base") -> None:
    """Every variant against ``reference_name`` (else the first variant), paired by seed; then the
    offline ensembles."""
    for subset in dict.fromkeys(r["subset"] for r in rows):
        by_variant: dict[str, dict[int, dict]] = collections.defaultdict(dict)
        for row in rows:
            if row["subset"] == subset:
                by_variant[row["variant"]][row["seed"]] = row
        if reference_name not in by_variant:
            reference_name = next(iter(by_variant))
        reference = by_variant[reference_name]
        print(f"{subset}: each variant minus {reference_name!r}, paired by seed (choose on val_cut)")
        for name, runs in by_variant.items():
            seeds = [s for s in runs if s in reference]
            if not seeds:
                print(f"  {name:12s} no seed in common with {reference_name!r}")
                continue
            diff = np.array([runs[s]["val_cut_rmse"] - reference[s]["val_cut_rmse"] for s in seeds])
            test_diff = np.array([runs[s]["test_rmse"] - reference[s]["test_rmse"] for s in seeds])
            stderr = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
            print(
                f"  {name:12s} seeds {len(seeds):2d}  val_cut {np.mean([runs[s]['val_cut_rmse'] for s in seeds]):6.2f}"
                f"  diff {diff.mean():+.2f} +- {stderr:.2f} (lower on {int((diff < 0).sum())})"
                f"  | test {np.mean([runs[s]['test_rmse'] for s in seeds]):6.2f} diff {test_diff.mean():+.2f}"
            )
        for name, runs in by_variant.items():
            ensembles = []
            for seed in sorted(s for s in runs if s < 1000):
                members = [seed, seed + 1000, seed + 2000]
                if all(m in runs for m in members):
                    pred = np.mean([runs[m]["test_pred"] for m in members], axis=0)
                    true = np.array(runs[seed]["test_true"])
                    ensembles.append(float(np.sqrt(np.mean((pred - true) ** 2))))
            if ensembles:
                print(
                    f"  ensembles of 3, test rmse {name:12s} {np.round(ensembles, 2).tolist()}"
                    f"  mean {np.mean(ensembles):.2f}"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--subset", action="append", dest="subsets", metavar="FD00x")
    parser.add_argument("--variant", action="append", default=[], dest="variants", metavar="NAME[:k=v,...]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1000, 2000])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("transformer_sweep.jsonl"))
    parser.add_argument("--summary", type=Path, help="only summarise this JSON-lines file")
    parser.add_argument("--reference", default="base", help="the variant the others are compared with")
    args = parser.parse_args(argv)
    if args.summary:
        rows = [json.loads(line) for line in args.summary.read_text().splitlines() if line.strip()]
        summarise(rows, args.reference)
        return 0
    if args.data is None or not args.variants:
        parser.error("--data and at least one --variant are needed (or --summary FILE)")
    variants = [parse_variant(v) for v in args.variants]
    done = set()
    if args.out.exists():
        done = {
            (r["subset"], r["variant"], r["seed"]) for r in map(json.loads, args.out.read_text().splitlines())
        }
    todo = [
        (str(args.data), subset, name, settings, seed)
        for subset in args.subsets or ["FD001"]
        for seed in args.seeds
        for name, settings in variants
        if (subset, name, seed) not in done
    ]
    print(f"{len(todo)} jobs, {args.jobs} at a time; rows go to {args.out}", flush=True)
    spawn = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool,
        args.out.open("a") as out,
    ):
        for future in concurrent.futures.as_completed([pool.submit(run_job, *job) for job in todo]):
            row = future.result()
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(
                f"{row['subset']} {row['variant']:12s} seed {row['seed']:<5d} val_cut {row['val_cut_rmse']:.2f}"
                f" val_all {row['val_all_rmse']:.2f} test {row['test_rmse']:.2f}"
                f" ({row['epochs_run']} epochs, best {row['best_epoch']}, {row['train_seconds']:.0f} s, {row['device']})",
                flush=True,
            )
    summarise(
        [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()], args.reference
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
