"""``turbofan-desktop models ...``: list, show, promote, delete and clean up model versions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from turbofan_desktop.cli import mlflow_cmd, reproduce_cmd
from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._registry_args import open_registry_workspace, print_table
from turbofan_desktop.services import models, naming
from turbofan_desktop.services.models import STAGES, VERSION_STATUSES, VersionRecord


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    if value > 2**63 - 1:  # SQLite integers stop at 64 bits
        raise argparse.ArgumentTypeError(f"expected at most {2**63 - 1}, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected 1 or more, got 0")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list, show, promote and delete model versions")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    listing = actions.add_parser("list", help="model versions, newest first")
    listing.add_argument("--plugin", help="only this model plugin")
    listing.add_argument("--target", help="only this target sensor ('*' for multi-sensor models)")
    listing.add_argument("--stage", choices=STAGES)
    listing.add_argument("--status", choices=VERSION_STATUSES)
    listing.add_argument("--limit", type=_positive, default=100, help="page size (default 100)")
    listing.add_argument("--offset", type=_non_negative, default=0, help="versions to skip (default 0)")
    add_output_args(listing)
    listing.set_defaults(func=list_versions)

    show = actions.add_parser("show", help="everything stored about one version")
    show.add_argument("id", type=whole_number("version id"), metavar="ID")
    add_output_args(show)
    show.set_defaults(func=show_version)

    compare = actions.add_parser(
        "compare",
        help="versions side by side: metrics on the same data, config and lineage differences",
        description="Put two or more versions side by side. With --data FILE every version is scored on "
        "FILE (stored metrics on that very data are reused; new scores are stored like validate's) and "
        "FILE's applicability verdict is given per version. Without it, the newest data all versions "
        "were validated on is used; metrics of different data are never put side by side.",
    )
    compare.add_argument("ids", type=int, nargs="+", metavar="ID", help="two or more version ids")
    compare.add_argument("--data", type=Path, metavar="FILE", help="score every version on this file")
    compare.add_argument("--rul", type=Path, metavar="FILE", help="RUL file paired with a C-MAPSS test file")
    add_output_args(compare)
    compare.set_defaults(func=compare_versions)

    promote = actions.add_parser("promote", help="move a version to a stage (production needs validation)")
    promote.add_argument("id", type=whole_number("version id"), metavar="ID")
    promote.add_argument("--stage", required=True, choices=STAGES)
    add_output_args(promote)
    promote.set_defaults(func=promote_version)

    delete = actions.add_parser("delete", help="delete a version and its artifact")
    delete.add_argument("id", type=whole_number("version id"), metavar="ID")
    delete.add_argument("--force", action="store_true", help="also delete a production version")
    add_output_args(delete)
    delete.set_defaults(func=delete_version)

    cleanup = actions.add_parser(
        "cleanup", help="keep the newest N versions per plugin and target (plus production/staging)"
    )
    cleanup.add_argument("--keep", type=_non_negative, required=True, metavar="N")
    add_output_args(cleanup)
    cleanup.set_defaults(func=cleanup_versions)

    reproduce_cmd.register_action(actions)
    mlflow_cmd.register_actions(actions)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _summary_row(rec: VersionRecord, overview: dict) -> list[object]:
    figure = overview["key_metric"]
    metric = f"{figure['name']}={figure['value']:.4g}" if figure else "-"
    return [
        rec.id,
        rec.plugin,
        rec.target,
        rec.version,
        rec.stage,
        rec.status,
        "yes" if rec.validation_performed else "no",
        metric,
        figure["data"]["text"] if figure else "-",
        rec.created[:19].replace("T", " "),
        rec.made_by,
        overview["trained_on"]["text"],
    ]


def list_versions(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        filters = {"plugin": args.plugin, "target": args.target, "stage": args.stage, "status": args.status}
        records = models.list_versions(ws, **filters, limit=args.limit, offset=args.offset)
        total = models.count_versions(ws, **filters)
        overviews = [naming.overview(ws, rec) for rec in records]
    if args.json:
        print_json([{**rec.to_dict(), **view} for rec, view in zip(records, overviews, strict=True)])
        return 0
    if not records:
        print("No model versions match." if total else "No model versions.")
        return 0
    headers = [
        "ID",
        "PLUGIN",
        "TARGET",
        "VER",
        "STAGE",
        "STATUS",
        "VALIDATED",
        "METRIC",
        "ON",
        "CREATED",
        "BY",
    ]
    headers.append("TRAINED ON")
    print_table(headers, [_summary_row(rec, view) for rec, view in zip(records, overviews, strict=True)])
    shown_to = args.offset + len(records)
    if total > len(records):
        print(f"({args.offset + 1}-{shown_to} of {total}; use --offset/--limit for more)")
    return 0


def show_version(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        details = models.show_version(ws, args.id)
        record, history, feedback = details.record, details.metric_history, details.feedback
        view = naming.overview(ws, record)
        on = naming.history_data(ws, record, history)
    data = record.to_dict()
    data.update(view)
    data["metric_history"] = [
        {**(entry if isinstance(entry, dict) else entry.to_dict()), "data": text}
        for entry, text in zip(history, on, strict=True)
    ]
    data["feedback"] = [label.to_dict() for label in feedback]
    if args.json:
        print_json(data)
        return 0
    print(f"Model version {record.label}")
    for key in ("stage", "status", "created", "training_seconds", "artifact_path", "artifact_sha256"):
        print(f"  {key}: {data[key]}")
    print(f"  validated: {'yes' if record.validation_performed else 'no'}")
    print(f"  registered by: {record.made_by}")
    lineage = record.lineage
    print(
        f"  trained on: {view['trained_on']['text']} ({lineage.get('format')}, {lineage.get('units')} units, "
        f"{lineage.get('rows')} rows, {lineage.get('time_start')}..{lineage.get('time_end')}, "
        f"data hash {str(lineage.get('data_hash'))[:16]})"
    )
    for key in ("config", "metrics", "validation_metrics", "library_versions"):
        print(f"  {key}: {json.dumps(data[key], sort_keys=True, default=str)}")
    for entry in data["metric_history"]:
        if entry.get("kind") != "drift":
            shown = ", ".join(
                f"{k}={v:.4g}" for k, v in entry["metrics"].items() if isinstance(v, int | float)
            )
            print(f"  {str(entry.get('created'))[:19]} {entry.get('kind')} on {entry['data']}: {shown}")
    print(
        f"  training history: {len(record.history)} epochs; KPI entries: {len(history)}; labels: {len(feedback)}"
    )
    return 0


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def compare_versions(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.compare import compare_versions as compare

    with open_registry_workspace(args) as ws:
        result = compare(ws, args.ids, data_path=args.data, rul_path=args.rul)
    if args.json:
        print_json(result.to_dict())
        return 0
    ids = [v["id"] for v in result.versions]
    names = [v["name"] for v in result.versions]
    for version in result.versions:
        line = f"{version['name']}: trained on {version['trained_on']['text']}, stage {version['stage']}"
        if "applicability" in version:
            verdict = version["applicability"]
            line += f"; on the data: {verdict['verdict']}"
            if verdict["reasons"]:
                line += f" ({verdict['reasons'][0]})"
        print(line)
    if result.data is not None:
        print(f"\nMetrics on {result.data['text']} (* = best):")
        rows = [
            [row["metric"], *[_cell(row["values"][i]) + ("*" if i in row["best"] else "") for i in ids]]
            for row in result.metrics
        ]
        print_table(["METRIC", *names], rows)
    for title, differences in (
        ("Config", result.config_differences),
        ("Lineage", result.lineage_differences),
    ):
        print(f"\n{title} differences:" if differences else f"\n{title}: the same.")
        if differences:
            print_table(
                ["", *names], [[d["key"], *[_cell(d["values"][i]) for i in ids]] for d in differences]
            )
    for note in result.notes:
        print(f"\nnote: {note}")
    return 0


def promote_version(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        promotion = models.promote(ws, args.id, args.stage)
    record, archived = promotion.record, promotion.archived
    if args.json:
        data = record.to_dict()
        data["archived_id"] = archived.id if archived is not None else None
        print_json(data)
        return 0
    print(f"Model version {record.label} is now in stage '{record.stage}'.")
    if archived is not None:
        print(f"Previous production version {archived.label} was archived.")
    return 0


def _deletion_sentence(deletion: models.Deletion) -> str:
    label = deletion.record.label
    if deletion.artifact_left:
        return (
            f"Deleted model version {label}; its artifact could not be removed "
            "('turbofan-desktop registry check --repair' quarantines it)."
        )
    if deletion.artifact_was_there:
        return f"Deleted model version {label} and its artifact."
    if deletion.record.artifact_path:
        return f"Deleted model version {label}; its artifact was already gone."
    return f"Deleted model version {label} (it had no artifact)."


def delete_version(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        deletion = models.delete_version(ws, args.id, force=args.force)
    if args.json:
        print_json({"deleted": deletion.record.id, "label": deletion.record.label})
        return 0
    print(_deletion_sentence(deletion))
    return 0


def cleanup_versions(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        result = models.cleanup(ws, keep=args.keep)
    if args.json:
        print_json({"deleted": result.ids, "remaining": result.remaining})
        return 0
    print(f"Deleted {len(result.ids)} model version(s); {result.remaining} remain.")
    return 0
