"""Helpers shared by the CLI commands: common options, JSON output, a terminal progress bar."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np


def add_output_args(parser: argparse.ArgumentParser, *, registry: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    if registry:
        parser.add_argument(
            "--registry",
            metavar="DIR_OR_URL",
            help="registry folder or URL (sqlite:///…/registry.db, postgresql://user@host:port/db; "
            "default: the registry setting, else TURBOFAN_HOME)",
        )
        parser.add_argument(
            "--artifacts",
            metavar="DIR_OR_URL",
            help="where a server registry keeps its artifacts: a folder (a network mount) or an fsspec "
            "URL (default: the artifacts setting, else inside the database)",
        )


def _default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_jsonable(value: Any) -> Any:
    return _finite(json.loads(json.dumps(value, default=_default)))


def print_json(value: Any) -> None:
    json.dump(to_jsonable(value), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


class TerminalProgress:
    """A one-line progress bar on a terminal; silent when stderr is piped or output is JSON."""

    def __init__(self, enabled: bool | None = None, width: int = 30, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self._last = None

    def update(self, fraction: float, label: str = "") -> None:
        if not self.enabled:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(fraction * self.width))
        line = f"\r[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:5.1f}% {label}"[:120]
        if line != self._last:
            self.stream.write(line.ljust(len(self._last or "")))
            self.stream.flush()
            self._last = line

    def close(self) -> None:
        if self.enabled and self._last is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._last = None


def whole_number(what: str, *, minimum: int = 1, maximum: int = 2**63 - 1):
    """An argparse ``type`` for an id or count: a whole number in [minimum, maximum], else one
    sentence (exit 2). Raising ConfigError, not ArgumentTypeError, keeps argparse's usage banner out."""
    from turbofan_desktop.errors import ConfigError

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise ConfigError(f"The {what} is {text!r}; expected a whole number from {minimum} to {maximum}.")
        return value

    parse.__name__ = what  # argparse names the type in its own messages
    return parse
