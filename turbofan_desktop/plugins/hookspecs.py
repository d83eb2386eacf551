"""Hook specifications: the documentation a plugin author reads.

A plugin is a module (or object) with functions decorated by
:data:`turbofan_desktop.plugins.hookimpl` whose names match the hooks below. Hooks take keyword
arguments only. Register a third-party plugin by installing a package with an entry point in the
``turbofan_desktop.plugins`` group; the built-in models use the same path.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "turbofan_desktop"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_models():
    """Return a list of :class:`~turbofan_desktop.plugins.contract.ModelSpec`.

    Called once when the plugin manager starts. Keep it cheap: import nothing heavy here; the spec's
    ``factory`` string names the module that builds the model, imported only when a model is built.
    Model names must be unique across plugins.
    """


@hookspec
def register_readers():
    """Return a list of :class:`~turbofan_desktop.plugins.contract.ReaderSpec` for new file formats.

    When a file is opened, readers are tried by descending ``priority``; the first whose ``sniff``
    accepts the file's first bytes reads it. Built-in readers (C-MAPSS text, CSV, Parquet, .npy
    telemetry) have priority 0.
    """


@hookspec
def register_report_sections():
    """Return a list of :class:`~turbofan_desktop.plugins.contract.ReportSection`.

    Each section's ``render(version)`` receives the registry record of a model version as a dict and
    returns an HTML fragment appended to that version's report (HTML and PDF).
    """
