"""``turbofan-desktop inspect FILE``: what a data file holds, as text or JSON."""

from __future__ import annotations

import argparse
import logging
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
    """The inspect report as a plain dict (the keys of ``--json``)."""
    from turbofan_desktop.data import detect_regimes, missing_report, read_dataset

    extra_readers = _plugin_readers()
    ds = read_dataset(
        args.file,
        rul_path=args.rul,
        unit_col=args.unit_col,
        time_col=args.time_col,
        extra_readers=extra_readers,
    )
    lineage = ds.lineage
    missing = missing_report(ds)
    report: dict[str, Any] = {
        "file": str(ds.source),
        "format": ds.format,
        "units": lineage.units,
        "rows": lineage.rows,
        "time_column": ds.time_col,
        "time_kind": lineage.time_kind,
        "time_start": lineage.time_start,
        "time_end": lineage.time_end,
        "sensors": list(ds.sensors),
        "settings": list(ds.settings),
        "constant_sensors": list(ds.constant_sensors),
        "regimes": detect_regimes(ds).n_regimes,
        "missing_values": missing["total"],
        "missing_by_column": missing["by_column"],
        "data_hash": lineage.data_hash,
        "file_sha256": lineage.file_sha256,
    }
    if ds.rul is not None:
        report["rul_file"] = str(ds.rul_source)
        report["rul_rows"] = len(ds.rul)
    if "shape" in ds.metadata:
        report["shape"] = ds.metadata["shape"]
    return report


def _plugin_readers() -> list[Any]:
    """Readers contributed by plugins; a broken plugin manager must not stop a plain inspect."""
    try:
        from turbofan_desktop.plugins.manager import get_plugin_manager

        return list(get_plugin_manager().readers())
    except Exception:  # noqa: BLE001 - built-in readers still work; the failure is logged
        logging.getLogger(__name__).warning("plugin readers unavailable", exc_info=True)
        return []


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
