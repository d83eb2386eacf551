"""The user-facing exception family.

Every exception here carries one sentence a user understands: which file, which line, what was
expected. The CLI prints that sentence and exits with status 2; the GUI shows it in a dialog.
Any other exception is a bug: it is logged with its traceback and shown as "internal error, see log".
"""

from __future__ import annotations

import errno
from pathlib import Path


class TurbofanError(Exception):
    """Base class of every error whose message is meant for the user."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DataFormatError(TurbofanError):
    """A data file cannot be read as the format it claims or appears to be."""

    def __init__(
        self,
        path: str | Path | None,
        problem: str,
        *,
        line: int | None = None,
        column: str | int | None = None,
        expected: str | None = None,
    ):
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.problem = problem
        self.expected = expected
        where = f"{self.path}" if self.path is not None else "the data"
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        sentence = f"{where}: {problem}"
        if expected:
            sentence += f" (expected {expected})"
        if not sentence.endswith("."):
            sentence += "."
        super().__init__(sentence)


class InsufficientDataError(TurbofanError):
    """There is too little data for what was asked (e.g. a unit shorter than a model window)."""


class ConfigError(TurbofanError):
    """A setting or model configuration value is unknown or out of range."""


class ModelNotTrainedError(TurbofanError):
    """A model was asked to predict before it was trained or loaded."""


class ValidationRequiredError(TurbofanError):
    """An action (such as promotion to production) needs a validated model version."""


class RegistryError(TurbofanError):
    """The model registry is inconsistent, or a version or artifact cannot be used."""


class PasswordRequiredError(RegistryError):
    """A registry server asked for a password that libpq did not have (or refused the one given);
    the GUI and the CLI ask the user for it (never stored) and open again."""

    def __init__(self, message: str, *, url: str = "", refused: bool = False):
        super().__init__(message)
        self.url = url  # already without any password
        self.refused = refused


class NotFoundError(RegistryError):
    """A model version, dataset or run does not exist."""


class ReadOnlyRegistryError(RegistryError):
    """The registry folder (or its database) cannot be written: reads work, changes are refused."""


class DamagedRegistryError(RegistryError):
    """The registry database file is damaged; ``registry check`` reports and repairs what it can."""


class StorageError(TurbofanError):
    """The disk refused a write or a read: no space left, quota exhausted, read-only, I/O error."""

    @classmethod
    def from_os_error(cls, exc: OSError, where: str | Path | None = None) -> StorageError | None:
        """The sentence for a full, read-only or failing disk; None for any other OSError."""
        place = where or exc.filename or "the file being written"
        sentence = _STORAGE_SENTENCES.get(exc.errno)
        return cls(sentence.format(place=place)) if sentence else None


# errno -> sentence; EDQUOT does not exist on every platform.
_STORAGE_SENTENCES = {
    errno.ENOSPC: "There is no space left on the disk holding {place}; free some space and try again.",
    errno.EROFS: "{place} is on a read-only file system; use a writable folder.",
    errno.EIO: "Reading or writing {place} failed with an input/output error (a failing disk or a lost "
    "network drive); check the disk, then run `turbofan-desktop registry check`.",
}
for _code in (errno.EACCES, errno.EPERM):
    _STORAGE_SENTENCES[_code] = "{place} cannot be accessed (permission denied); check its permissions."
if hasattr(errno, "EDQUOT"):
    _STORAGE_SENTENCES[errno.EDQUOT] = (
        "The disk quota for {place} is exhausted; free some space or ask for a larger quota and try again."
    )
STORAGE_ERRNOS = frozenset(_STORAGE_SENTENCES)


class PluginError(TurbofanError):
    """A plugin failed to load, or does not offer what was asked of it."""


class IncompatibleDataError(TurbofanError):
    """A model version cannot be applied to a dataset (missing sensors, wrong format)."""


class DisplayUnavailableError(TurbofanError):
    """The desktop window cannot open here (no display, or system libraries Qt needs are missing)."""


class Cancelled(Exception):  # noqa: N818 - reads as "raise Cancelled"; not an error for the user
    """Cooperative cancellation: raised by long work when ``should_stop()`` became true."""
