"""``turbofan-desktop models export ID --mlflow URI`` and ``models import --mlflow MODEL_URI``."""

from __future__ import annotations

import argparse

from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._registry_args import open_registry_workspace
from turbofan_desktop.services import mlflow_export


def register_actions(actions) -> None:
    """Adds ``export`` and ``import`` to the ``models`` actions."""
    export = actions.add_parser(
        "export",
        help="export a version to MLflow: a run with its lineage and a pyfunc model ([mlflow] extra)",
    )
    export.add_argument("id", type=whole_number("version id"), metavar="ID")
    export.add_argument("--mlflow", required=True, metavar="TRACKING_URI", help="e.g. http://localhost:5000")
    export.add_argument("--register", metavar="NAME", help="also register it in MLflow's model registry")
    add_output_args(export)
    export.set_defaults(func=export_version)

    imported = actions.add_parser(
        "import", help="register a model this app exported to MLflow as a new version"
    )
    imported.add_argument(
        "--mlflow", required=True, metavar="MODEL_URI", help="runs:/RUN/model or models:/NAME/1"
    )
    imported.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="the tracking server of a runs:/ or models:/ URI (default: the setting)",
    )
    add_output_args(imported)
    imported.set_defaults(func=import_version)


def export_version(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        result = mlflow_export.export_version(ws, args.id, args.mlflow, register=args.register)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(
        f"Exported version {result.version_id} to MLflow run {result.run_id} (experiment {result.experiment_id})."
    )
    print(f"Model: {result.model_uri}")
    if result.registered_name:
        print(f"Registered as {result.registered_name} version {result.registered_version}.")
    return 0


def import_version(args: argparse.Namespace) -> int:
    with open_registry_workspace(args) as ws:
        uri = args.tracking_uri or ws.settings.mlflow_tracking_uri or None
        record = mlflow_export.import_model(ws, args.mlflow, tracking_uri=uri)
    if args.json:
        print_json(record.to_dict())
        return 0
    print(f"Imported {args.mlflow} as model version {record.label}.")
    return 0
