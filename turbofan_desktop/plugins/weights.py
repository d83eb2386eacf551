"""The weights' hash of a model: what ``models reproduce`` compares to tell identical training.

A model plugin may offer ``weight_arrays() -> Mapping[str, numpy.ndarray]``: its learned tensors by
name (e.g. a torch state dict as numpy arrays). The hash covers each array's name, dtype, shape and
bytes in name order, so it does not depend on how the artifact files were written (torch's zip
container, file timestamps) but changes with any single weight. A model without the method has no
weights hash; reproduce then compares its metrics only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np


def weight_arrays(model: Any) -> dict[str, np.ndarray] | None:
    """The model's named weight arrays, or None when its plugin does not offer them."""
    get = getattr(model, "weight_arrays", None)
    if not callable(get):
        return None
    return {str(name): np.asarray(array) for name, array in dict(get()).items()}


def weights_hash(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(b"turbofan-desktop/weights-v1\0")
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def weight_differences(
    before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Per differing array: its name, how many values differ and the largest absolute difference
    (or what is missing / reshaped)."""
    rows: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        if name not in after or name not in before:
            rows.append(
                {"name": name, "problem": "only in the " + ("original" if name in before else "rebuilt")}
            )
            continue
        a, b = np.asarray(before[name]), np.asarray(after[name])
        if a.shape != b.shape:
            rows.append({"name": name, "problem": f"shape {a.shape} became {b.shape}"})
            continue
        if a.dtype == b.dtype and a.tobytes() == b.tobytes():
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        differs = ~((a64 == b64) | (np.isnan(a64) & np.isnan(b64)))
        rows.append(
            {
                "name": name,
                "values": int(a.size),
                "differing": int(differs.sum()),
                "max_abs_difference": float(np.nanmax(np.abs(a64 - b64))) if differs.any() else 0.0,
            }
        )
    return rows


__all__ = ["weight_arrays", "weight_differences", "weights_hash"]
