"""The plugin manager: built-in and third-party plugins through one code path.

Built-in plugins (:data:`DEFAULT_PLUGINS`) and the modules named by entry points of the
``turbofan_desktop.plugins`` group are imported by name, registered with one
:class:`pluggy.PluginManager` and validated against :mod:`~turbofan_desktop.plugins.hookspecs`.
A plugin that fails — on import, on registration, with a misspelled hook, or with a hook that raises
or returns the wrong thing — is recorded with its error and listed by :meth:`PluginRegistry.plugins`;
it never takes the application down. Nothing here imports torch: model specs name their factory
as a string that is only imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from turbofan_desktop import __version__
from turbofan_desktop.errors import PluginError
from turbofan_desktop.plugins import hookspecs
from turbofan_desktop.plugins.contract import ModelSpec, ReportSection
from turbofan_desktop.plugins.hookspecs import PROJECT_NAME

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "turbofan_desktop.plugins"
DEFAULT_PLUGINS = ("turbofan_telemanom", "turbofan_transformer")
BUILTIN_PREFIX = "turbofan_"


@dataclass
class PluginRecord:
    """One plugin the manager tried to load, whether it worked or not."""

    name: str
    target: str  # "module" or "module:attr" it was imported from ("" when registered as an object)
    version: str
    source: str  # "builtin", "entry point" or "registered"
    plugin: Any = None  # the registered object; None when loading failed
    error: str | None = None
    models: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    name: str
    target: str
    version: str
    source: str


def _distribution_version(entry_point: importlib.metadata.EntryPoint | None) -> str:
    dist = getattr(entry_point, "dist", None) if entry_point is not None else None
    if dist is not None and getattr(dist, "version", None):
        return str(dist.version)
    return __version__


def _candidates(extra: Iterable[Any]) -> list[_Candidate | Any]:
    """Built-ins first (named after their entry point when there is one), then the other entry
    points, then ``extra``; a module listed twice is loaded once."""
    try:
        entry_points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as exc:  # noqa: BLE001 - broken metadata must not stop the built-ins
        log.warning("could not read entry points of %s: %s", ENTRY_POINT_GROUP, exc)
        entry_points = []
    by_target = {ep.value.replace(" ", ""): ep for ep in entry_points}
    result: list[_Candidate | Any] = []
    for module in DEFAULT_PLUGINS:
        ep = by_target.get(module)
        name = ep.name if ep is not None else module.removeprefix(BUILTIN_PREFIX)
        result.append(_Candidate(name, module, _distribution_version(ep), "builtin"))
    for ep in entry_points:
        result.append(
            _Candidate(ep.name, ep.value.replace(" ", ""), _distribution_version(ep), "entry point")
        )
    for item in extra:
        if isinstance(item, str):
            result.append(_Candidate(item.split(":")[0].rsplit(".", 1)[-1], item, __version__, "registered"))
        else:
            result.append(item)
    return result


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginRegistry:
    """The loaded plugins and what they contribute (models, readers, report sections)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._records: dict[str, PluginRecord] = {}
        self._lock = threading.RLock()
        self._contributions: dict[str, Any] | None = None

    # -- loading -------------------------------------------------------------------------------
    def load(self, candidates: Iterable[_Candidate | Any]) -> None:
        """Import and register each candidate; failures are recorded, never raised."""
        seen_targets = {r.target for r in self._records.values() if r.target}
        for candidate in candidates:
            if not isinstance(candidate, _Candidate):
                self.register(candidate)
                continue
            if candidate.target in seen_targets or candidate.name in self._records:
                continue
            seen_targets.add(candidate.target)
            record = PluginRecord(candidate.name, candidate.target, candidate.version, candidate.source)
            self._records[record.name] = record
            try:
                plugin = _import_target(candidate.target)
            except BaseException as exc:  # noqa: BLE001 - includes SystemExit from a hostile import
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.error = f"could not import {candidate.target}: {_error_text(exc)}"
                log.warning("plugin %s: %s", record.name, record.error)
                continue
            self._register_record(record, plugin)
        self._check_pending()
        self._contributions = None

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register a plugin object or module programmatically (tests, embedding applications).

        Returns the name it was registered under; a failure is recorded like any other plugin's.
        """
        with self._lock:
            name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            name = str(name).removeprefix(BUILTIN_PREFIX) if name.startswith(BUILTIN_PREFIX) else str(name)
            if name in self._records and self._records[name].plugin is not None:
                return name
            version = str(getattr(plugin, "__version__", __version__))
            record = PluginRecord(name, getattr(plugin, "__name__", ""), version, "registered")
            self._records[name] = record
            self._register_record(record, plugin)
            self._check_pending()
            self._contributions = None
            return name

    def _register_record(self, record: PluginRecord, plugin: Any) -> None:
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # noqa: BLE001 - e.g. pluggy.PluginValidationError on a bad signature
            record.error = f"could not register: {_error_text(exc)}"
            log.warning("plugin %s: %s", record.name, record.error)
            return
        record.plugin = plugin

    def _check_pending(self) -> None:
        """Hookimpls that match no hookspec (misspelled names) disable their plugin, with the reason."""
        for _ in range(len(self._records) + 1):
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                bad = exc.plugin
                name = self.pm.get_name(bad)
                record = self._records.get(name) if name else None
                self.pm.unregister(bad)
                if record is not None:
                    record.plugin = None
                    record.error = f"rejected: {exc}"
                    log.warning("plugin %s: %s", name, record.error)

    # -- contributions -----------------------------------------------------------------------
    def _call(self, record: PluginRecord, hook_name: str, expected: Callable[[], type]) -> list[Any]:
        """Call one plugin's implementation of a hook, isolating its failures. ``expected()`` gives the
        type every item must have; it is asked only when the plugin implements the hook (the reader
        type lives in the data layer, whose import brings pandas: listing models must not)."""
        caller = getattr(self.pm.hook, hook_name)
        items: list[Any] = []
        for impl in caller.get_hookimpls():
            if impl.plugin is not record.plugin:
                continue
            kind = expected()
            try:
                result = impl.function()
                values = list(result or [])
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the app
                record.error = f"{hook_name}() raised {_error_text(exc)}"
                log.warning("plugin %s: %s", record.name, record.error)
                return []
            wrong = [type(v).__name__ for v in values if not isinstance(v, kind)]
            if wrong:
                record.error = f"{hook_name}() returned {', '.join(wrong)} instead of {kind.__name__}"
                return []
            items.extend(values)
        return items

    def _collect(self) -> dict[str, Any]:
        with self._lock:
            if self._contributions is not None:
                return self._contributions
            models: dict[str, ModelSpec] = {}
            readers: list[Any] = []
            sections: list[ReportSection] = []
            for record in self._records.values():
                record.models = []
                if record.plugin is None:
                    continue
                specs = self._call(record, "register_models", lambda: ModelSpec)
                readers.extend(self._call(record, "register_readers", _reader_spec))
                sections.extend(self._call(record, "register_report_sections", lambda: ReportSection))
                for spec in specs:
                    if spec.name in models:
                        record.error = (
                            f"model '{spec.name}' is already provided by plugin '{models[spec.name].plugin}'"
                        )
                        continue
                    models[spec.name] = dataclasses.replace(spec, plugin=record.name)
                    record.models.append(spec.name)
            readers.sort(key=lambda r: -r.priority)
            self._contributions = {"models": models, "readers": readers, "sections": sections}
            return self._contributions

    def models(self) -> dict[str, ModelSpec]:
        """Every registered model spec by name, with ``spec.plugin`` naming its plugin."""
        return dict(self._collect()["models"])

    def model(self, name: str) -> ModelSpec:
        models = self.models()
        try:
            return models[name]
        except KeyError:
            known = ", ".join(sorted(models)) or "none"
            raise PluginError(f"There is no model called '{name}'; known models: {known}.") from None

    def readers(self) -> list[Any]:
        """Plugin-contributed file readers, highest priority first."""
        return list(self._collect()["readers"])

    def report_sections(self) -> list[ReportSection]:
        return list(self._collect()["sections"])

    def plugins(self) -> list[dict[str, Any]]:
        """One row per plugin: name, version, source, module, models, tasks, error."""
        models = self._collect()["models"]
        rows = []
        for record in self._records.values():
            tasks = sorted({t for m in record.models for t in models[m].tasks})
            rows.append(
                {
                    "name": record.name,
                    "version": record.version,
                    "source": record.source,
                    "module": record.target,
                    "models": list(record.models),
                    "tasks": tasks,
                    "error": record.error,
                }
            )
        return rows


def _reader_spec() -> type:
    from turbofan_desktop.data.readers import ReaderSpec

    return ReaderSpec


_REGISTRY: PluginRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_plugin_manager(*, refresh: bool = False, extra_plugins: Iterable[Any] = ()) -> PluginRegistry:
    """The application's plugin registry, built once and cached.

    ``refresh=True`` rebuilds it (re-reading entry points). ``extra_plugins`` (module names,
    ``"module:attr"`` strings or plugin objects) are loaded after the built-ins and entry points by the
    same code path; passing any also rebuilds the cached registry.
    """
    global _REGISTRY
    extra = tuple(extra_plugins)
    with _REGISTRY_LOCK:
        if _REGISTRY is None or refresh or extra:
            registry = PluginRegistry()
            registry.load(_candidates(extra))
            _REGISTRY = registry
        return _REGISTRY


__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginRecord",
    "PluginRegistry",
    "get_plugin_manager",
]
