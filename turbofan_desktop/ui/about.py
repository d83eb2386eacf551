"""Help > About: versions of the application, its plugins, torch and Qt.

torch's version is read from its installed metadata (``importlib.metadata``): importing torch just to
print a version would cost seconds and defeat the lazy-loading rule.
"""

from __future__ import annotations

import html
import importlib.metadata
from typing import TYPE_CHECKING, Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

from turbofan_desktop import __version__

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def version_rows(workspace: Workspace | None = None) -> list[tuple[str, str]]:
    """(component, version) rows; plugins come from the workspace's plugin registry when available."""
    rows = [
        ("Turbofan Desktop", __version__),
        ("torch", _dist_version("torch")),
        ("Qt", qVersion()),
        ("PySide6", pyside_version),
        ("pyqtgraph", _dist_version("pyqtgraph")),
        ("numpy", _dist_version("numpy")),
        ("pandas", _dist_version("pandas")),
    ]
    for plugin in _plugin_rows(workspace):
        state = plugin.get("version") or "?"
        if plugin.get("error"):
            state += f" (failed to load: {plugin['error']})"
        rows.append((f"plugin {plugin.get('name')}", state))
    return rows


def _plugin_rows(workspace: Workspace | None) -> list[dict[str, Any]]:
    try:
        from turbofan_desktop.services import Workspace
        from turbofan_desktop.services.models import describe_plugins

        return describe_plugins(workspace if workspace is not None else Workspace.without_registry())
    except Exception as exc:  # noqa: BLE001 - the About box must open even with a broken plugin setup
        return [{"name": "(plugins)", "version": "", "error": str(exc)}]


def about_html(workspace: Workspace | None = None) -> str:
    lines = "".join(
        f"<tr><td>{html.escape(name)}</td><td>&nbsp;{html.escape(version)}</td></tr>"
        for name, version in version_rows(workspace)
    )
    return (
        "<h3>Turbofan Desktop</h3>"
        "<p>Anomaly detection, forecasting and remaining-useful-life estimation for turbofan "
        "sensor data, with a local model registry.</p>"
        f"<table>{lines}</table>"
    )


def show_about(parent: QWidget | None, workspace: Workspace | None = None) -> None:
    QMessageBox.about(parent, "About Turbofan Desktop", about_html(workspace))
