"""The sharded (data-parallel) Telemanom path against the plain-torch reference path (issue 22).

Given identical weights and seed, the sharded path must draw the same dropout masks, compute the
same predictions, gradients and updates (within float rounding: products over shards of a batch are
rounded differently from one over the whole batch) and be repeatable run to run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.plugins.contract import build_config
from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_telemanom.model import TelemanomNet
from turbofan_telemanom.sharded import ShardedRunner, shard_count

FEATURES, UNITS, STEPS, N_PRED, BATCH = 3, (8, 6), 12, 3, 21


def _net(seed: int = 0) -> TelemanomNet:
    torch.manual_seed(seed)
    return TelemanomNet(FEATURES, UNITS, 0.3, N_PRED)


def _trained(net: TelemanomNet) -> list[torch.Tensor]:
    """The parameters the optimiser moves (PyTorch's second LSTM bias stays frozen, as in Keras)."""
    return [p for p in net.parameters() if p.requires_grad]


def _windows(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, STEPS, FEATURES, generator=generator), torch.randn(
        BATCH, N_PRED, generator=generator
    )


def test_masks_are_the_ones_dropout_draws_in_forward():
    net = _net().train()
    x, _ = _windows()
    torch.manual_seed(7)
    reference = net(x)
    after_reference = torch.rand(4)
    torch.manual_seed(7)
    masks = net.dropout_masks(BATCH, STEPS)
    after_masks = torch.rand(4)
    assert torch.equal(net.forward_masked(x, masks), reference)  # same ops, same masks: bit for bit
    assert torch.equal(after_masks, after_reference)  # the seed's stream is consumed alike
    assert [tuple(m.shape) for m in masks] == [(BATCH, STEPS, 8), (BATCH, 6)]


def test_no_dropout_draws_nothing():
    net = TelemanomNet(FEATURES, UNITS, 0.0, N_PRED)
    torch.manual_seed(7)
    assert net.dropout_masks(BATCH, STEPS) == [None, None]
    after = torch.rand(2)
    torch.manual_seed(7)
    assert torch.equal(after, torch.rand(2))  # F.dropout draws nothing when p is 0


@pytest.mark.parametrize("shards", [2, 3])
def test_sharded_steps_equal_the_plain_steps(shards):
    x, y = _windows()

    def gather(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[part], y[part]

    plain, sharded = _net().train(), _net().train()
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-2, eps=1e-7)
    sharded_opt = torch.optim.Adam(sharded.parameters(), lr=1e-2, eps=1e-7)
    batches = [torch.arange(BATCH), torch.arange(BATCH - 1, -1, -1), torch.arange(0, BATCH, 2)]
    torch.manual_seed(100)
    expected = []  # (loss, grads, weights after the step) of the plain loop
    for batch in batches:
        plain_opt.zero_grad()
        loss = nn.MSELoss()(plain(x[batch]), y[batch])
        loss.backward()
        plain_opt.step()
        expected.append(
            (
                loss.item(),
                [p.grad.clone() for p in _trained(plain)],
                [p.detach().clone() for p in _trained(plain)],
            )
        )
    threads = torch.get_num_threads()
    torch.manual_seed(100)
    with ShardedRunner(sharded, shards) as runner:
        for index, batch in enumerate(batches):
            following = len(batches[index + 1]) if index + 1 < len(batches) else None
            loss = runner.train_step(batch, gather, STEPS, sharded_opt, next_batch=following)
            plain_loss, plain_grads, plain_weights = expected[index]
            assert loss == pytest.approx(plain_loss, rel=1e-5)
            for mine, theirs in zip(_trained(sharded), plain_grads, strict=True):
                torch.testing.assert_close(mine.grad, theirs, rtol=1e-4, atol=1e-6)
            for mine, theirs in zip(_trained(sharded), plain_weights, strict=True):
                torch.testing.assert_close(mine.detach(), theirs, rtol=1e-4, atol=1e-6)
        sharded.eval(), plain.eval()
        predicted = runner.forward(lambda part: x[part], BATCH)
        with pytest.raises(ValueError, match="drawn for a batch of"):
            runner.train_step(batches[0], gather, STEPS, sharded_opt, next_batch=5)
            runner.train_step(batches[0], gather, STEPS, sharded_opt)
    assert torch.get_num_threads() == threads  # the caller's thread count is given back
    with torch.no_grad():
        torch.testing.assert_close(predicted, plain(x), rtol=1e-5, atol=1e-6)


def test_shards_never_fall_below_the_minimum():
    assert shard_count(2, 64) == 2 and shard_count(4, 20) == 2 and shard_count(2, 9) == 1
    assert shard_count(1, 64) == 1


def _sine(n: int) -> Dataset:
    values = np.sin(np.arange(n) / 6.0) + 0.1 * np.cos(np.arange(n) / 2.3)
    frame = pd.DataFrame({"unit": "s", "step": np.arange(n), "value": values})
    return Dataset(frame=frame, time_col="step", sensors=["value"], settings=[], format="test")


def _fit_and_predict(path: str) -> tuple[list[float], np.ndarray, list[str]]:
    spec = get_plugin_manager().model("telemanom")
    config = build_config(
        spec.config_class,
        {"l_s": 20, "n_predictions": 3, "lstm_units": "8,8", "epochs": 2, "batch_size": 16,
         "window_size": 10, "error_buffer": 5},
    )  # fmt: skip
    model = spec.build(config, "value", threads=2)
    model.training_path = path
    result = model.fit(_sine(200), None)
    predicted = model.detect(_sine(120)).units["s"].predicted
    return [h["train_loss"] for h in result.history], predicted, result.notes


def test_fit_on_two_threads_matches_the_reference_and_repeats():
    ref_losses, ref_predicted, ref_notes = _fit_and_predict("reference")
    losses, predicted, notes = _fit_and_predict("auto")
    assert any("split over 2 threads" in n for n in notes)
    assert not any("split over" in n for n in ref_notes)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4)
    np.testing.assert_allclose(predicted, ref_predicted, rtol=1e-4, atol=1e-5)
    again = _fit_and_predict("auto")
    assert again[0] == losses and np.array_equal(again[1], predicted)  # repeatable, bit for bit
