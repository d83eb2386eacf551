"""The registry's dataset store: every dataset a version trained or validated on, by its data hash.

Content-addressed files in ``<registry home>/datasets/``, so the same data is kept once however many
versions use it:

- ``<hash>.parquet``: a whole dataset (:mod:`turbofan_desktop.data.dataset_file`), e.g. a training
  source before its split, or a file a version was validated on;
- ``<hash>.json``: a split of a stored dataset (parent hash + its units + the split's note). A train
  or validation split is rebuilt from its parent instead of being stored a second time.

Every load checks the rebuilt data against the hash it is filed under. Writes go through a temporary
file and a rename, so a crash never leaves a half-written entry under a hash.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.dataset_file import read_dataset_file, read_footer, write_dataset_file
from turbofan_desktop.errors import ConfigError, NotFoundError, RegistryError

DATASETS_DIR = "datasets"
HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MB = 1024 * 1024


@dataclass(frozen=True)
class StoredDataset:
    """One entry of the store: ``kind`` is ``file`` (a whole dataset) or ``split`` (units of a parent)."""

    data_hash: str
    kind: str
    path: Path
    bytes: int
    created: str
    rows: int | None
    units: int | None
    source: str | None
    parent: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_hash": self.data_hash,
            "kind": self.kind,
            "path": str(self.path),
            "bytes": self.bytes,
            "created": self.created,
            "rows": self.rows,
            "units": self.units,
            "source": self.source,
            "parent": self.parent,
            "note": self.note,
        }


class DatasetStore:
    """The ``datasets/`` folder of one registry."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- names ------------------------------------------------------------------------------------
    def file_path(self, data_hash: str) -> Path:
        return self.root / f"{data_hash}.parquet"

    def split_path(self, data_hash: str) -> Path:
        return self.root / f"{data_hash}.json"

    def has(self, data_hash: str) -> bool:
        return self.file_path(data_hash).is_file() or self.split_path(data_hash).is_file()

    def resolve(self, prefix: str) -> str:
        """The full hash of the one stored dataset whose hash starts with ``prefix`` (at least 6
        characters, as ``git`` takes abbreviated commits)."""
        prefix = prefix.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{6,64}", prefix):
            raise ConfigError(
                f"'{prefix}' is not a data hash; expected 6 to 64 hexadecimal characters "
                "(see `turbofan-desktop datasets list`)."
            )
        matches = sorted({e.data_hash for e in self.entries() if e.data_hash.startswith(prefix)})
        if not matches:
            raise NotFoundError(f"The registry stores no dataset with data hash {prefix}.")
        if len(matches) > 1:
            raise ConfigError(f"Data hash {prefix} is ambiguous: {', '.join(m[:12] for m in matches)}.")
        return matches[0]

    # -- writing ----------------------------------------------------------------------------------
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries())

    def put(self, ds: Dataset, *, cap_mb: float) -> bool:
        """Store ``ds`` whole; False when it is already there. Past ``cap_mb`` (0 = keep no data) the
        store refuses with a RegistryError naming the setting."""
        data_hash = ds.data_hash
        if self.has(data_hash):
            return False
        if cap_mb <= 0:
            raise RegistryError(
                f"Dataset {data_hash[:12]} was not kept: the dataset_store_mb setting is {cap_mb:g} (keep no data)."
            )
        path = self.file_path(data_hash)
        try:
            write_dataset_file(ds, path)
        except ValueError as exc:
            raise RegistryError(f"Dataset {data_hash[:12]} cannot be stored: {exc}.") from None
        except OSError as exc:
            raise RegistryError(f"Cannot write to the dataset store {self.root}: {exc.strerror}.") from None
        # the compressed size is only known once written: over the cap, the new entry goes again
        used = self.total_bytes()
        if used > cap_mb * MB:
            size = _size(path)
            path.unlink(missing_ok=True)
            raise RegistryError(
                f"Dataset {data_hash[:12]} ({size / MB:.1f} MB) was not kept: the dataset store would hold "
                f"{used / MB:.1f} MB, past the dataset_store_mb setting ({cap_mb:g} MB). Run "
                "`turbofan-desktop datasets cleanup` or raise the setting."
            )
        return True

    def put_split(self, part: Dataset, *, parent: str, units: Iterable[Any], note: str) -> bool:
        """Store ``part`` as the ``units`` of the stored dataset ``parent`` (a few hundred bytes)."""
        data_hash = part.data_hash
        if self.has(data_hash):
            return False
        if not self.has(parent):
            raise RegistryError(f"Dataset {parent[:12]} is not stored; its split cannot refer to it.")
        document = {
            "kind": "split",
            "data_hash": data_hash,
            "parent": parent,
            "units": [_plain_unit(u) for u in units],
            "note": note,
            "rows": part.n_rows,
            "created": _now(),
        }
        self._write_text(self.split_path(data_hash), json.dumps(document, indent=1))
        return True

    def _write_text(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            raise RegistryError(f"Cannot write to the dataset store {self.root}: {exc.strerror}.") from None
        finally:
            temporary.unlink(missing_ok=True)

    # -- reading ----------------------------------------------------------------------------------
    def load(self, data_hash: str) -> Dataset:
        """The stored dataset, rebuilt and checked against ``data_hash`` (RegistryError otherwise)."""
        if self.file_path(data_hash).is_file():
            return read_dataset_file(self.file_path(data_hash))
        path = self.split_path(data_hash)
        if not path.is_file():
            raise NotFoundError(f"The registry stores no dataset with data hash {data_hash}.")
        document = self._split_document(path)
        parent = self.load(document["parent"])
        by_plain = {_plain_unit(u): u for u in parent.units}
        units = [by_plain[u] for u in document["units"] if u in by_plain]
        part = parent.subset(units, note=document.get("note") or None)
        if part.data_hash != data_hash:
            raise RegistryError(
                f"The stored split {path} does not rebuild the data it is filed under "
                f"(hash {part.data_hash[:12]}, not {data_hash[:12]})."
            )
        return part

    def _split_document(self, path: Path) -> dict[str, Any]:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"The stored split {path} is not readable ({exc}).") from None
        if not isinstance(document, dict) or not {"parent", "units"} <= set(document):
            raise RegistryError(f"The stored split {path} lacks its parent or its units.")
        return document

    def entries(self) -> list[StoredDataset]:
        """Every stored dataset, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            name, suffix = path.stem, path.suffix
            if not HASH_PATTERN.match(name) or suffix not in (".parquet", ".json"):
                continue
            try:
                found.append(self._entry(path, name, suffix))
            except (OSError, RegistryError, Exception):  # noqa: BLE001 - one bad file must not hide the rest
                found.append(
                    StoredDataset(name, "unreadable", path, _size(path), _mtime(path), None, None, None)
                )
        return sorted(found, key=lambda e: (e.created, e.data_hash))

    def _entry(self, path: Path, data_hash: str, suffix: str) -> StoredDataset:
        if suffix == ".json":
            document = self._split_document(path)
            return StoredDataset(
                data_hash=data_hash,
                kind="split",
                path=path,
                bytes=_size(path),
                created=str(document.get("created") or _mtime(path)),
                rows=document.get("rows"),
                units=len(document["units"]),
                source=None,
                parent=document["parent"],
                note=document.get("note"),
            )
        footer = read_footer(path) or {}
        return StoredDataset(
            data_hash=data_hash,
            kind="file",
            path=path,
            bytes=_size(path),
            created=_mtime(path),
            rows=footer.get("rows"),
            units=footer.get("units"),
            source=footer.get("source") or footer.get("name"),
        )

    def remove(self, data_hash: str) -> int:
        """Delete one entry; the bytes freed."""
        freed = 0
        for path in (self.file_path(data_hash), self.split_path(data_hash)):
            if path.is_file():
                size = _size(path)
                try:
                    path.unlink()
                except OSError as exc:
                    raise RegistryError(
                        f"Cannot delete {path} from the dataset store: {exc.strerror}."
                    ) from None
                freed += size
        return freed


def _plain_unit(unit: Any) -> Any:
    return unit.item() if hasattr(unit, "item") else unit


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> str:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["DATASETS_DIR", "DatasetStore", "StoredDataset"]
