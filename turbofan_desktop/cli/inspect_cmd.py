"""``turbofan-desktop inspect FILE``: what a data file holds, as text or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._common import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="summarise a data file (format, units, time range, sensors, regimes, data hash)",
        description="Read a data file (C-MAPSS text, CSV, Parquet or telemetry .npy), validate it and "
        "summarise it. A test_FD00x.txt file is paired with the RUL_FD00x.txt beside it.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the data file")
    parser.add_argument("--rul", type=Path, metavar="FILE", help="true-RUL file to pair with a test file")
    parser.add_argument("--unit-col", metavar="C", help="name of the unit/asset column (tables)")
    parser.add_argument("--time-col", metavar="C", help="name of the cycle/timestamp column (tables)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run_inspect)


def summarise(args: argparse.Namespace) -> dict[str, Any]:
    """The inspect report as a plain dict (the keys of ``--json``); no registry is opened."""
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.data import summarise_file

    return summarise_file(
        Workspace.without_registry(),
        args.file,
        rul_path=args.rul,
        unit_col=args.unit_col,
        time_col=args.time_col,
    )


def _text(report: dict[str, Any]) -> str:
    def shorten(names: list[str], limit: int = 30) -> str:
        return (", ".join(names[:limit]) + (" ..." if len(names) > limit else "")) or "-"

    rows = [
        ("File", report["file"]),
        ("Format", report["format"]),
        ("Units", report["units"]),
        ("Rows", report["rows"]),
        (f"Time ({report['time_kind']})", f"{report['time_start']} .. {report['time_end']}"),
        (f"Sensors ({len(report['sensors'])})", shorten(report["sensors"])),
        ("Settings", shorten(report["settings"])),
        ("Constant sensors", shorten(report["constant_sensors"])),
        ("Regimes", report["regimes"]),
        ("Missing values", report["missing_values"]),
    ]
    if "rul_file" in report:
        rows.append(("RUL file", f"{report['rul_file']} ({report['rul_rows']} rows)"))
    rows += [("Data hash", report["data_hash"]), ("File SHA-256", report["file_sha256"])]
    return "\n".join(f"{label + ':':<18}{value}" for label, value in rows)


def run_inspect(args: argparse.Namespace) -> int:
    report = summarise(args)
    if args.json:
        print_json(report)
    else:
        print(_text(report))
    return 0
