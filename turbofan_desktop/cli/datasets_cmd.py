"""``turbofan-desktop datasets ...``: the data the registry keeps for its versions, by data hash."""

from __future__ import annotations

import argparse
from pathlib import Path

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._registry_args import open_registry_workspace, print_table
from turbofan_desktop.services import datasets


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list, show, export and clean up the datasets the registry keeps"
    )
    actions = parser.add_subparsers(dest="datasets_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    listing = actions.add_parser("list", help="stored datasets and the versions that use them")
    add_output_args(listing)
    listing.set_defaults(func=list_datasets)

    show = actions.add_parser("show", help="one stored dataset: lineage, sensors, versions")
    show.add_argument("hash", metavar="HASH", help="its data hash (6 or more leading characters)")
    add_output_args(show)
    show.set_defaults(func=show_dataset)

    export = actions.add_parser(
        "export", help="write a stored dataset as Parquet (the app reads it back with the same hash)"
    )
    export.add_argument("hash", metavar="HASH", help="its data hash (6 or more leading characters)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="the .parquet file to write")
    export.add_argument(
        "--dvc", type=Path, metavar="REPO_DIR", help="write into this DVC repository with a .dvc pointer"
    )
    add_output_args(export)
    export.set_defaults(func=export_dataset)

    cleanup = actions.add_parser("cleanup", help="delete stored datasets no version uses")
    cleanup.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    add_output_args(cleanup)
    cleanup.set_defaults(func=cleanup_datasets)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MB"


def _uses(used_by: dict[int, list[str]]) -> str:
    return ", ".join(f"{vid} ({'/'.join(roles)})" for vid, roles in sorted(used_by.items())) or "none"


def list_datasets(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        found = datasets.list_datasets(ws)
    if args.json:
        print_json([use.to_dict() for use in found])
        return 0
    if not found:
        print("The registry keeps no datasets.")
        return 0
    rows = [
        [
            use.entry.data_hash[:12],
            use.entry.kind if not use.entry.parent else f"split of {use.entry.parent[:12]}",
            use.entry.units,
            use.entry.rows,
            _size(use.entry.bytes),
            use.entry.source or use.entry.note,
            _uses(use.used_by),
        ]
        for use in found
    ]
    print_table(["HASH", "KIND", "UNITS", "ROWS", "SIZE", "SOURCE", "USED BY (version)"], rows)
    print(f"{len(found)} dataset(s), {_size(sum(u.entry.bytes for u in found))} on disk.")
    return 0


def show_dataset(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        data = datasets.show_dataset(ws, args.hash)
    if args.json:
        print_json(data)
        return 0
    lineage = data["lineage"]
    print(f"Dataset {data['data_hash']}")
    print(f"  stored: {data['kind']}, {_size(data['bytes'])}, {data['path']}")
    if data["parent"]:
        print(f"  split of {data['parent']}: {data['note']}")
    print(
        f"  data: {lineage['source']} ({lineage['format']}, {lineage['units']} units, {lineage['rows']} rows, "
        f"{lineage['time_kind']} {lineage['time_start']}..{lineage['time_end']})"
    )
    print(f"  sensors: {', '.join(data['sensors'])}")
    print(f"  settings: {', '.join(data['settings']) or '-'}")
    print(f"  used by: {_uses({u['version_id']: u['roles'] for u in data['used_by']})}")
    return 0


def export_dataset(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        result = datasets.export_dataset(ws, args.hash, output=args.output, dvc_repo=args.dvc)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"Wrote dataset {result.data_hash[:12]} to {result.path} ({_size(result.bytes)}).")
    if result.same_hash:
        print("Read back by turbofan-desktop with the same data hash.")
    else:
        print(f"Warning: read back with data hash {result.read_back_hash[:12]}, not {result.data_hash[:12]}.")
    if result.dvc_file:
        print(f"DVC pointer: {result.dvc_file}")
    return 0 if result.same_hash else 1


def cleanup_datasets(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        result = datasets.cleanup_datasets(ws, dry_run=args.dry_run)
    if args.json:
        print_json(result.to_dict())
        return 0
    verb = "Would delete" if result.dry_run else "Deleted"
    print(
        f"{verb} {len(result.removed)} dataset(s) no version uses ({_size(result.freed_bytes)}); "
        f"{result.kept} kept."
    )
    return 0
