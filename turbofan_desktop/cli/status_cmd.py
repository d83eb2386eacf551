"""``turbofan-desktop status``: training status across equipment (targets x plugins)."""

from __future__ import annotations

import argparse

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._registry_args import open_registry_workspace, print_table


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status", help="per target and plugin: latest version, production version, last trained, validated"
    )
    add_output_args(parser)
    parser.set_defaults(func=show_status)


def show_status(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.models import training_status

    with open_registry_workspace(args) as ws:
        lines = training_status(ws)
    if args.json:
        print_json([line.to_dict() for line in lines])
        return 0
    if not lines:
        print("No models trained yet.")
        return 0
    rows = [
        [
            line.target,
            line.plugin,
            f"v{line.latest_version} ({line.latest_status})",
            f"v{line.production_version}" if line.production_version else None,
            "yes" if line.validated else "no",
            (line.last_trained or "")[:19].replace("T", " ") or None,
            line.age,
        ]
        for line in lines
    ]
    print_table(["TARGET", "PLUGIN", "LATEST", "PRODUCTION", "VALIDATED", "LAST TRAINED", "AGE"], rows)
    return 0
