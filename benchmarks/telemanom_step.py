"""Telemanom's one-thread training step: where its CPU time goes, and variants of it side by side.

    python benchmarks/telemanom_step.py [--steps 12] [--inputs 25] [--variants eager,compile,denormal]
        [--json out.json]

One torch thread (what each worker of ``telemanom_nasa.py`` trains with), the plugin's network
(``TelemanomNet``: LSTM 80, dropout 0.3, LSTM 80, dropout, dense 10), ``KerasAdam``, batches of 64
windows of 250 steps drawn from random data. The variants take their steps interleaved (one step of
each in turn, so machine noise hits all alike), each on its own copy of the same initial weights and
with the same seed before every step:
- ``eager``: the plain loop (``TelemanomNet.forward``, ``loss.backward()``, the optimiser step);
- ``compile``: the network through ``torch.compile`` (inductor; ``fallback_random`` so the dropout
  masks are torch's own, as in eager). Needs a C++ compiler at run time; without one (the frozen
  app) it is reported as unavailable and the others still run;
- ``denormal``: eager with ``torch.set_flush_denormal(True)``.
Printed: the median CPU seconds per step (this process, load-robust where wall time is not), the
largest loss and weight differences against ``eager`` after all steps, and the cost of the step's
parts on their own: the dropout masks, the window gather, and an eval-mode forward of 524 windows
(A-1's validation share).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from turbofan_telemanom.model import KerasAdam, TelemanomNet

L_S, N_PRED, BATCH, ROWS = 250, 10, 64, 2900


def cpu_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median CPU milliseconds of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.process_time()
        fn()
        times.append(time.process_time() - began)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--inputs", type=int, default=25, help="input channels (A-1: 25, MSL: 55)")
    parser.add_argument("--variants", default="eager,compile,denormal")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    torch.manual_seed(0)
    base = TelemanomNet(args.inputs, (80, 80), 0.3, N_PRED)
    values = torch.randn(ROWS, args.inputs)
    steps = torch.arange(L_S)
    loss_fn = torch.nn.MSELoss()

    def gather(starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = values[starts[:, None] + steps[None, :]]
        y = values[starts[:, None] + L_S + torch.arange(N_PRED)[None, :], 0]
        return x, y

    variants: dict[str, tuple[TelemanomNet, Any, KerasAdam]] = {}
    notes: dict[str, str] = {}
    for name in args.variants.split(","):
        net = copy.deepcopy(base)
        model: Any = net
        if name == "compile":
            try:
                import torch._inductor.config as inductor_config

                inductor_config.fallback_random = True  # torch's dropout masks, as in eager
                model = torch.compile(net)
                began = time.perf_counter()
                probe = copy.deepcopy(net)
                torch.compile(probe)(torch.zeros(2, L_S, args.inputs)).sum().backward()
                notes[name] = f"first compile {time.perf_counter() - began:.1f} s wall"
            except Exception as exc:  # noqa: BLE001 - no compiler (the frozen app): report, go on
                print(f"compile: unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
                continue
        variants[name] = (net, model, KerasAdam(net.parameters()))

    generator = torch.Generator().manual_seed(1)
    batches = [
        torch.randint(0, ROWS - L_S - N_PRED, (BATCH,), generator=generator) for _ in range(args.steps + 1)
    ]
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    losses: dict[str, list[float]] = {name: [] for name in variants}
    for index, starts in enumerate(batches):
        for name, (_, model, optimiser) in variants.items():
            torch.set_flush_denormal(name == "denormal")
            torch.manual_seed(index)
            began = time.process_time()
            x, y = gather(starts)
            optimiser.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimiser.step()
            losses[name].append(loss.item())
            if index:  # the first step of each is a warm-up (and compiles)
                cpu[name].append(time.process_time() - began)
            torch.set_flush_denormal(False)

    out: dict[str, Any] = {"steps": args.steps, "inputs": args.inputs, "variants": {}}
    for name, (net, _, _) in variants.items():
        row: dict[str, Any] = {"cpu_ms_per_step": 1000 * statistics.median(cpu[name])}
        if name != "eager" and "eager" in variants:
            row["max_loss_diff"] = max(abs(a - b) for a, b in zip(losses["eager"], losses[name], strict=True))
            row["max_weight_diff"] = max(
                (p - q).abs().max().item()
                for p, q in zip(variants["eager"][0].parameters(), net.parameters(), strict=True)
            )
        out["variants"][name] = row
        extra = "".join(f", {k} {v:.3g}" for k, v in row.items() if k != "cpu_ms_per_step")
        print(
            f"{name:9s} {row['cpu_ms_per_step']:.1f} ms CPU per step{extra}  {notes.get(name, '')}".rstrip()
        )

    net = variants.get("eager", next(iter(variants.values())))[0]
    parts = {
        "dropout masks": lambda: net.dropout_masks(BATCH, L_S),
        "window gather": lambda: gather(batches[0]),
    }
    val_x = values[torch.arange(524)[:, None] + steps[None, :]]

    def validation_forward() -> None:
        with torch.inference_mode():
            net.eval()
            net(val_x)
            net.train()

    out["parts_cpu_ms"] = {name: cpu_ms(fn, args.steps) for name, fn in parts.items()}
    out["parts_cpu_ms"]["eval forward, 524 windows"] = cpu_ms(validation_forward, 3)
    for name, ms in out["parts_cpu_ms"].items():
        print(f"  {name}: {ms:.1f} ms CPU")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
