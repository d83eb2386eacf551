"""Persistent UI state (window geometry, dock layout, last directory, recent files) in QSettings.

The settings live in an INI file inside :func:`turbofan_desktop.config.config_dir`, so
``TURBOFAN_CONFIG_DIR`` isolates them (tests, portable installs) exactly like ``settings.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from turbofan_desktop.config import config_dir

MAX_RECENT = 10
UI_STATE_VERSION = 1  # bump when docks change so an old saved layout is not restored onto new ones


class UiSettings:
    """Typed access to the few values the window remembers between sessions."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else config_dir() / "ui.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # -- window ------------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)

    def splitter_state(self, name: str) -> QByteArray | None:
        value = self._qs.value(f"splitters/{name}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_splitter_state(self, name: str, state: QByteArray) -> None:
        self._qs.setValue(f"splitters/{name}", state)

    # -- files -------------------------------------------------------------------------------------
    def last_directory(self) -> str:
        value = self._qs.value("files/last_directory", "")
        return str(value) if value else str(Path.home())

    def set_last_directory(self, directory: str | Path) -> None:
        self._qs.setValue("files/last_directory", str(directory))

    def last_report_directory(self) -> str | None:
        """The folder the last report was saved to (None before the first report)."""
        value = self._qs.value("reports/last_directory", "")
        return str(value) if value else None

    def set_last_report_directory(self, directory: str | Path) -> None:
        self._qs.setValue("reports/last_directory", str(directory))

    def recent_files(self) -> list[str]:
        value = self._qs.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a bare string for a one-element list
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_file(self, path: str | Path) -> list[str]:
        """Move ``path`` to the front of the recent list (deduplicated, capped); returns the list."""
        text = str(Path(path).resolve())
        files = [text] + [f for f in self.recent_files() if f != text]
        files = files[:MAX_RECENT]
        self._qs.setValue("files/recent", files)
        return files

    def clear_recent_files(self) -> None:
        self._qs.setValue("files/recent", [])

    # -- registries (File > Registry) ----------------------------------------------------------------
    def recent_registries(self) -> list[str]:
        value = self._qs.value("registries/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_registry(self, location: str) -> list[str]:
        """Put a registry (a folder or a URL whose password was already removed) first in the list."""
        entries = [location] + [r for r in self.recent_registries() if r != location]
        entries = entries[:MAX_RECENT]
        self._qs.setValue("registries/recent", entries)
        return entries

    # -- training dialog ---------------------------------------------------------------------------
    def train_choices(self) -> dict[str, Any]:
        """What the training dialog was last accepted with: ``plugin``, ``seed``, ``val_fraction``
        and ``config`` (plugin name -> the settings changed from their defaults); {} before that."""
        text = self._qs.value("train/choices", "")
        try:
            value = json.loads(str(text)) if text else {}
        except json.JSONDecodeError:  # a hand-edited or damaged ini: start afresh
            return {}
        return value if isinstance(value, dict) else {}

    def save_train_choices(self, choices: dict[str, Any]) -> None:
        self._qs.setValue("train/choices", json.dumps(choices, default=list))

    def sync(self) -> None:
        self._qs.sync()
