"""Command-line front end.

``turbofan-desktop`` with no sub-command (optionally with files) opens the GUI; every sub-command is
headless and calls the same services the window uses. User errors print one sentence and exit 2;
anything else is logged with its traceback and exits 1 with a pointer to the log file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from turbofan_desktop import __version__
from turbofan_desktop.errors import StorageError, TurbofanError

log = logging.getLogger("turbofan_desktop")

# Each module offers ``register(subparsers)``, adding its parser(s) with ``set_defaults(func=...)``;
# ``func(args) -> int`` is the command. Listed explicitly so a frozen app finds them without scanning.
COMMAND_MODULES = (
    "inspect",
    "plugins",
    "models",
    "registry",
    "status",
    "train",
    "validate",
    "detect",
    "forecast",
    "rul",
    "report",
    "drift",
    "fleet",
    "datasets",
)


def _command_modules():
    for name in COMMAND_MODULES:
        qualified = f"{__name__}.{name}_cmd"
        if importlib.util.find_spec(qualified) is not None:
            yield importlib.import_module(qualified)


USAGE = (
    "turbofan-desktop [FILE ...] [--screenshot PATH [--demo-train]] [--self-test] [--registry DIR]\n"
    "       turbofan-desktop COMMAND [options]"
)


def build_parser() -> argparse.ArgumentParser:
    """The one help text: the desktop application's options, then the headless commands."""
    parser = argparse.ArgumentParser(
        prog="turbofan-desktop",
        usage=USAGE,
        description="Turbofan Desktop: train, validate and apply anomaly-detection and forecasting "
        "models on turbofan sensor data. Without a COMMAND, the desktop application opens.",
        epilog="Run 'turbofan-desktop COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"turbofan-desktop {__version__}")
    app = parser.add_argument_group(
        "desktop application (no COMMAND)",
        "turbofan-desktop [FILE ...] opens the window on FILEs (default: the bundled FD001 sample). "
        "On a bare Linux system the window needs the xcb libraries named in the README; the app says "
        "which are missing.",
    )
    # only listed here: run() hands these to build_gui_parser, so they never reach a command
    _add_app_options(app, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="headless commands", prog="turbofan-desktop"
    )
    for module in _command_modules():
        module.register(sub)
    return parser


class _FullHelp(argparse.Action):
    """``-h`` given with app options or files prints the same help as ``turbofan-desktop --help``."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        build_parser().print_help()
        parser.exit()


def _add_app_options(target, *, default=None) -> None:
    """The desktop application's own options, on its parser and in the main help's section."""

    def kw(**extra):
        return extra if default is None else {**extra, "default": default}

    target.add_argument(
        "--screenshot", metavar="PATH", **kw(help="render the main window to PATH (PNG) and exit")
    )
    target.add_argument(
        "--demo-train",
        action="store_true",
        **kw(help="with --screenshot: train tiny models first and show their results"),
    )
    target.add_argument(
        "--self-test",
        action="store_true",
        **kw(help="headless end-to-end check of the installation (no window); exit 0 when ok"),
    )
    target.add_argument(
        "--registry", metavar="DIR_OR_URL", **kw(help="registry folder or URL (default: TURBOFAN_HOME)")
    )
    target.add_argument(
        "--help-commands", action="store_true", **kw(help="the same as --help (kept for scripts)")
    )


def build_gui_parser() -> argparse.ArgumentParser:
    """Parses a start of the desktop application; its help is the full one of :func:`build_parser`."""
    parser = argparse.ArgumentParser(prog="turbofan-desktop", usage=USAGE, add_help=False)
    parser.add_argument("-h", "--help", action=_FullHelp, help="show this help message and exit")
    parser.add_argument("files", nargs="*", help="data files to open (default: the bundled FD001 sample)")
    _add_app_options(parser)
    parser.add_argument("--version", action="version", version=f"turbofan-desktop {__version__}")
    return parser


class _QuietFileHandler(logging.FileHandler):
    """A log file that fails quietly: when its disk is full, logging's own traceback on stderr would
    bury the one sentence the command prints."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


def setup_logging() -> str | None:
    """Log to the file in TURBOFAN_HOME/logs; returns its path (None when it cannot be created)."""
    from turbofan_desktop.config import load_settings

    try:
        settings = load_settings()
    except TurbofanError:
        return None  # a command reports the bad setting itself (run() checks them first)
    log_file = settings.log_file
    root = logging.getLogger()
    for existing in root.handlers:  # main() may run many times in one process (tests, the GUI)
        if isinstance(existing, logging.FileHandler) and Path(existing.baseFilename) == log_file:
            return str(log_file)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = _QuietFileHandler(log_file, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return str(log_file)


def route_warnings_to_log() -> None:
    """Python warnings (numpy overflow on extreme but finite values, a library's deprecation notice)
    go to the log file, never to stderr, where the CLI says one sentence. The NullHandler keeps
    logging's last-resort handler from printing them when no log file could be opened."""
    logging.captureWarnings(True)
    quiet = logging.getLogger("py.warnings")
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())


def _is_command(argv: Sequence[str]) -> bool:
    names = {name for name in COMMAND_MODULES} | {"models", "registry"}
    return bool(argv) and argv[0] in names or bool(argv) and argv[0] in {"-h", "--help"}


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _is_command(argv):
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help()
            return 2
        from turbofan_desktop.config import load_settings

        load_settings()  # every setting checked once, before any work: a bad one is one sentence, exit 2
        return int(args.func(args) or 0)
    args = build_gui_parser().parse_args(argv)
    if args.help_commands:
        build_parser().print_help()
        return 0
    if args.self_test:
        from turbofan_desktop.services.selftest import run_self_test

        return run_self_test()
    from turbofan_desktop.ui.app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    log_path = setup_logging()
    route_warnings_to_log()
    try:
        return run(argv)
    except TurbofanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``... | head``): not an error of ours
        sys.stdout = None  # the interpreter must not flush the closed pipe again at exit
        return 0
    except OSError as exc:  # a full, read-only or failing disk under a write the code did not expect
        problem = StorageError.from_os_error(exc)
        if problem is None:
            log.exception("internal error")
            print(f"internal error, see {log_path or 'the log file'}", file=sys.stderr)
            return 1
        log.warning("%s", problem, exc_info=True)
        print(f"error: {problem}", file=sys.stderr)
        return problem.exit_code
    except Exception:  # noqa: BLE001 - the last line of defence: log it, point to the log
        log.exception("internal error")
        where = log_path or "the log file"
        print(f"internal error, see {where}", file=sys.stderr)
        return 1


def gui_main() -> int:
    return main()
