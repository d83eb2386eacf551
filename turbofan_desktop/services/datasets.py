"""Datasets as versioned content: what the registry keeps of the data its versions used.

Training keeps the source dataset whole and its train / validation / test splits as references to
it; validation on a data file keeps that file's dataset. All are filed under their data hash (see
:mod:`turbofan_desktop.registry.datasets`), so ``models reproduce`` can train again on exactly the
same values, and ``datasets export`` hands the data to other tools (with a DVC pointer if asked).
Keeping data never fails a training or a validation: a full store or a disk error is a warning.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.split import UnitSplit
from turbofan_desktop.errors import ConfigError, TurbofanError
from turbofan_desktop.registry.datasets import DATASETS_DIR, DatasetStore, StoredDataset
from turbofan_desktop.services.data import load_dataset

if TYPE_CHECKING:
    from turbofan_desktop.registry import VersionRecord
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

# what a version used a dataset for, as ``datasets show`` names it
ROLES = ("source", "train", "validation split", "validated on")


def dataset_store(ws: Workspace) -> DatasetStore:
    """The dataset store beside this workspace's registry."""
    return DatasetStore(Path(ws.registry.home) / DATASETS_DIR)


# -- keeping data ------------------------------------------------------------------------------------
def keep_training_data(ws: Workspace, source: Dataset, split: UnitSplit) -> list[str]:
    """Keep ``source`` whole and its splits as references to it; the warnings (empty when all kept)."""
    store = dataset_store(ws)
    try:
        store.put(source, cap_mb=ws.settings.dataset_store_mb)
        parent = source.data_hash
        for name, units in (("train", split.train), ("val", split.val), ("test", split.test)):
            if units:
                note = f"{name} split (seed {split.seed})"
                store.put_split(source.subset(units, note=note), parent=parent, units=units, note=note)
    except TurbofanError as exc:
        log.warning("training data not kept: %s", exc)
        return [str(exc)]
    return []


def keep_dataset(ws: Workspace, dataset: Dataset) -> list[str]:
    """Keep one whole dataset (a file a version was validated on); the warnings."""
    try:
        dataset_store(ws).put(dataset, cap_mb=ws.settings.dataset_store_mb)
    except TurbofanError as exc:
        log.warning("validation data not kept: %s", exc)
        return [str(exc)]
    return []


def stored_dataset(ws: Workspace, data_hash: str) -> Dataset:
    """The stored dataset ``data_hash`` (NotFoundError when the registry does not keep it)."""
    return dataset_store(ws).load(data_hash)


def is_stored(ws: Workspace, data_hash: str | None) -> bool:
    return bool(data_hash) and dataset_store(ws).has(str(data_hash))


# -- listing -------------------------------------------------------------------------------------------
@dataclass
class DatasetUse:
    """A stored dataset and the versions that used it (version id -> roles)."""

    entry: StoredDataset
    used_by: dict[int, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.entry.to_dict(),
            "used_by": [{"version_id": vid, "roles": roles} for vid, roles in sorted(self.used_by.items())],
        }


def version_data_hashes(record: VersionRecord) -> dict[str, str]:
    """Role -> data hash of every dataset ``record`` names."""
    provenance = record.provenance
    found = {
        "source": provenance.source.data_hash if provenance.source else None,
        "train": (record.lineage or {}).get("data_hash"),
        "validation split": provenance.validation.data_hash if provenance.validation else None,
        "validated on": record.validation_data_hash,
    }
    return {role: str(h) for role, h in found.items() if h}


def _all_versions(ws: Workspace, page: int = 1000) -> list[VersionRecord]:
    records: list[VersionRecord] = []
    while True:
        chunk = ws.registry.list_versions(limit=page, offset=len(records))
        records.extend(chunk)
        if len(chunk) < page:
            return records


def _references(ws: Workspace) -> dict[str, dict[int, list[str]]]:
    uses: dict[str, dict[int, list[str]]] = defaultdict(dict)
    for record in _all_versions(ws):
        for role, data_hash in version_data_hashes(record).items():
            uses[data_hash].setdefault(int(record.id), []).append(role)
    return uses


def list_datasets(ws: Workspace) -> list[DatasetUse]:
    """Every stored dataset with the versions that use it."""
    uses = _references(ws)
    return [DatasetUse(entry, dict(uses.get(entry.data_hash, {}))) for entry in dataset_store(ws).entries()]


def show_dataset(ws: Workspace, data_hash: str) -> dict[str, Any]:
    """One stored dataset: its entry, its lineage as rebuilt from the store, the versions using it."""
    store = dataset_store(ws)
    full = store.resolve(data_hash)
    entry = next(e for e in store.entries() if e.data_hash == full)
    dataset = store.load(full)
    uses = _references(ws).get(full, {})
    return {
        **DatasetUse(entry, dict(uses)).to_dict(),
        "lineage": dataset.lineage.to_dict(),
        "sensors": list(dataset.sensors),
        "settings": list(dataset.settings),
    }


# -- export ------------------------------------------------------------------------------------------
@dataclass
class DatasetExport:
    data_hash: str
    path: Path
    bytes: int
    read_back_hash: str
    dvc_file: Path | None = None

    @property
    def same_hash(self) -> bool:
        return self.read_back_hash == self.data_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_hash": self.data_hash,
            "path": str(self.path),
            "bytes": self.bytes,
            "read_back_hash": self.read_back_hash,
            "same_hash": self.same_hash,
            "dvc_file": str(self.dvc_file) if self.dvc_file else None,
        }


def export_dataset(
    ws: Workspace, data_hash: str, *, output: Path | str | None = None, dvc_repo: Path | str | None = None
) -> DatasetExport:
    """Write stored dataset ``data_hash`` to ``output`` (a Parquet file the app reads back with the same
    data hash), or into the DVC repository ``dvc_repo`` with its ``.dvc`` pointer beside it."""
    from turbofan_desktop.data.dataset_file import write_dataset_file

    store = dataset_store(ws)
    full = store.resolve(data_hash)
    if (output is None) == (dvc_repo is None):
        raise ConfigError("Give either an output file (-o FILE) or a DVC repository (--dvc REPO_DIR).")
    if dvc_repo is not None:
        repo = Path(dvc_repo).expanduser()
        if not (repo / ".dvc").is_dir():
            raise ConfigError(
                f"{repo} is not a DVC repository (it has no .dvc folder; run `dvc init` there)."
            )
        target = repo / (Path(output).name if output is not None else f"turbofan-{full[:12]}.parquet")
    else:
        target = Path(output).expanduser()
        if target.is_dir():
            target = target / f"turbofan-{full[:12]}.parquet"
    if target.suffix.lower() not in (".parquet", ".pq"):
        raise ConfigError(f"{target}: datasets are exported as Parquet; name the file .parquet.")
    if store.file_path(full).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.file_path(full), target)
    else:
        write_dataset_file(store.load(full), target)
    read_back = load_dataset(ws, target).data_hash
    dvc_file = write_dvc_pointer(target, repo) if dvc_repo is not None else None
    return DatasetExport(full, target, target.stat().st_size, read_back, dvc_file)


def write_dvc_pointer(path: Path, repo: Path) -> Path:
    """Track ``path`` as ``dvc add`` does: its content in the repository's cache
    (``<cache>/files/md5/<2 hex>/<30 hex>``, read-only), ``<file>.dvc`` beside it with DVC's
    documented ``outs`` fields (md5, size, hash, path), and a ``.gitignore`` entry. ``dvc status``
    then finds the file unchanged and cached."""
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not a security measure
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    md5 = digest.hexdigest()
    cached = _dvc_cache_dir(repo) / "files" / "md5" / md5[:2] / md5[2:]
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".tmp")
        shutil.copyfile(path, partial)
        partial.chmod(0o444)  # DVC keeps its cache read-only
        partial.replace(cached)
    pointer = path.with_name(path.name + ".dvc")
    pointer.write_text(
        f"outs:\n- md5: {md5}\n  size: {path.stat().st_size}\n  hash: md5\n  path: {path.name}\n",
        encoding="utf-8",
    )
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    if f"/{path.name}" not in lines:
        ignore.write_text("\n".join([*lines, f"/{path.name}"]) + "\n", encoding="utf-8")
    return pointer


def _dvc_cache_dir(repo: Path) -> Path:
    """``.dvc/cache``, or the ``dir`` of the ``[cache]`` section of ``.dvc/config`` when set there."""
    import configparser

    config = configparser.ConfigParser()
    try:
        config.read(repo / ".dvc" / "config", encoding="utf-8")
        configured = config.get("cache", "dir", fallback=None)
    except configparser.Error:
        configured = None
    if configured:
        return (repo / ".dvc" / configured.strip().strip("'\"")).resolve()
    return repo / ".dvc" / "cache"


# -- cleanup -----------------------------------------------------------------------------------------
@dataclass
class DatasetCleanup:
    removed: list[str]
    freed_bytes: int
    kept: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": list(self.removed),
            "freed_bytes": self.freed_bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
        }


def cleanup_datasets(ws: Workspace, *, dry_run: bool = False) -> DatasetCleanup:
    """Delete stored datasets no version uses (a split a version uses keeps its parent)."""
    store = dataset_store(ws)
    entries = {e.data_hash: e for e in store.entries()}
    keep = set(_references(ws)) & set(entries)
    pending = list(keep)
    while pending:  # a kept split keeps the dataset it is cut from
        parent = entries[pending.pop()].parent
        if parent and parent in entries and parent not in keep:
            keep.add(parent)
            pending.append(parent)
    removed = [h for h in entries if h not in keep]
    freed = sum(entries[h].bytes for h in removed)
    if not dry_run:
        for data_hash in removed:
            store.remove(data_hash)
    return DatasetCleanup(removed, freed, len(keep), dry_run)


__all__ = [
    "ROLES",
    "DatasetCleanup",
    "DatasetExport",
    "DatasetUse",
    "cleanup_datasets",
    "dataset_store",
    "export_dataset",
    "is_stored",
    "keep_dataset",
    "keep_training_data",
    "list_datasets",
    "show_dataset",
    "stored_dataset",
    "version_data_hashes",
    "write_dvc_pointer",
]
