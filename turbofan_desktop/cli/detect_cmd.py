"""``turbofan-desktop detect FILE --version ID [--unit U ...]``: anomaly ranges per unit, plus the
drift of the detected data against the version's training data (stored in the version's history)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._common import add_output_args, print_json
from turbofan_desktop.cli._jobs import (
    add_scope_arg,
    add_version_arg,
    applicability_lines,
    open_workspace,
    progress_bar,
    refuse_out_of_scope,
    stop_on_interrupt,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find anomalous ranges with a model version",
        description="Apply an anomaly-detection version to FILE and list the anomalous ranges of each unit "
        "on the data's own time axis. The detected rows are also checked for drift against the version's "
        "training data (as the drift command does; stored in the version's history).",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="data file")
    add_version_arg(parser)
    parser.add_argument(
        "--unit", dest="units", action="extend", nargs="+", metavar="U", help="only these unit(s)"
    )
    parser.add_argument("--rul", type=Path, metavar="FILE", help="RUL file paired with a C-MAPSS test file")
    add_scope_arg(parser)
    add_output_args(parser)
    parser.set_defaults(func=run)


def detection_to_dict(version_id: int, result) -> dict[str, Any]:
    """The JSON shape: per unit and target, the ranges with start/end on the time axis and a score."""
    units = []
    for unit, det in result.units.items():
        ranges = [
            {
                "start": r.start,
                "end": r.end,
                "score": r.score,
                "direction": r.direction,
                "start_index": r.start_index,
                "end_index": r.end_index,
                "probability": r.probability,
            }
            for r in det.anomalies
        ]
        units.append({"unit": unit, "target": result.target, "ranges": ranges, "scored_steps": len(det.time)})
    return {
        "version_id": version_id,
        "target": result.target,
        "threshold_method": result.threshold_method,
        "units": units,
        "anomalies": sum(len(u["ranges"]) for u in units),
    }


def drift_line(report) -> str:
    """The human output's drift verdict: one line naming the drifted sensors."""
    if report is None:
        return "drift: not checked (the version has no statistics of its training data for these sensors)"
    if report.drifted:
        return (
            f"drift: {len(report.drifted)} of {len(report.sensors)} sensors drifted from the training "
            f"data: {', '.join(report.drifted)} (see `turbofan-desktop drift`)"
        )
    return f"drift: none of {len(report.sensors)} sensors drifted from the training data"


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.applicability import check_applicability
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.services.inference import detect_with_drift

    with open_workspace(args, create=False) as ws, stop_on_interrupt() as stop:
        dataset = load_dataset(ws, args.file, rul_path=args.rul)
        applicability = check_applicability(ws, args.version_id, dataset)
        if refuse_out_of_scope(args, ws, applicability):
            return 2
        bar = progress_bar(args)
        try:
            monitored = detect_with_drift(
                ws,
                args.version_id,
                dataset,
                units=args.units,
                progress=lambda e: bar.update(e.fraction, e.stage),
                should_stop=stop,
                accept_out_of_scope=True,
            )
        finally:
            bar.close()
    payload = detection_to_dict(args.version_id, monitored.detection)
    # shaped like the drift command's JSON (without its version_id); null when not checked
    payload["drift"] = monitored.drift.to_dict() if monitored.drift is not None else None
    payload["applicability"] = applicability.to_dict()
    if args.json:
        print_json(payload)
        return 0
    for line in applicability_lines(applicability):
        print(line)
    for unit in payload["units"]:
        spans = (
            ", ".join(f"{r['start']}-{r['end']} (score {r['score']:.3g})" for r in unit["ranges"]) or "none"
        )
        print(f"unit {unit['unit']} {unit['target']}: {spans}")
    print(f"{payload['anomalies']} anomalous range(s) in {len(payload['units'])} unit(s)")
    print(drift_line(monitored.drift))
    return 0
