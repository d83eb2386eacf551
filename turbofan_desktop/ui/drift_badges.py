"""Drift badges for a newly opened file: the check run as a job, and what the panels show of it.

When a file loads, :func:`run_auto_drift` (a job body, worker thread) checks it against the versions
:func:`~turbofan_desktop.services.monitoring.monitored_versions` picks — at most one per model
plugin — and returns one :class:`DriftCheck` per version that could be checked. The window turns
those into :class:`DriftBadge` s: per sensor for the data panel (:func:`sensor_badges`) and per
version for the models panel (:func:`version_badges`, shown for the file selected in the data panel
by :class:`~turbofan_desktop.ui.drift_view.DriftController`).

No Qt and no pyqtgraph here, so the data panel can use it at start-up without loading the plots.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from turbofan_desktop.services.session import DriftCheck

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset, SensorDrift
    from turbofan_desktop.ui.jobs import ShouldStop

log = logging.getLogger(__name__)

DRIFT_TEXT = "DRIFT"
OK_TEXT = "ok"


@dataclass(frozen=True)
class DriftBadge:
    """What a row shows: ``drifted`` draws the badge; ``tooltip`` always says the numbers."""

    drifted: bool
    tooltip: str

    @property
    def text(self) -> str:
        return DRIFT_TEXT if self.drifted else OK_TEXT


def run_auto_drift(
    workspace: Workspace,
    version_ids: Sequence[int],
    dataset: Dataset,
    *,
    should_stop: ShouldStop | None = None,
) -> list[DriftCheck]:
    """Job body: the stored drift check of ``dataset`` against each version that can be checked.

    A version that cannot be (no statistics, no shared sensor, a registry problem) is skipped and
    logged: a background check must never turn opening a file into an error.
    """
    from turbofan_desktop.errors import TurbofanError
    from turbofan_desktop.services import models
    from turbofan_desktop.services.monitoring import check_drift

    checks = []
    for version_id in version_ids:
        if should_stop is not None and should_stop():
            break
        try:
            report = check_drift(workspace, version_id, dataset)
            label = models.get_version(workspace, version_id).label
        except TurbofanError as exc:
            log.info("drift check against version %s skipped: %s", version_id, exc)
            continue
        if report is not None:
            checks.append(DriftCheck(int(version_id), str(label), report))
    return checks


def _number(value: float | None, spec: str) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _sensor_line(check: DriftCheck, result: SensorDrift) -> str:
    verdict = "DRIFT" if result.drift else "no drift"
    shift = result.shift_std
    moved = f", mean shift {_number(shift, '+.2f')} std" if shift is not None else ""
    return (
        f"{verdict} against {check.label}: PSI {_number(result.psi, '.3f')}, "
        f"KS p-value {_number(result.ks_pvalue, '.2g')}{moved}"
    )


def sensor_badges(checks: Sequence[DriftCheck]) -> dict[str, DriftBadge]:
    """Per sensor checked by any version: drifted when any version says so; the tooltip lists
    every version's PSI and KS p-value. Sensors no version knows get no entry."""
    lines: dict[str, list[str]] = {}
    drifted: dict[str, bool] = {}
    for check in checks:
        for name, result in check.report.sensors.items():
            lines.setdefault(name, []).append(_sensor_line(check, result))
            drifted[name] = drifted.get(name, False) or bool(result.drift)
    badges = {}
    for name, sensor_lines in lines.items():
        hint = "\nDouble-click to see both distributions." if drifted[name] else ""
        badges[name] = DriftBadge(drifted[name], f"{name}\n" + "\n".join(sensor_lines) + hint)
    return badges


def version_badges(checks: Sequence[DriftCheck], file_name: str) -> dict[int, DriftBadge]:
    """Per checked version: drifted when any sensor of ``file_name`` drifted against it."""
    badges = {}
    for check in checks:
        report = check.report
        if report.drifted:
            details = ", ".join(
                f"{name} (PSI {_number(report.sensors[name].psi, '.2f')}, "
                f"KS p {_number(report.sensors[name].ks_pvalue, '.2g')})"
                for name in report.drifted
            )
            text = f"{file_name}: drift in {len(report.drifted)} of {len(report.sensors)} sensors: {details}"
        else:
            text = f"{file_name}: no drift in {len(report.sensors)} sensors"
        badges[check.version_id] = DriftBadge(bool(report.drifted), f"{text}\n(against {check.label})")
    return badges


__all__ = [
    "DriftBadge",
    "DriftCheck",
    "run_auto_drift",
    "sensor_badges",
    "version_badges",
]
