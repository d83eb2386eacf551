"""``turbofan-desktop registry check [--repair]``: the registry's consistency check;
``registry migrate --from DIR_OR_URL --to DIR_OR_URL``: copy a registry into another."""

from __future__ import annotations

import argparse

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._registry_args import print_table


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

    move = actions.add_parser(
        "migrate",
        help="copy versions, runs, datasets, labels, KPI history and artifacts into another registry "
        "(e.g. a folder into postgresql://user@host:port/db); running it again copies nothing twice",
    )
    move.add_argument(
        "--from", dest="source", required=True, metavar="DIR_OR_URL", help="the registry to copy"
    )
    move.add_argument(
        "--to", dest="destination", required=True, metavar="DIR_OR_URL", help="the registry to copy into"
    )
    move.add_argument(
        "--artifacts",
        metavar="DIR_OR_URL",
        help="where the destination (a server registry) keeps artifacts (default: the artifacts setting)",
    )
    move.add_argument(
        "--from-artifacts",
        metavar="DIR_OR_URL",
        help="where the source (a server registry) keeps artifacts (default: the artifacts setting)",
    )
    add_output_args(move, registry=False)
    move.set_defaults(func=migrate_registry)
    _add_cache_commands(actions)


def _add_cache_commands(actions) -> None:
    cache = actions.add_parser("cache", help="the local cache of a server registry's artifacts")
    cache_actions = cache.add_subparsers(dest="cache_action", metavar="ACTION")
    cache.set_defaults(func=lambda args: _usage(cache))
    prune = cache_actions.add_parser(
        "prune",
        help="remove cached artifact folders unused for --max-days, then the least recently used past "
        "--max-mb (defaults: the cache_max_days and cache_max_mb settings); they unpack again when needed",
    )
    prune.add_argument("--max-mb", type=_limit("--max-mb"), help="size limit in MB (0: none)")
    prune.add_argument("--max-days", type=_limit("--max-days"), help="age limit in days (0: none)")
    add_output_args(prune, registry=False)
    prune.set_defaults(func=prune_cache)


def _limit(option: str):
    def parse(text: str) -> float:
        from turbofan_desktop.config import check_setting

        name = "cache_max_mb" if option == "--max-mb" else "cache_max_days"
        return float(check_setting(name, text, option))

    return parse


def prune_cache(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.models import prune_artifact_cache

    report = prune_artifact_cache(max_mb=args.max_mb, max_days=args.max_days)
    if args.json:
        print_json(report.to_dict())
        return 0 if not report.failed else 1
    print(
        f"Removed {len(report.removed)} cached artifact folder(s), {report.removed_bytes / 1e6:.1f} MB; "
        f"kept {report.kept}, {report.kept_bytes / 1e6:.1f} MB in {report.root}."
    )
    for line in report.failed:
        print(f"  could not remove: {line}")
    return 0 if not report.failed else 1


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def check_registry(args: argparse.Namespace) -> int:
    """Exit 0 when consistent (or fully repaired), 1 when problems remain."""
    from turbofan_desktop.services.models import check_registry_folder

    folder = getattr(args, "registry", None)
    # not through a workspace: a database too damaged to open is still reported and repaired
    report = check_registry_folder(
        folder, repair=args.repair, create=folder is None, artifacts=getattr(args, "artifacts", None)
    )
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


def migrate_registry(args: argparse.Namespace) -> int:
    """Exit 0 when every item of the source is in the destination with equal artifact hashes, else 1."""
    import sys

    from turbofan_desktop.services.models import migrate_registry as migrate

    def say(step: str) -> None:
        if not args.json:
            print(f"{step}…", file=sys.stderr)

    report = migrate(
        args.source,
        args.destination,
        progress=say,
        source_artifacts=args.from_artifacts,
        destination_artifacts=args.artifacts,
    )
    if args.json:
        print_json(report.to_dict())
        return 0 if report.ok else 1
    print(f"From {report.source} to {report.destination}:")
    rows = [
        [
            kind,
            report.in_source[kind],
            report.copied[kind],
            report.already_there[kind],
            report.found_in_destination[kind],
        ]
        for kind in report.in_source
    ]
    print_table(["ITEMS", "IN SOURCE", "COPIED", "ALREADY THERE", "FOUND IN DESTINATION"], rows)
    print(
        f"Artifact sha256 equal in both registries: {report.hashes_verified} of {report.in_source['artifacts']}."
    )
    for line in report.renumbered:
        print(f"  renumbered (the number was taken): {line}")
    for line in report.archived:
        print(f"  arrived archived (the destination has another production version): {line}")
    for problem in report.problems:
        print(f"  problem: {problem}")
    print("Every item is in the destination." if report.ok else "Some items are missing in the destination.")
    return 0 if report.ok else 1
