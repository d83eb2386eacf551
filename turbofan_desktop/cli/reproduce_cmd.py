"""``turbofan-desktop models reproduce ID``: train a version again from its lineage and compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from turbofan_desktop.cli._common import TerminalProgress, add_output_args, print_json, whole_number
from turbofan_desktop.cli._registry_args import open_registry_workspace
from turbofan_desktop.services.reproduce import ReproduceReport, report_lines, reproduce


def register_action(actions) -> None:
    """Adds ``reproduce`` to the ``models`` actions."""
    parser = actions.add_parser(
        "reproduce",
        help="train a version again from its config, seed, split and stored data; compare the result",
    )
    parser.add_argument("id", type=whole_number("version id"), metavar="ID")
    parser.add_argument(
        "--data", type=Path, metavar="FILE", help="the training data, when the registry no longer keeps it"
    )
    add_output_args(parser)
    parser.set_defaults(func=reproduce_version)


def print_report(report: ReproduceReport) -> None:
    for line in report_lines(report):
        print(line)


def reproduce_version(args: argparse.Namespace) -> int:
    bar = TerminalProgress(enabled=None if not args.json else False)
    with open_registry_workspace(args) as ws:
        try:
            report = reproduce(
                ws, args.id, data_path=args.data, progress=lambda e: bar.update(e.fraction, e.message or "")
            )
        finally:
            bar.close()
    if args.json:
        print_json(report.to_dict())
    else:
        print_report(report)
    return 0 if report.identical else 1
