"""``turbofan-desktop models reproduce ID``: train a version again from its lineage and compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from turbofan_desktop.cli._common import TerminalProgress, add_output_args, print_json, whole_number
from turbofan_desktop.cli._registry_args import open_registry_workspace
from turbofan_desktop.services.reproduce import Comparison, ReproduceReport, reproduce


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


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return str(value)


def _line(c: Comparison) -> str:
    if c.same:
        return f"    {c.name}: {_value(c.original)}  same"
    diff = c.difference
    size = f" ({diff:+.3g})" if diff is not None else ""
    return f"    {c.name}: {_value(c.original)} -> {_value(c.rebuilt)}{size}"


def print_report(report: ReproduceReport) -> None:
    threads = report.torch_threads or "all usable"
    print(
        f"Reproduced {report.label} from {report.data_from} with {threads} torch thread(s) "
        f"in {report.seconds:.1f} s"
    )
    print("  data:")
    for c in report.data:
        print(_line(c))
    same = sum(c.same for c in report.metrics)
    print(f"  metrics: {same} of {len(report.metrics)} identical")
    for c in report.metrics:
        if not c.same:
            print(_line(c))
    if report.weights is None:
        print("  weights: the plugin offers no weight arrays; not compared")
    else:
        print("  weights:")
        print(_line(report.weights))
        for row in report.weight_differences:
            if "problem" in row:
                print(f"      {row['name']}: {row['problem']}")
            else:
                print(
                    f"      {row['name']}: {row['differing']} of {row['values']} values differ, "
                    f"largest by {row['max_abs_difference']:.3g}"
                )
    if report.libraries:
        print("  libraries changed since training:")
        for c in report.libraries:
            print(f"    {c.name}: {c.original} -> {c.rebuilt}")
    print("identical" if report.identical else "different")


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
