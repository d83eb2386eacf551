"""Speed of the Telemanom plugin next to a plain PyTorch LSTM loop of the same shape, same run.

    python benchmarks/telemanom_speed.py --data ../shared/data/smap_msl [--channel A-1] [--repeats 2]
        [--json out.json]

Both sides train the same network (LSTM 80 -> dropout -> LSTM 80 -> dropout -> dense 10) on the same
windows (l_s 250, batch 64, the newest 20 % held out and scored after the epoch) with the same torch
thread count, alternating one epoch each ``--repeats`` times so machine noise hits both alike. The plain
loop materialises every window up front and does nothing else; the plugin gathers windows per batch
and checks ``should_stop`` between batches. Inference: seconds per 1,000 predicted windows on the
channel's test file, for the bare forward passes and for the plugin's whole ``detect`` (prediction +
dynamic threshold).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from turbofan_desktop.config import load_settings
from turbofan_desktop.data.readers import read_dataset
from turbofan_desktop.plugins.contract import build_config
from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_telemanom.model import configure_threads


class PlainLSTM(nn.Module):
    def __init__(self, n_features: int):
        super().__init__()
        self.lstm1 = nn.LSTM(n_features, 80, batch_first=True)
        self.lstm2 = nn.LSTM(80, 80, batch_first=True)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(80, 10)

    def forward(self, x):
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(self.drop(x))
        return self.out(self.drop(x[:, -1]))


def windows(values: np.ndarray, l_s: int, n_pred: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(values) - l_s - n_pred + 1
    x = np.stack([values[i : i + l_s] for i in range(n)]).astype(np.float32)
    y = np.stack([values[i + l_s : i + l_s + n_pred, 0] for i in range(n)]).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def plain_epoch(model, optimiser, x_train, y_train, x_val, y_val, batch: int) -> float:
    began = time.perf_counter()
    model.train()
    for idx in torch.randperm(len(x_train)).split(batch):
        optimiser.zero_grad()
        loss = nn.functional.mse_loss(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        for first in range(0, len(x_val), 1024):
            nn.functional.mse_loss(model(x_val[first : first + 1024]), y_val[first : first + 1024])
    return time.perf_counter() - began


@torch.no_grad()
def plain_predict(model, x: torch.Tensor) -> float:
    model.eval()
    began = time.perf_counter()
    for first in range(0, len(x), 1024):
        model(x[first : first + 1024])
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--channel", default="A-1")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed on each side")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    threads = configure_threads(load_settings().torch_threads)
    train = read_dataset(args.data / "train" / f"{args.channel}.npy")
    test = read_dataset(args.data / "test" / f"{args.channel}.npy")
    spec = get_plugin_manager().model("telemanom")
    config = build_config(spec.config_class, {"epochs": 1, "l_s": 250, "batch_size": 64})

    columns = ["value", *train.settings]
    x_all, y_all = windows(train.frame[columns].to_numpy(np.float64), 250, 10)
    n_val = int(len(x_all) * 0.2)
    x_tr, y_tr, x_va, y_va = x_all[:-n_val], y_all[:-n_val], x_all[-n_val:], y_all[-n_val:]
    torch.manual_seed(0)
    plain = PlainLSTM(x_all.shape[2])
    optimiser = torch.optim.Adam(plain.parameters(), lr=1e-3)

    ours_epochs, plain_epochs = [], []
    model = None
    for repeat in range(args.repeats):
        model = spec.build(config, "value", threads=threads)
        fit = model.fit(train, None)
        ours_epochs.append(fit.history[0]["seconds"])
        plain_epochs.append(plain_epoch(plain, optimiser, x_tr, y_tr, x_va, y_va, 64))
        print(
            f"repeat {repeat + 1}: plugin {ours_epochs[-1]:.2f} s/epoch, plain {plain_epochs[-1]:.2f} s/epoch"
        )

    x_test, _ = windows(test.frame[columns].to_numpy(np.float64), 250, 1)
    plain_pred = plain_predict(plain, x_test)
    began = time.perf_counter()
    values = torch.from_numpy(model._series(test, healthy=False).values)
    model._predict_first(values, np.arange(len(test.frame) - 250), lambda: False)
    ours_pred = time.perf_counter() - began
    began = time.perf_counter()
    model.detect(test)
    ours_detect = time.perf_counter() - began
    per_k = 1000 / len(x_test)

    result = {
        "channel": args.channel,
        "torch_threads": threads,
        "train_windows": len(x_tr),
        "val_windows": n_val,
        "test_windows": len(x_test),
        "plugin_seconds_per_epoch": statistics.median(ours_epochs),
        "plain_seconds_per_epoch": statistics.median(plain_epochs),
        "epoch_ratio": statistics.median(ours_epochs) / statistics.median(plain_epochs),
        "plugin_predict_seconds_per_1000": ours_pred * per_k,
        "plain_predict_seconds_per_1000": plain_pred * per_k,
        "predict_ratio": ours_pred / plain_pred,
        "plugin_detect_seconds_per_1000": ours_detect * per_k,
        "all_epochs": {"plugin": ours_epochs, "plain": plain_epochs},
    }
    print(
        f"{args.channel}, {threads} torch threads, {len(x_tr)} training windows:\n"
        f"  epoch   plugin {result['plugin_seconds_per_epoch']:.2f} s  plain {result['plain_seconds_per_epoch']:.2f} s"
        f"  ratio {result['epoch_ratio']:.2f}\n"
        f"  predict plugin {result['plugin_predict_seconds_per_1000']:.3f} s/1000  plain "
        f"{result['plain_predict_seconds_per_1000']:.3f} s/1000  ratio {result['predict_ratio']:.2f}\n"
        f"  detect (prediction + threshold) {result['plugin_detect_seconds_per_1000']:.3f} s/1000 windows"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
