"""Unit-wise, seeded train/validation/test splits: no row of a unit ever lands in two splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from turbofan_desktop.data.lineage import jsonable
from turbofan_desktop.errors import ConfigError, InsufficientDataError

if TYPE_CHECKING:  # the registry reads recorded splits without loading pandas
    from turbofan_desktop.data.dataset import Dataset


@dataclass(frozen=True)
class UnitSplit:
    """Which units train, validate and test a model; recorded with the model for reproducibility."""

    train: tuple[Any, ...]
    val: tuple[Any, ...]
    test: tuple[Any, ...]
    seed: int
    val_fraction: float
    test_fraction: float

    def apply(self, ds: Dataset) -> tuple[Dataset, Dataset, Dataset]:
        """(train, val, test) datasets; each records the split in its preprocessing steps."""
        return tuple(  # type: ignore[return-value]
            ds.subset(units, note=f"{name} split (seed {self.seed})")
            for name, units in (("train", self.train), ("val", self.val), ("test", self.test))
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [jsonable(u) for u in self.train],
            "val": [jsonable(u) for u in self.val],
            "test": [jsonable(u) for u in self.test],
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitSplit:
        return cls(
            train=tuple(data["train"]),
            val=tuple(data["val"]),
            test=tuple(data["test"]),
            seed=int(data["seed"]),
            val_fraction=float(data["val_fraction"]),
            test_fraction=float(data["test_fraction"]),
        )


def _share(n: int, fraction: float, room: int) -> int:
    """Units for a split: the rounded fraction, at least one when asked for and affordable."""
    if fraction <= 0 or room <= 0:
        return 0
    return min(max(1, int(round(n * fraction))), room)


def split_units(
    ds: Dataset | Sequence[Any], *, val_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0
) -> UnitSplit:
    """Shuffle the units with ``seed`` and cut them into train / val / test.

    Training always keeps at least one unit; with 1 unit everything trains, with 2 units and a
    validation fraction one unit validates, with 3 units and both fractions each split gets one.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value}.")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError("val_fraction + test_fraction must leave units for training (sum below 1).")
    from turbofan_desktop.data.dataset import Dataset

    units = list(ds.units) if isinstance(ds, Dataset) else list(ds)
    if not units:
        raise InsufficientDataError("There are no units to split.")
    order = np.random.default_rng(seed).permutation(len(units))
    shuffled = [units[i] for i in order]
    n = len(units)
    n_test = _share(n, test_fraction, n - 1)
    n_val = _share(n, val_fraction, n - 1 - n_test)
    test = shuffled[:n_test]
    val = shuffled[n_test : n_test + n_val]
    train = shuffled[n_test + n_val :]
    position = {u: i for i, u in enumerate(units)}
    keep_order = lambda group: tuple(sorted(group, key=position.__getitem__))  # noqa: E731
    return UnitSplit(
        train=keep_order(train),
        val=keep_order(val),
        test=keep_order(test),
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )


def carve_test_units(split: UnitSplit, *, share: float = 0.5) -> UnitSplit:
    """``split`` with ``share`` of its validation units moved to its test group, chosen with its seed.

    The training units stay exactly as they were; the moved units are never fitted on and never seen by
    early stopping or the plugin's own interval calibration, so a later calibration on them is honest.
    With fewer than two validation units nothing moves (early stopping keeps at least one unit).
    """
    if split.test:
        raise ConfigError("This split already keeps test units; there is nothing to carve.")
    if not 0.0 < share < 1.0:
        raise ConfigError(f"The share of validation units to keep apart must be in (0, 1), got {share}.")
    n_test = int(len(split.val) * share)
    if len(split.val) < 2 or n_test < 1:
        return split
    order = np.random.default_rng(split.seed).permutation(len(split.val))
    moved = {split.val[i] for i in order[:n_test]}
    return replace(
        split,
        val=tuple(u for u in split.val if u not in moved),
        test=tuple(u for u in split.val if u in moved),
        val_fraction=split.val_fraction * (1.0 - share),
        test_fraction=split.val_fraction * share,
    )
