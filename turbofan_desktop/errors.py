"""The user-facing exception family.

Every exception here carries one sentence a user understands: which file, which line, what was
expected. The CLI prints that sentence and exits with status 2; the GUI shows it in a dialog.
Any other exception is a bug: it is logged with its traceback and shown as "internal error, see log".
"""

from __future__ import annotations

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


class NotFoundError(RegistryError):
    """A model version, dataset or run does not exist."""


class PluginError(TurbofanError):
    """A plugin failed to load, or does not offer what was asked of it."""


class IncompatibleDataError(TurbofanError):
    """A model version cannot be applied to a dataset (missing sensors, wrong format)."""


class DisplayUnavailableError(TurbofanError):
    """The desktop window cannot open here (no display, or system libraries Qt needs are missing)."""


class Cancelled(Exception):  # noqa: N818 - reads as "raise Cancelled"; not an error for the user
    """Cooperative cancellation: raised by long work when ``should_stop()`` became true."""
