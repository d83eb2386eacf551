"""``turbofan-desktop plugins``: the loaded plugins, their models, tasks and settings, and load errors."""

from __future__ import annotations

import argparse
from typing import Any

from turbofan_desktop.cli._common import add_output_args, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list model plugins, their tasks, settings and load errors",
        description="List the installed model plugins (built-in and third-party): name, version, "
        "models, tasks, the settings each model accepts (with defaults) and any load error.",
    )
    add_output_args(parser, registry=False)
    parser.set_defaults(func=run)


def describe_plugins() -> list[dict[str, Any]]:
    """Plugin rows with each model's spec and config schema attached (no registry is opened)."""
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.models import describe_plugins as describe

    return describe(Workspace.without_registry())


def _format_default(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def run(args: argparse.Namespace) -> int:
    rows = describe_plugins()
    if args.json:
        print_json({"plugins": rows})
        return 0
    for row in rows:
        status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
        print(f"{row['name']} {row['version']} ({row['source']}, {row['module'] or 'object'}): {status}")
        for model in row["models"]:
            print(f"  model {model['name']}: tasks {', '.join(model['tasks'])}")
            for item in model["config"]:
                print(f"    {item['name']} = {_format_default(item['default'])}  {item['help']}")
    return 0
