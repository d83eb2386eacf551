"""``turbofan-desktop forecast FILE --version ID [--unit U] [--horizon H]``: sensor forecasts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._jobs import (
    add_scope_arg,
    add_version_arg,
    applicability_lines,
    open_workspace,
    refuse_out_of_scope,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "forecast",
        help="forecast sensors with a model version",
        description="Forecast each sensor of a forecasting version beyond the end of every unit in FILE "
        "(median and prediction interval on the data's own time axis).",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="data file")
    add_version_arg(parser)
    parser.add_argument(
        "--unit", dest="units", action="extend", nargs="+", metavar="U", help="only these unit(s)"
    )
    parser.add_argument(
        "--horizon",
        type=whole_number("horizon", maximum=1_000_000),
        metavar="H",
        help="steps ahead (default: the model's horizon)",
    )
    parser.add_argument("--rul", type=Path, metavar="FILE", help="RUL file paired with a C-MAPSS test file")
    add_scope_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def forecast_to_dict(version_id: int, result) -> dict[str, Any]:
    units = []
    for unit, uf in result.units.items():
        sensors = {
            name: {
                "time": sf.time,
                "median": sf.median,
                "lower": sf.lower,
                "upper": sf.upper,
                "quantiles": {str(q): v for q, v in sf.quantiles.items()},
            }
            for name, sf in uf.sensors.items()
        }
        units.append({"unit": unit, "sensors": sensors})
    return {"version_id": version_id, "horizon": result.horizon, "interval": result.interval, "units": units}


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.applicability import check_applicability
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.inference import forecast

    with open_workspace(args, create=False) as ws:
        dataset = load_dataset(ws, args.file, rul_path=args.rul)
        applicability = check_applicability(ws, args.version_id, dataset)
        if refuse_out_of_scope(args, ws, applicability):
            return 2
        result = forecast(
            ws, args.version_id, dataset, units=args.units, horizon=args.horizon, accept_out_of_scope=True
        )
    payload = forecast_to_dict(args.version_id, result)
    payload["applicability"] = applicability.to_dict()
    if args.json:
        print_json(payload)
        return 0
    for line in applicability_lines(applicability):
        print(line)
    print(f"horizon {result.horizon}, {result.interval:.0%} interval")
    for unit, uf in result.units.items():
        for name, sf in uf.sensors.items():
            if len(sf.time):
                print(
                    f"unit {unit} {name}: at {sf.time[-1]} median {float(sf.median[-1]):.4g} "
                    f"[{float(sf.lower[-1]):.4g}, {float(sf.upper[-1]):.4g}]"
                )
    return 0
