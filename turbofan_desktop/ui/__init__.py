"""The desktop application (PySide6 + pyqtgraph).

Everything here calls :mod:`turbofan_desktop.services`; no workflow logic lives in the UI. Importing
this package is cheap: Qt modules load when a window is built (``ui.app.run_app``), and torch is
never imported by the UI itself — only by a model plugin when a model is trained or loaded.
"""

from __future__ import annotations

import sys

#: added once to the reference count of each singleton when :func:`singleton_refcounts_need_guard`
SINGLETON_REFCOUNT_RESERVE = 1 << 40


def singleton_refcounts_need_guard() -> bool:
    """True on CPython < 3.12 with shiboken6 6.12 or newer (pyproject pins < 6.12; this is the net)."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    try:
        import shiboken6
    except ImportError:
        return False
    return tuple(shiboken6.__version_info__[:2]) >= (6, 12)


def _guard_singleton_refcounts() -> None:
    """Keep PySide6 6.12 from crashing the interpreter on Python 3.11.

    shiboken6 6.12 returns ``None`` from every void Qt method, and ``True`` from ``Signal.emit``,
    without taking a reference (correct only on Python >= 3.12, where these singletons are immortal).
    On 3.11 each such call drops the count by one, and after some tens of thousands of calls (seconds
    of plotting) the interpreter aborts with "Fatal Python error: none_dealloc" (or bool_dealloc).
    Giving the singletons a huge count makes them effectively immortal, as 3.12 does; they are never
    freed on any version, so the extra count changes nothing else.
    """
    if not singleton_refcounts_need_guard():
        return
    import ctypes

    for singleton in (None, True, False, Ellipsis, NotImplemented):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt is PyObject's first field
        if refcount.value < SINGLETON_REFCOUNT_RESERVE:
            refcount.value += SINGLETON_REFCOUNT_RESERVE


_guard_singleton_refcounts()
