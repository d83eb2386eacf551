"""Error dialogs: a user error shows its one sentence; anything else is a bug, logged and pointed to.

Mirrors the CLI's contract (DESIGN.md section 7): :class:`~turbofan_desktop.errors.TurbofanError`
carries a sentence the user understands; any other exception is logged with its traceback to the log
file and the dialog says "internal error, see <log file>".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from PySide6.QtWidgets import QMessageBox, QWidget

from turbofan_desktop.errors import TurbofanError

log = logging.getLogger(__name__)

#: where a controller reports an error: the window's :meth:`~MainWindow.show_error` (a dialog, or the
#: status bar in scripted runs), a list's ``append`` in tests
ErrorSink: TypeAlias = Callable[[BaseException | str], None]


@dataclass(frozen=True)
class ErrorMessage:
    title: str
    text: str
    user_error: bool


def describe_error(exc: BaseException | str, log_file: str | None = None) -> ErrorMessage:
    """The dialog's title and sentence for ``exc``; internal errors are logged here with traceback.

    A plain string is treated as an already-formatted user sentence (worker threads send text).
    """
    if isinstance(exc, str):
        return ErrorMessage("Turbofan Desktop", exc, True)
    if isinstance(exc, TurbofanError):
        return ErrorMessage("Turbofan Desktop", str(exc), True)
    log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__))
    where = log_file or "the log file"
    return ErrorMessage("Turbofan Desktop: internal error", f"Internal error, see {where}.", False)


def show_error(parent: QWidget | None, exc: BaseException | str, log_file: str | None = None) -> ErrorMessage:
    """Show ``exc`` in a modal dialog (warning for user errors, critical for bugs); returns what was shown."""
    message = describe_error(exc, log_file)
    if message.user_error:
        QMessageBox.warning(parent, message.title, message.text)
    else:
        QMessageBox.critical(parent, message.title, message.text)
    return message


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    """A Yes/No question whose safe answer (No) is the default; True when the user chose Yes."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
