"""``turbofan-desktop registry check [--repair]``: the registry's consistency check."""

from __future__ import annotations

import argparse

from turbofan_desktop.cli._common import add_output_args, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("registry", help="check and repair the model registry")
    actions = parser.add_subparsers(dest="registry_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    check = actions.add_parser(
        "check",
        help="find rows without artifacts, artifacts without rows, sha256 mismatches and runs left by a crash",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="end dead runs (succeeded when their version committed, else failed), move orphaned "
        "artifacts to the quarantine folder, rebuild a damaged database from its readable rows",
    )
    add_output_args(check)
    check.set_defaults(func=check_registry)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def check_registry(args: argparse.Namespace) -> int:
    """Exit 0 when consistent (or fully repaired), 1 when problems remain."""
    from turbofan_desktop.services.models import check_registry_folder

    folder = getattr(args, "registry", None)
    # not through a workspace: a database too damaged to open is still reported and repaired
    report = check_registry_folder(folder, repair=args.repair, create=folder is None)
    if args.json:
        print_json(report.to_dict())
        return 0 if report.ok else 1
    print(f"Checked {report.checked_versions} model version(s) and {report.checked_runs} run(s).")
    for problem in report.problems:
        if problem["repaired"]:
            print(f"  repaired: {problem['message']} ({problem.get('action')})")
        else:
            hint = " (run with --repair to fix)" if problem["repairable"] and not args.repair else ""
            print(f"  problem: {problem['message']}{hint}")
    if report.ok:
        print("The registry is consistent." if not report.problems else "All problems were repaired.")
        return 0
    print(f"{len(report.remaining)} problem(s) remain.")
    return 1
