"""The desktop application (PySide6 + pyqtgraph).

Everything here calls :mod:`turbofan_desktop.services`; no workflow logic lives in the UI. Importing
this package is cheap: Qt modules load when a window is built (``ui.app.run_app``), and torch is
never imported by the UI itself — only by a model plugin when a model is trained or loaded.
"""

from __future__ import annotations
