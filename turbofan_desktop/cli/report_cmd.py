"""``turbofan-desktop report VERSION_ID --format html|pdf -o PATH [--data FILE]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._jobs import open_workspace, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a model report (HTML or PDF)",
        description="Write the report of a version: lineage, config, training curve, validation metrics, "
        "anomaly or forecast plots for a few units, environment.",
    )
    parser.add_argument(
        "version_id", type=whole_number("version id"), metavar="VERSION_ID", help="model version id"
    )
    parser.add_argument(
        "--format", choices=("html", "pdf"), help="report format (default: from the -o suffix, else html)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PATH", help="file to write")
    parser.add_argument(
        "--data", type=Path, metavar="FILE", help="plot this file (default: held-out training units)"
    )
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.reports import export_report

    fmt = args.format or ("pdf" if args.output.suffix.lower() == ".pdf" else "html")
    bar = progress_bar(args)
    with open_workspace(args, create=False) as ws:
        try:
            path = export_report(
                ws,
                args.version_id,
                fmt,
                args.output,
                data_path=args.data,
                progress=lambda e: bar.update(e.fraction, e.message),
            )
        finally:
            bar.close()
    if args.json:
        print_json(
            {"version_id": args.version_id, "format": fmt, "path": str(path), "bytes": path.stat().st_size}
        )
    else:
        print(f"wrote {path}")
    return 0
