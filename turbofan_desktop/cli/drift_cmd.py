"""``turbofan-desktop drift FILE --version ID``: per-sensor data drift against a version's training data."""

from __future__ import annotations

import argparse
from pathlib import Path

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._jobs import add_version_arg, open_workspace


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="check a data file for drift against a model version's training data",
        description="Compare each sensor of FILE with the statistics of the version's training data: "
        "population stability index (PSI) and two-sample Kolmogorov-Smirnov p-value. A sensor drifts "
        "when PSI reaches drift_psi_threshold and the p-value is below drift_ks_pvalue (settings). "
        "The result is stored in the version's history.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="data file")
    add_version_arg(parser)
    parser.add_argument(
        "--no-store", action="store_true", help="do not append the result to the version's history"
    )
    parser.add_argument(
        "--detail", action="store_true", help="with --json: include both CDFs of every sensor"
    )
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.monitoring import drift

    with open_workspace(args) as ws:
        dataset = load_dataset(ws, args.file)
        report = drift(ws, args.version_id, dataset, store=not args.no_store)
    if args.json:
        print_json({"version_id": args.version_id, **report.to_dict(detail=args.detail)})
        return 0
    print(f"{'sensor':<12} {'PSI':>8} {'KS p':>10} {'shift (std)':>12}  drift")
    for name, result in report.sensors.items():
        shift = result.shift_std
        shift_text = f"{shift:+.2f}" if shift is not None else "-"
        flag = "DRIFT" if result.drift else ""
        note = f"  ({result.note})" if result.note else ""
        print(f"{name:<12} {result.psi:>8.3f} {result.ks_pvalue:>10.2g} {shift_text:>12}  {flag}{note}")
    if report.missing:
        print(f"missing in the file: {', '.join(report.missing)}")
    print(report.summary())
    return 0
