"""``turbofan-desktop validate (VERSION_ID ... | --all) [--data FILE] [--plugin P] [--target T]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._jobs import brief_metrics, open_workspace, progress_bar, stop_on_interrupt
from turbofan_desktop.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate model versions on held-out units or a data file",
        description="Score versions on their own held-out training units (default) or on FILE given with "
        "--data (a C-MAPSS test file is scored against its paired RUL file); the metrics are stored "
        "with the hash of the data they were computed on.",
    )
    parser.add_argument(
        "version_ids", type=whole_number("version id"), nargs="*", metavar="VERSION_ID", help="version id(s)"
    )
    parser.add_argument(
        "--all", action="store_true", help="every trained version (filtered by --plugin/--target)"
    )
    parser.add_argument("--data", type=Path, metavar="FILE", help="validate on this file instead")
    parser.add_argument("--plugin", metavar="P", help="only versions of this model")
    parser.add_argument("--target", metavar="T", help="only versions of this target")
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.validation import validate

    if bool(args.version_ids) == bool(args.all):
        raise ConfigError("Name the version id(s) to validate, or use --all (not both).")
    bar = progress_bar(args)

    def on_progress(job) -> None:
        bar.update(job.overall, f"{job.plugin} {job.target} ({job.index + 1}/{job.total})")

    with open_workspace(args, create=False) as ws, stop_on_interrupt() as stop:
        try:
            summary = validate(
                ws,
                None if args.all else list(args.version_ids),
                data_path=args.data,
                plugin=args.plugin,
                target=args.target,
                progress=on_progress,
                should_stop=stop,
            )
        finally:
            bar.close()
    if args.json:
        print_json(summary.to_dict())
    else:
        for outcome in summary.results:
            if outcome.ok:
                metrics = brief_metrics(outcome.metrics)
                print(f"{outcome.id} {outcome.plugin} {outcome.target} on {outcome.data}: {metrics}")
            else:
                print(f"{outcome.id} {outcome.plugin} {outcome.target}: {outcome.error}")
        print(
            f"{summary.validated} validated, {summary.failed} failed"
            + (", cancelled" if summary.cancelled else "")
        )
    if summary.cancelled:
        return 130
    if summary.failed:
        reasons = {r.error for r in summary.results if r.error is not None and not r.cancelled}
        # one shared reason (a full disk, a damaged registry) is the sentence the user needs on stderr
        why = f": {reasons.pop()}" if len(reasons) == 1 else "."
        print(
            f"error: {summary.failed} of {len(summary.results)} version(s) could not be validated{why}",
            file=sys.stderr,
        )
        return 2
    return 0
