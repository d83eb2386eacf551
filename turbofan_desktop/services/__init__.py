"""The application layer: the use cases both the GUI and the CLI call.

A :class:`Workspace` bundles what every use case needs — the settings, the model registry and the
plugin registry — so a caller opens one and passes it to the service functions
(:mod:`~turbofan_desktop.services.training`, :mod:`~turbofan_desktop.services.validation`,
:mod:`~turbofan_desktop.services.inference`, ...). Pure Python: no Qt, and torch is only imported by a
plugin when a model is built or loaded. Long work reports progress through callbacks and stops
cooperatively when ``should_stop()`` becomes true.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from turbofan_desktop.config import Settings, load_settings
from turbofan_desktop.plugins.manager import PluginRegistry, get_plugin_manager
from turbofan_desktop.registry import Registry


def open_registry(settings: Settings, *, create: bool = True, password: str | None = None) -> Registry:
    """The registry the settings name (see :attr:`Settings.registry_location`); ``password`` (a
    server registry's, asked from the user) is used for this connection only and never stored."""
    registry = Registry.open(
        settings.registry_location,
        create=create,
        cache_root=settings.home / "cache",
        password=password,
        artifacts=settings.artifacts or None,
    )
    if registry.is_server:
        from turbofan_desktop.services.models import prune_artifact_cache

        prune_artifact_cache(settings, quiet=True)
    return registry


class Workspace:
    """Settings + model registry + plugin registry (loaded on first use) + a cache of loaded models.

    One workspace may be shared by worker threads: the registry keeps a connection per thread and the
    model cache is guarded by a lock.
    """

    MODEL_CACHE_SIZE = 8  # loaded models kept per workspace

    def __init__(
        self, settings: Settings, registry: Registry | None, plugins: PluginRegistry | None = None
    ) -> None:
        self.settings = settings
        self._registry = registry  # None: opened in the settings' home on first use
        self._plugins = plugins
        self._lock = threading.RLock()
        # id -> (spec, model, artifact sha256), least recently used first
        self._models: OrderedDict[int, tuple[Any, ...]] = OrderedDict()
        # services.executors by purpose ("train", "predict"): where model jobs run, made on first use
        self._executors: dict[str, Any] = {}

    @classmethod
    def open(
        cls,
        registry_dir: Path | str | None = None,
        *,
        settings: Settings | None = None,
        plugins: PluginRegistry | None = None,
        create: bool = True,
        password: str | None = None,
        artifacts: str | None = None,
    ) -> Workspace:
        """Open the registry at ``registry_dir``: a folder or a URL (``sqlite:///…/registry.db``,
        ``postgresql://user@host:port/db``); default the ``registry`` setting, else the settings' home
        (TURBOFAN_HOME). A server registry unpacks artifacts into ``home/cache``.

        ``create=False`` refuses a folder that does not exist (a mistyped ``--registry`` of a command
        that only reads models) instead of creating an empty registry there. ``password``: a server
        registry's password the user typed when asked (used for the connection, never stored).
        ``artifacts`` overrides the ``artifacts`` setting (where a server registry keeps artifacts).
        """
        settings = settings or load_settings()
        if artifacts:
            settings = dataclasses.replace(settings, artifacts=str(artifacts))
        if registry_dir is not None and "://" in str(registry_dir):
            settings = dataclasses.replace(settings, registry=str(registry_dir))
        elif registry_dir is not None:
            settings = dataclasses.replace(settings, home=Path(registry_dir).expanduser(), registry="")
        registry = open_registry(settings, create=create, password=password)
        return cls(settings, registry, plugins)

    @classmethod
    def without_registry(
        cls, *, settings: Settings | None = None, plugins: PluginRegistry | None = None
    ) -> Workspace:
        """A workspace for use cases that only read files and plugins (``inspect``, ``plugins``, the
        About box): no registry folder is created or opened unless a use case asks for it."""
        return cls(settings or load_settings(), None, plugins)

    @property
    def registry_name(self) -> str:
        """The registry's folder or URL as a user may see it (password removed), without opening it."""
        from turbofan_desktop.registry.db import redact_url

        return redact_url(self.settings.registry_location)

    def switch_registry(
        self, location: str | Path, *, create: bool = True, password: str | None = None
    ) -> Registry:
        """Open another registry (a folder or a URL) and make it this workspace's (File > Registry >
        Open…). Logs and the artifact cache stay in the settings' home; loaded models are forgotten.
        When the new one cannot be opened the error is raised and the current registry stays."""
        text = str(location).strip()
        settings = dataclasses.replace(
            self.settings, registry=text if "://" in text else str(Path(text).expanduser())
        )
        registry = open_registry(settings, create=create, password=password)
        with self._lock:
            old, self._registry, self.settings = self._registry, registry, settings
            self._models.clear()
        if old is not None:
            old.close()
        return registry

    @property
    def registry_read_only(self) -> bool:
        """Whether the registry, once opened, refuses writes (a read-only folder, or a server user
        without write rights); False before it is opened."""
        return bool(getattr(self._registry, "read_only", False))

    @property
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = open_registry(self.settings)
            return self._registry

    @property
    def plugins(self) -> PluginRegistry:
        with self._lock:
            if self._plugins is None:
                self._plugins = get_plugin_manager()
            return self._plugins

    # -- loaded-model cache (used by services.inference) ------------------------------------------
    def cached_model(self, version_id: int) -> tuple[Any, ...] | None:
        with self._lock:
            entry = self._models.get(version_id)
            if entry is not None:
                self._models.move_to_end(version_id)
            return entry

    def cache_model(self, version_id: int, entry: tuple[Any, ...]) -> None:
        """Keep a loaded model; a batch over many versions keeps only the most recent few in memory."""
        with self._lock:
            self._models[version_id] = entry
            self._models.move_to_end(version_id)
            while len(self._models) > self.MODEL_CACHE_SIZE:
                self._models.popitem(last=False)

    def forget_model(self, version_id: int | None = None) -> None:
        """Drop one cached model (e.g. after its version was deleted), or all with ``None``."""
        with self._lock:
            if version_id is None:
                self._models.clear()
            else:
                self._models.pop(version_id, None)

    def executor(self, purpose: str = "train") -> Any:
        """The workspace's executor for ``purpose``, made on first use and kept (local worker processes
        stay warm between jobs), closed with the workspace. "train": the ``executor`` and ``workers``
        settings; "predict": one worker of its own, so showing results never waits for a training."""
        with self._lock:
            if purpose not in self._executors:
                from turbofan_desktop.services.executors import executor_for

                workers = 1 if purpose == "predict" else None
                self._executors[purpose] = executor_for(self, workers=workers)
            return self._executors[purpose]

    def close(self) -> None:
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.close()
        self.forget_model()
        close = getattr(self._registry, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Workspace"]
