"""``turbofan-desktop rul FILE --version ID``: remaining useful life per unit."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._jobs import (
    add_scope_arg,
    add_version_arg,
    applicability_lines,
    open_workspace,
    refuse_out_of_scope,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rul",
        help="estimate remaining useful life with a model version",
        description="Estimate each unit's remaining useful life at the end of FILE with an interval; a "
        "C-MAPSS test file is paired with its RUL file, so the true RUL is shown beside it.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="data file")
    add_version_arg(parser)
    parser.add_argument("--rul", type=Path, metavar="FILE", help="RUL file paired with a C-MAPSS test file")
    add_scope_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def rul_to_dict(version_id: int, result) -> dict[str, Any]:
    units = []
    for u in result.units:
        row = {"unit": u.unit, "rul": u.rul, "lower": u.lower, "upper": u.upper}
        if u.true_rul is not None:
            row["true_rul"] = u.true_rul
        units.append(row)
    payload: dict[str, Any] = {"version_id": version_id, "interval": result.interval, "units": units}
    known = [(u.rul, u.true_rul) for u in result.units if u.true_rul is not None]
    if known:
        payload["rmse"] = math.sqrt(sum((p - t) ** 2 for p, t in known) / len(known))
        payload["coverage"] = sum(
            1 for u in result.units if u.true_rul is not None and u.lower <= u.true_rul <= u.upper
        ) / len(known)
    return payload


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.applicability import check_applicability
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.inference import predict_rul

    with open_workspace(args, create=False) as ws:
        dataset = load_dataset(ws, args.file, rul_path=args.rul)
        applicability = check_applicability(ws, args.version_id, dataset)
        if refuse_out_of_scope(args, ws, applicability):
            return 2
        result = predict_rul(ws, args.version_id, dataset, accept_out_of_scope=True)
    payload = rul_to_dict(args.version_id, result)
    payload["applicability"] = applicability.to_dict()
    if args.json:
        print_json(payload)
        return 0
    for line in applicability_lines(applicability):
        print(line)
    for row in payload["units"]:
        line = f"unit {row['unit']}: RUL {row['rul']:.1f} [{row['lower']:.1f}, {row['upper']:.1f}]"
        if "true_rul" in row:
            line += f" (true {row['true_rul']:g})"
        print(line)
    if "rmse" in payload:
        print(f"RMSE {payload['rmse']:.2f}, {payload['coverage']:.0%} of true values inside the interval")
    return 0
