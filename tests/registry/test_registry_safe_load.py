"""An artifact never executes code: a weights file crafted to run code on unpickling is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


class _CreatesMarker:
    """Unpickling this object calls ``open(marker, "w")``, i.e. creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(path: Path, marker: Path) -> None:
    # saved with torch's own format, so it looks exactly like a plugin's weights.pt
    torch.save({"encoder.weight": _CreatesMarker(marker)}, path)


def test_the_payload_is_live_when_unpickled_unsafely(tmp_path):
    """Control: the crafted file really runs code under a plain unpickler."""
    weights, marker = tmp_path / "weights.pt", tmp_path / "control-marker"
    _payload(weights, marker)
    torch.load(weights, weights_only=False)
    assert marker.exists()


def test_crafted_weights_are_refused_and_never_run(registry, make_version, tmp_path):
    marker = tmp_path / "payload-ran"
    crafted = tmp_path / "crafted.pt"
    _payload(crafted, marker)
    rec = make_version(
        write_artifact=lambda folder: (folder / "weights.pt").write_bytes(crafted.read_bytes())
    )

    folder = registry.artifact_dir(rec.id)  # the registry hashes bytes, it never unpickles them
    assert not marker.exists()
    # the plugins' loading path (DESIGN.md section 5): weights_only=True after the sha256 check
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(folder / "weights.pt", weights_only=True, map_location="cpu")
    assert not marker.exists()


def test_plain_state_dict_loads_with_weights_only(registry, make_version):
    state = {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    rec = make_version(write_artifact=lambda folder: torch.save(state, folder / "weights.pt"))
    loaded = torch.load(registry.artifact_dir(rec.id) / "weights.pt", weights_only=True, map_location="cpu")
    assert torch.equal(loaded["layer.weight"], state["layer.weight"])
