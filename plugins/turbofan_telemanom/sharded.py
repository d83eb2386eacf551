"""Data-parallel training and inference for Telemanom's network on the CPU cores (issue 22).

Why: on this network (two LSTMs of 80 over 250 steps) torch's LSTM runs one small matrix product per
time step, and products of 64 x 80 by 80 x 320 are too small to split across cores: a second torch
thread speeds an epoch up by only ~10-30 %. Splitting each batch into one shard per core instead, each
shard a whole forward and backward pass on its own thread with one torch thread, keeps every core busy
for the whole step; the shards' gradients are summed before the optimiser step, so the update is the
batch's update (within float rounding: a product over 32 rows is rounded differently from one over 64).

What stays the same as the plain loop (``TelemanomNet.forward`` under ``loss.backward()``): the
network, the loss (mean squared error over the whole batch), the optimiser, the batches and the
dropout masks. The masks are drawn on the calling thread, in the order and memory layout in which
``nn.Dropout`` draws them in ``TelemanomNet.forward``, so the seed's random stream is unchanged.
Gradients are summed in shard order (never in the order the threads finish): runs are repeatable.

This module imports torch; only ``model.py`` imports it, when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

MIN_SHARD = 8  # windows per shard below which a split costs more than it gains


def shard_count(threads: int, batch: int) -> int:
    """Shards for a batch: one per torch thread the settings allow, none smaller than MIN_SHARD."""
    return max(1, min(threads, batch // MIN_SHARD))


def _one_thread() -> None:
    """Each shard runs on one torch thread: the cores are shared out between shards, not within one."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class ShardedRunner:
    """Runs training steps and forward passes of ``net`` split over ``shards`` worker threads.

    ``gather(starts) -> (x, y)`` builds a shard's windows; it runs on the shard's thread.
    Use as a context manager (re-enterable): the worker threads live inside it, and the calling
    thread's torch thread count (lowered to one while the shards run, so that the threads never
    outnumber the cores) is restored on leaving.
    """

    def __init__(self, net: torch.nn.Module, shards: int):
        self.net = net
        self.shards = max(1, shards)
        self._pool: ThreadPoolExecutor | None = None
        self._threads_before = torch.get_num_threads()
        self._pending_masks: list[torch.Tensor | None] | None = None

    def __enter__(self) -> ShardedRunner:
        self._threads_before = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(self.shards, thread_name_prefix="telemanom-shard")
        _one_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)
        self._pool = None
        self._pending_masks = None
        if torch.get_num_threads() != self._threads_before:
            torch.set_num_threads(self._threads_before)

    def _split(self, starts: torch.Tensor) -> list[slice]:
        n = len(starts)
        parts = shard_count(self.shards, n)
        bounds = [round(k * n / parts) for k in range(parts + 1)]
        return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]

    def train_step(
        self,
        starts: torch.Tensor,
        gather: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        steps: int,
        optimiser: torch.optim.Optimizer,
        next_batch: int | None = None,
    ) -> float:
        """One optimiser step on the batch ``starts``; returns the batch's mean squared error.

        ``next_batch``: the size of the batch of the next call, when known: its dropout masks are then
        drawn while this batch's shards run (drawing them takes ~10 % of a step), still after this
        batch's masks, so the seed's stream is consumed in the same order.
        """
        params = [p for p in self.net.parameters() if p.requires_grad]
        masks, self._pending_masks = self._pending_masks, None
        if masks is None:
            masks = self.net.dropout_masks(len(starts), steps)  # drawn here, in forward's order
        elif masks[-1] is not None and len(masks[-1]) != len(starts):
            raise ValueError(f"masks were drawn for a batch of {len(masks[-1])}, not {len(starts)}")
        parts = self._split(starts)
        n_out = self.net.head.out_features
        denominator = len(starts) * n_out  # nn.MSELoss's mean over the whole batch

        def shard(part: slice) -> tuple[float, Sequence[torch.Tensor]]:
            _one_thread()
            x, y = gather(starts[part])
            predicted = self.net.forward_masked(x, [m[part] for m in masks])
            squared = (predicted - y).pow(2).sum()
            grads = torch.autograd.grad(squared / denominator, params)
            return float(squared.detach()), grads

        futures = [self._pool.submit(shard, p) for p in parts]
        if next_batch:
            self._pending_masks = self.net.dropout_masks(next_batch, steps)
        results = [future.result() for future in futures]
        for index, param in enumerate(params):
            total = results[0][1][index]
            for _, grads in results[1:]:  # fixed shard order: repeatable sums
                total = total + grads[index]
            param.grad = total
        optimiser.step()
        return sum(squared for squared, _ in results) / denominator

    @torch.inference_mode()
    def forward(self, x_parts: Callable[[slice], torch.Tensor], n: int) -> torch.Tensor:
        """The network's outputs (eval mode, no dropout) for ``n`` windows built by ``x_parts``."""
        parts = self._split(torch.empty(n))

        def shard(part: slice) -> torch.Tensor:
            _one_thread()
            with torch.inference_mode():
                return self.net(x_parts(part))

        return torch.cat([f.result() for f in [self._pool.submit(shard, p) for p in parts]])
