"""The fleet report: the plan, the fleet chart and one line per engine, as HTML or PDF.

Designed like the model report (:mod:`~turbofan_desktop.services.reports`, whose HTML and PDF writers it
uses): a summary, the plan per action, the chart of every engine's RUL interval sorted with the horizon
marked, one line per engine most urgent first, and the versions and data hashes it was computed from —
so a planner can tell later exactly which models and which data produced the plan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.services.fleet import (
    ACTIONS,
    MONITOR,
    PLAN,
    SERVICE_NOW,
    FleetAssessment,
    MaintenancePlan,
    alarm_rule_summary,
    verdict_line,
)
from turbofan_desktop.services.fleet_alarms import DEFAULT_RULE, AlarmRule
from turbofan_desktop.services.reports import FORMATS, Plot, ReportContent, write_content

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

ACTION_COLORS = {SERVICE_NOW: "#d62728", PLAN: "#ffa014", MONITOR: "#2ca02c"}


def fleet_chart(assessment: FleetAssessment, plan: MaintenancePlan) -> Plot:
    """Every engine's interval, sorted by median RUL, coloured by its recommendation; H marked."""
    fig = Figure(figsize=(7.5, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    median = np.array([e.rul for e in assessment.engines], dtype=float)
    lower = np.array([e.lower for e in assessment.engines], dtype=float)
    upper = np.array([e.upper for e in assessment.engines], dtype=float)
    order = np.argsort(median, kind="stable")
    x = np.arange(len(order))
    ax.vlines(x, lower[order], upper[order], color="#999999", linewidth=1.2)
    for action in ACTIONS:
        chosen = plan.action[order] == action
        if chosen.any():
            ax.scatter(
                x[chosen], median[order][chosen], s=12, color=ACTION_COLORS[action], label=action, zorder=3
            )
    ax.axhline(plan.horizon, color="#333333", linestyle="--", linewidth=1)
    ax.text(0, plan.horizon, f" H = {plan.horizon}", va="bottom", fontsize=8)
    ax.set_xlabel("engines, sorted by median RUL")
    ax.set_ylabel("RUL (cycles)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.14)
    caption = (
        f"Median RUL and {assessment.interval:.0%} interval of {len(assessment)} engines from "
        f"{assessment.rul_version_label}; colour and legend name the recommendation."
    )
    return Plot("Fleet", fig, caption)


def _engine_line(row: dict[str, Any], horizon: int) -> tuple[str, str]:
    action = row["recommendation"]
    when = f"plan by cycle {row['service_at']}" if action == PLAN else action
    text = (
        f"{when}; RUL {row['rul']:.0f} [{row['lower']:.0f}, {row['upper']:.0f}] at cycle {row['last_cycle']}, "
        f"P(fail <= {horizon}) {row['p_fail_within_h']:.0%}, expected cost {row['expected_cost']:.0f}"
    )
    if row.get("true_rul") is not None:
        text += f", true RUL {row['true_rul']:.0f}"
    if row["anomalies"]:
        text += "; anomalies " + ", ".join(
            f"{a['sensor']} {a['start']}-{a['end']}" for a in row["anomalies"][:4]
        )
    if row.get("alarm") is not None:
        text += f"; alarm at cycle {row['alarm']}"
    if row["drift"]:
        text += "; drift " + ", ".join(row["drift"])
    if row.get("applicability") not in (None, "ok"):
        text += f"; applicability: {row['applicability'].replace('_', ' ')}"
    return f"{Path(str(row['file'])).name} unit {row['unit']}", text


def applicability_text(assessment: FleetAssessment) -> str:
    """The worst verdict over the files and versions, and how many files have each verdict."""
    summary = assessment.applicability()
    if summary["verdict"] is None:
        return "not checked"
    counts: dict[str, int] = {}
    for f in summary["files"]:
        counts[f["verdict"]] = counts.get(f["verdict"], 0) + 1
    per_file = ", ".join(f"{n} file(s) {v.replace('_', ' ')}" for v, n in counts.items())
    return f"{summary['verdict'].replace('_', ' ')} ({per_file})"


def fleet_content(
    ws: Workspace, assessment: FleetAssessment, plan: MaintenancePlan, alarm_rule: AlarmRule = DEFAULT_RULE
) -> ReportContent:
    """The report's content (format-free); ``alarm_rule`` gives each engine's Alarm and is named once."""
    counts = plan.counts()
    record = ws.registry.get(assessment.rul_version)
    summary = [
        ("Engines", str(len(assessment))),
        ("RUL version", assessment.rul_version_label),
        ("Horizon H", f"{plan.horizon} cycles"),
        (
            "Costs",
            f"unplanned failure {plan.cost_failure:g}, planned visit {plan.cost_visit:g} (cycles of life)",
        ),
        ("Plan", ", ".join(f"{n} {action}" for action, n in counts.items())),
        ("Expected cost", f"{plan.expected_cost.sum():.0f} cycles of life"),
        ("Applicability", applicability_text(assessment)),
        (
            "Lower tail",
            assessment.calibration.summary() if assessment.calibration else "as the model gives it",
        ),
        ("Alarm rule", alarm_rule_summary(assessment, alarm_rule)["summary"]),
        ("Created", datetime.now(UTC).isoformat(timespec="seconds")),
    ]
    metrics = []
    for action in ACTIONS:
        chosen = plan.action == action
        p = plan.p_fail[chosen]
        metrics.append((action, str(int(chosen.sum())), f"{p.mean():.0%}" if len(p) else "-"))
    rows = assessment.rows(plan, alarm_rule)
    lines = [_engine_line(rows[i], plan.horizon) for i in plan.risk_order()]
    versions = [
        (
            record.label,
            f"stage {record.stage}, artifact sha256 {record.artifact_sha256}, created {record.created}",
        ),
        ("trained on", f"{record.lineage.get('source')} (data hash {record.lineage.get('data_hash')})"),
    ]
    for version_id in assessment.anomaly_versions:
        anomaly = ws.registry.get(version_id)
        versions.append((anomaly.label, f"stage {anomaly.stage}, artifact sha256 {anomaly.artifact_sha256}"))
    files = [
        (
            f.path,
            f"{f.units} units, data hash {f.data_hash}, file sha256 {f.file_sha256}, "
            + (f"drifted: {', '.join(f.drifted) or 'none'}" if f.drift_checked else "drift not measured")
            + "".join(f"; {verdict_line(a)}" for a in f.applicability),
        )
        for f in assessment.files
    ]
    rule = (
        "Each engine gets the cheapest of: service now (a visit plus the remaining life thrown away), a "
        "visit at cycle s within H (a failure before s costs the failure, otherwise the visit plus the life "
        "left at s), or monitoring (a failure within H costs the failure, otherwise one later visit). "
        "P(failure within H) comes from the model's quantiles with a piecewise-linear CDF, its lower tail "
        "widened, and the shape below the lowest quantile chosen, as the version's held-out training engines "
        "(cut at random cycles) ask."
    )
    return ReportContent(
        title=f"Fleet report: {len(assessment)} engines",
        summary=summary,
        metrics=metrics,
        plots=[fleet_chart(assessment, plan)],
        sections=[("Engines, most urgent first", lines), ("Versions", versions), ("Data", files)],
        notes=[rule],
        metrics_title="The plan",
        metrics_header=("recommendation", "engines", f"mean P(fail within {plan.horizon})"),
    )


def export_fleet_report(
    ws: Workspace,
    assessment: FleetAssessment,
    plan: MaintenancePlan,
    out_path: Path | str,
    fmt: str | None = None,
    *,
    alarm_rule: AlarmRule = DEFAULT_RULE,
) -> Path:
    """Write the fleet report (``fmt`` html or pdf; default from the suffix, else html) with each engine's
    alarm under ``alarm_rule``; returns the path."""
    out_path = Path(out_path).expanduser()
    fmt = (fmt or ("pdf" if out_path.suffix.lower() == ".pdf" else "html")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"Report format '{fmt}' is not supported; expected html or pdf.")
    content = fleet_content(ws, assessment, plan, alarm_rule)
    write_content(content, out_path, fmt)
    return out_path


__all__ = ["applicability_text", "export_fleet_report", "fleet_chart", "fleet_content"]
