"""Small pieces the use cases share: callback defaults, the environment record, progress weighting."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from turbofan_desktop import __version__
from turbofan_desktop.errors import Cancelled, ReadOnlyRegistryError, StorageError
from turbofan_desktop.plugins.contract import never_stop

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

# Libraries whose versions decide whether a result can be reproduced. Looked up by distribution
# metadata so that recording them never imports them (torch stays unloaded in the services layer).
TRACKED_DISTRIBUTIONS = ("numpy", "pandas", "torch", "fastparquet", "peewee", "pluggy", "matplotlib")


def library_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Python, platform and library versions as strings ("not installed" when a library is absent)."""
    versions = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "turbofan-desktop": __version__,
    }
    for name in TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions.update(extra or {})
    return versions


def stop_checker(should_stop: Callable[[], bool] | None) -> Callable[[], bool]:
    return should_stop or never_stop


def raise_if_stopped(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise Cancelled()


def plugin_version(ws: Workspace, plugin_name: str) -> str | None:
    for row in ws.plugins.plugins():
        if row.get("name") == plugin_name:
            return str(row.get("version"))
    return None


def artifact_problem(exc: BaseException) -> str:
    """Why loading an artifact failed, in words safe to show: torch's refusal of a weights file that
    holds more than tensors suggests loading it with ``weights_only=False``, which would run whatever
    code the file carries; that advice is never passed on."""
    text = str(exc)
    if "weights_only" in text or "Weights only" in text:
        return (
            "its weights file holds more than plain tensors, so it was refused unread "
            "(the file may be damaged or tampered with; train the model again)"
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def record_metrics_if_writable(ws: Workspace, version_id: int, **entry: Any) -> int | None:
    """Append a ride-along KPI entry (drift, detection, feedback) to the version's history; skipped
    with a log line when the registry is read-only or its disk refuses the write (full, failing), so
    the detection or check it rides along with keeps its result."""
    if getattr(ws.registry, "read_only", False):
        log.info(
            "not recording %s metrics of version %s: the registry %s is read-only",
            entry.get("kind"),
            version_id,
            ws.registry.home,
        )
        return None
    try:
        return ws.registry.record_metrics(version_id, **entry)
    except (StorageError, ReadOnlyRegistryError) as exc:
        log.warning("not recording %s metrics of version %s: %s", entry.get("kind"), version_id, exc)
        return None
