"""Helpers for the CLI commands that run jobs through the services: workspace, --set, Ctrl-C, progress."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from turbofan_desktop.cli._common import TerminalProgress, print_json, whole_number
from turbofan_desktop.errors import ConfigError

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

T = TypeVar("T")


def open_workspace(args: argparse.Namespace, *, create: bool = True) -> Workspace:
    """The workspace of ``--registry`` (default TURBOFAN_HOME). Commands that only use existing models
    pass ``create=False`` so a mistyped folder is an error, not a new empty registry."""
    from turbofan_desktop.services import Workspace

    registry = getattr(args, "registry", None)
    artifacts = getattr(args, "artifacts", None)
    return with_password_prompt(
        lambda password: Workspace.open(
            registry, create=create or registry is None, password=password, artifacts=artifacts
        )
    )


def with_password_prompt(open_it: Callable[[str | None], T]) -> T:
    """``open_it(None)``; when the registry server asks for a password libpq does not have, ask for
    it on the terminal (getpass: not echoed, never stored) and open again, up to three tries. Without
    a terminal the one-sentence error stands."""
    from turbofan_desktop.errors import PasswordRequiredError

    try:
        return open_it(None)
    except PasswordRequiredError as exc:
        if not sys.stdin.isatty():
            raise
        asked = exc
    for _ in range(3):
        prompt = f"{'Wrong password. ' if asked.refused else ''}Password for {asked.url}: "
        try:
            password = getpass.getpass(prompt)
        except (EOFError, KeyboardInterrupt):
            raise asked from None
        if not password:
            raise asked
        try:
            return open_it(password)
        except PasswordRequiredError as again:
            asked = again
    raise asked


def parse_settings(pairs: list[str] | None) -> dict[str, Any]:
    """``["epochs=2", "l_s=30"]`` -> ``{"epochs": "2", "l_s": "30"}`` (values converted by the model's
    config); a pair without ``=`` or without a name is a ConfigError."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"'--set {pair}' is not a setting; expected --set name=value, e.g. --set epochs=2."
            )
        values[name.strip()] = value.strip()
    return values


def progress_bar(args: argparse.Namespace) -> TerminalProgress:
    """A bar on a terminal; none with --json or when stderr is piped."""
    return TerminalProgress(enabled=False) if getattr(args, "json", False) else TerminalProgress()


class StopFlag:
    """Set by Ctrl-C while a job runs, so the job stops cooperatively and records its cancellation."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


# SIGTERM (a service manager, ``kill``) and SIGHUP (the terminal closed) stop a job like Ctrl-C does:
# the run is recorded as cancelled instead of being left "running" by a killed process.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopFlag]:
    """The first Ctrl-C (or SIGTERM, SIGHUP) asks the job to stop; a second one interrupts as usual."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def handler(signum, frame):
        if flag():
            restore()
            raise KeyboardInterrupt
        flag.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    try:
        yield flag
    finally:
        restore()


def add_version_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        dest="version_id",
        type=whole_number("version id"),
        required=True,
        metavar="ID",
        help="model version id",
    )


def add_scope_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="apply the version even when the applicability check finds FILE out of its scope "
        "(the verdict is still printed)",
    )


def applicability_lines(applicability: Any) -> list[str]:
    """The human output's applicability verdict: one headline, then one line per further reason."""
    lines = [f"applicability: {applicability.headline()}"]
    lines.extend(f"  also: {reason}" for reason in applicability.reasons[1:])
    return lines


def refuse_out_of_scope(args: argparse.Namespace, ws: Workspace, applicability: Any) -> bool:
    """Print the verdict and say so when FILE is out of the version's scope and ``--force`` was not
    given (the caller exits 2); False when the command may go on."""
    from turbofan_desktop.services.naming import version_name_of

    if not applicability.out_of_scope or getattr(args, "force", False):
        return False
    version_id = args.version_id
    sentence = (
        f"{version_name_of(ws, version_id)} is out of scope on {args.file}: {applicability.reasons[0]} "
        "Use --force to apply it anyway."
    )
    if getattr(args, "json", False):
        print_json({"version_id": version_id, "applicability": applicability.to_dict(), "error": sentence})
    else:
        for line in applicability_lines(applicability):
            print(line)
        print(f"error: {sentence}", file=sys.stderr)
    return True


def brief_metrics(metrics: dict[str, float], limit: int = 4) -> str:
    """The first few metrics for a terminal line (``--json`` has them all)."""
    items = [f"{k}={v:.4g}" for k, v in list(metrics.items())[:limit]]
    if len(metrics) > limit:
        items.append(f"+{len(metrics) - limit} more")
    return ", ".join(items)
