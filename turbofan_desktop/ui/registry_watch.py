"""Notice when someone else changes the registry: poll a cheap marker on a thread of its own.

Another program, or a colleague's machine on a shared PostgreSQL registry, may register or promote a
version while this window is open. :class:`RegistryWatcher` asks
:func:`~turbofan_desktop.services.models.change_marker` (one aggregate query) every few seconds on its
own thread — a slow or unreachable server never blocks the GUI thread — and emits :attr:`changed`
(delivered on the GUI thread) when the answer differs from the last one. The thread keeps its own
database connection and closes it when it stops or when the workspace switches registries.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from turbofan_desktop.services import models

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 3.0


class RegistryWatcher(QObject):
    """Polls ``workspace``'s registry every ``interval_s`` seconds; :attr:`changed` when it changed."""

    changed = Signal()

    def __init__(
        self, workspace: Workspace, interval_s: float = POLL_INTERVAL_S, parent: QObject | None = None
    ):
        super().__init__(parent)
        self.workspace = workspace
        self.interval_s = float(interval_s)
        self.polls = 0  # how many markers were read (tests and diagnostics)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry: Any = None  # the registry whose connection this thread holds
        self._last: tuple[int, ...] | None = None  # the marker of what the panel shows
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="registry-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and wait for the thread (it closes its connection on the way out)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    def note(self, marker: tuple[int, ...]) -> None:
        """The marker read just before the panel re-read the registry: what it now shows. A change
        after that marker differs from it at the next poll, so no change slips between the two."""
        with self._lock:
            self._last = tuple(marker)

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the watching thread ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._poll_once()  # the baseline, at once
            while not self._stop.wait(self.interval_s):
                self._poll_once()
        finally:
            self._release()

    def _poll_once(self) -> None:
        try:
            registry = self.workspace.registry
            if registry is not self._registry:  # File > Registry > Open… switched it
                self._release()
                self._registry = registry
            marker = models.change_marker(self.workspace)
        except Exception as exc:  # noqa: BLE001 - a server that went away is retried at the next poll
            log.debug("registry change poll failed: %s", exc)
            return
        self.polls += 1
        with self._lock:
            changed = self._last is not None and marker != self._last
            if self._last is None or changed:
                self._last = marker
        if changed:
            self.changed.emit()

    def _release(self) -> None:
        """Close this thread's connection to the registry it watched (peewee keeps one per thread)."""
        registry, self._registry = self._registry, None
        if registry is not None:
            try:
                registry.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.debug("closing the watcher's connection failed: %s", exc)


__all__ = ["POLL_INTERVAL_S", "RegistryWatcher"]
