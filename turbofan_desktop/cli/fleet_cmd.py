"""``turbofan-desktop fleet FILE [FILE...]``: every engine ranked by risk, and a maintenance plan."""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

from turbofan_desktop.cli._common import print_json, to_jsonable
from turbofan_desktop.cli._jobs import open_workspace, progress_bar, stop_on_interrupt

CSV_COLUMNS = (
    "file",
    "unit",
    "last_cycle",
    "rul",
    "lower",
    "upper",
    "true_rul",
    "p_fail_within_h",
    "recommendation",
    "service_at",
    "expected_cost",
    "anomalies",
    "alarm",
    "drift",
)


def register(subparsers) -> None:
    from turbofan_desktop.services.fleet import DEFAULT_COST_FAILURE, DEFAULT_COST_VISIT, DEFAULT_HORIZON
    from turbofan_desktop.services.fleet_alarms import DEFAULT_RULE

    parser = subparsers.add_parser(
        "fleet",
        help="rank every engine of the files by risk and plan maintenance",
        description="Assess every unit of the files at its last cycle with one RUL model version: the "
        "median RUL and its interval, P(failure within H cycles) from the model's quantiles, recent "
        "anomalies (with --anomaly-versions), drifted sensors, and a recommendation (service now / "
        "plan by cycle s / monitor) that minimises expected cost. Costs are in cycles of engine life: "
        "a planned visit also costs the life it throws away. Engines are listed most urgent first.",
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="data files (one fleet)")
    parser.add_argument(
        "--rul-version",
        type=int,
        metavar="ID",
        help="RUL model version (default: the production one trained on matching data, else the newest)",
    )
    parser.add_argument(
        "--anomaly-versions", type=int, nargs="+", default=[], metavar="ID", help="anomaly versions to apply"
    )
    parser.add_argument(
        "--anomaly-window",
        type=int,
        default=50,
        metavar="CYCLES",
        help="anomalies this close to the end count",
    )
    parser.add_argument(
        "--horizon", type=int, default=DEFAULT_HORIZON, metavar="H", help="planning window in cycles"
    )
    parser.add_argument(
        "--cost-failure",
        type=float,
        default=DEFAULT_COST_FAILURE,
        metavar="C1",
        help="cost of an unplanned failure",
    )
    parser.add_argument(
        "--cost-visit", type=float, default=DEFAULT_COST_VISIT, metavar="C2", help="cost of a planned visit"
    )
    rule = DEFAULT_RULE
    parser.add_argument(
        "--alarm-sensors",
        default=",".join(rule.sensors),
        metavar="S1,S2",
        help="alarm rule: the sensors whose anomaly ranges count (default %(default)s)",
    )
    parser.add_argument(
        "--alarm-min-score",
        default=rule.min_score,
        metavar="SCORE",
        help="alarm rule: a range counts with at least this score (default %(default)s: fits the Telemanom "
        "versions the default rule was chosen for; set it again for other versions)",
    )
    parser.add_argument(
        "--alarm-agree",
        default=rule.min_sensors,
        metavar="N",
        help="alarm rule: how many of the sensors must agree at a cycle (default %(default)s)",
    )
    parser.add_argument(
        "--alarm-persistence",
        default=rule.persistence,
        metavar="CYCLES",
        help="alarm rule: for how many consecutive cycles (default %(default)s)",
    )
    parser.add_argument("--no-drift", action="store_true", help="skip the drift check of each file")
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="use the model's quantiles as they are (default: the lower tail widened as the version's "
        "held-out training engines ask)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write the fleet report (HTML, or PDF for a .pdf path)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print machine-readable JSON")
    output.add_argument("--csv", action="store_true", help="print one CSV row per engine")
    parser.add_argument(
        "--registry", metavar="DIR", type=Path, help="registry folder (default: TURBOFAN_HOME)"
    )
    parser.set_defaults(func=run)


def fleet_payload(assessment: Any, maintenance: Any, alarm_rule: Any) -> dict[str, Any]:
    """The JSON document: the settings, versions, files and the alarm rule, then one object per engine
    (most urgent first)."""
    from turbofan_desktop.services.fleet import alarm_rule_summary

    rows = assessment.rows(maintenance, alarm_rule)
    order = [int(i) for i in maintenance.risk_order()]
    return {
        "rul_version": assessment.rul_version,
        "rul_version_label": assessment.rul_version_label,
        "interval": assessment.interval,
        "quantile_levels": [float(v) for v in assessment.levels],
        "anomaly_versions": assessment.anomaly_versions,
        "horizon": maintenance.horizon,
        "cost_failure": maintenance.cost_failure,
        "cost_visit": maintenance.cost_visit,
        "counts": maintenance.counts(),
        "files": [vars(f) for f in assessment.files],
        "applicability": assessment.applicability(),
        "calibration": assessment.calibration.to_dict() if assessment.calibration else None,
        "alarm_rule": alarm_rule_summary(assessment, alarm_rule),
        "units": [rows[i] for i in order],
    }


def _csv_value(name: str, row: dict[str, Any]) -> Any:
    value = row.get(name)
    if name == "anomalies":
        return ";".join(f"{a['sensor']}@{a['start']}-{a['end']}" for a in value or [])
    if name == "drift":
        return ";".join(value or [])
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.fleet import assess, validate_plan_settings, verdict_line
    from turbofan_desktop.services.fleet_alarms import parse_rule

    # before any model runs
    validate_plan_settings(args.horizon, args.cost_failure, args.cost_visit)
    alarm_rule = parse_rule(
        args.alarm_sensors, args.alarm_min_score, args.alarm_agree, args.alarm_persistence
    )
    bar = progress_bar(args)
    with open_workspace(args, create=False) as ws, stop_on_interrupt() as stop:
        try:
            assessment = assess(
                ws,
                args.files,
                rul_version=args.rul_version,
                anomaly_versions=args.anomaly_versions,
                anomaly_window=args.anomaly_window,
                drift=not args.no_drift,
                calibrate=not args.no_calibration,
                progress=lambda event: bar.update(event.fraction, event.message),
                should_stop=stop,
            )
        finally:
            bar.close()
    maintenance = assessment.plan(args.horizon, args.cost_failure, args.cost_visit)
    payload = fleet_payload(assessment, maintenance, alarm_rule)
    if args.report is not None:
        from turbofan_desktop.services.fleet_report import export_fleet_report

        with open_workspace(args, create=False) as ws:
            payload["report"] = str(
                export_fleet_report(ws, assessment, maintenance, args.report, alarm_rule=alarm_rule)
            )
        if not (args.json or args.csv):
            print(f"wrote {payload['report']}")
    if args.json:
        print_json(payload)
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in to_jsonable(payload["units"]):
            writer.writerow([_csv_value(name, row) for name in CSV_COLUMNS])
        return 0
    print(
        f"{len(assessment)} engines, RUL from {assessment.rul_version_label}; horizon {maintenance.horizon} "
        f"cycles, failure {maintenance.cost_failure:g}, visit {maintenance.cost_visit:g} (cycles of life)"
    )
    applicability = payload["applicability"]
    if applicability["verdict"] is not None:
        for f in applicability["files"]:
            for v in f["versions"]:
                if v["verdict"] != "ok":
                    print(f"{Path(f['path']).name}: {verdict_line(v)}")
    if assessment.calibration is not None:
        print(assessment.calibration.summary())
    print(f"alarm rule: {payload['alarm_rule']['summary']}")
    for row in payload["units"]:
        when = {"plan": f"plan by cycle {row['service_at']}"}.get(
            row["recommendation"], row["recommendation"]
        )
        badges = []
        if row["anomalies"]:
            badges.append(f"{len(row['anomalies'])} anomalies")
        if row["alarm"] is not None:
            badges.append(f"alarm at cycle {row['alarm']}")
        if row["drift"]:
            badges.append("drift")
        print(
            f"{Path(row['file']).name} unit {row['unit']}: RUL {row['rul']:.0f} [{row['lower']:.0f}, "
            f"{row['upper']:.0f}], P(fail <= {maintenance.horizon}) {row['p_fail_within_h']:.0%} -> {when}"
            + (f" ({', '.join(badges)})" if badges else "")
        )
    counts = maintenance.counts()
    print(", ".join(f"{n} {action}" for action, n in counts.items()))
    return 0
