"""Monitoring a registered model: data drift against its training data and its KPIs over time.

* **Drift** — every version trained through :mod:`~turbofan_desktop.services.training` keeps a
  compact summary of its training split (:func:`turbofan_desktop.data.drift.training_statistics`)
  in its artifact folder, as ``training_statistics.json``: covered by the artifact's sha256, removed
  with the version, and never decoded when versions are listed (a version row stays small).
  ``provenance.training_stats`` holding the summary itself is read too (hand-registered versions).
  :func:`drift` compares a dataset with it under the thresholds of the settings and appends the
  result to the version's history (``metric_history``, kind ``"drift"``): the report's headline
  numbers first, then the per-sensor verdicts. :func:`check_drift` is the variant for checks that
  ride along (detecting, opening a file): None instead of an error when drift cannot be measured.
  :func:`monitored_versions` picks what a newly opened file is checked against (one per plugin).
* **KPIs** — :func:`kpi_history` is the version's validation / detection history without the drift
  entries; :func:`kpi_warning` says when the latest validation is worse than the first one *on the
  same data* (at registration when that was the held-out units again) by more than
  ``Settings.kpi_warning_margin`` (relative), in any metric whose better direction is known from its
  name. Metrics of different data are never compared (:func:`comparable_baseline`).

Pure Python: no Qt, no torch.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.drift import STATS_FORMAT, DriftReport, compare, training_statistics
from turbofan_desktop.errors import IncompatibleDataError, NotFoundError
from turbofan_desktop.registry.records import MetricPoint
from turbofan_desktop.services._common import record_metrics_if_writable

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

STATS_FILE = "training_statistics.json"
DRIFT_KIND = "drift"
VALIDATION_KIND = "validation"
DETECTION_KIND = "detection"  # detections judged by user labels (services.feedback)

# Metric names whose better direction is known: substrings, checked in order (first match wins).
_LOWER_IS_BETTER = ("mse", "rmse", "mae", "mape", "mase", "loss", "error", "rul_score", "false_alarm")
_HIGHER_IS_BETTER = ("precision", "recall", "f1", "f0_5", "f05", "fbeta", "accuracy", "auc", "r2")


# -- training statistics -------------------------------------------------------------------------------
_STATS_CACHE: dict[str, str] = {}  # data hash -> JSON text; a job's targets share one training split
_STATS_CACHE_SIZE = 4


def _statistics_text(train: Dataset) -> str:
    key = train.data_hash
    text = _STATS_CACHE.get(key)
    if text is None:
        text = json.dumps(training_statistics(train), allow_nan=False, separators=(",", ":"))
        while len(_STATS_CACHE) >= _STATS_CACHE_SIZE:
            _STATS_CACHE.pop(next(iter(_STATS_CACHE)))
        _STATS_CACHE[key] = text
    return text


def with_training_statistics(
    write_artifact: Callable[[Path], None], train: Dataset
) -> Callable[[Path], None]:
    """Wrap a model's ``save`` so the artifact folder also holds the training data's statistics.

    The registry stages and hashes whatever the writer leaves in the folder, so the statistics are
    part of the verified artifact. Computed when the wrapper is made, once per training split (the
    targets of one job share it).
    """
    text = _statistics_text(train)

    def write(directory: Path) -> None:
        write_artifact(directory)
        (Path(directory) / STATS_FILE).write_text(text, encoding="utf-8")

    return write


def reference_statistics(ws: Workspace, version_id: int) -> dict[str, Any]:
    """The training statistics of a version: from ``provenance.training_stats`` or its artifact."""
    record = ws.registry.get(version_id)
    stored = record.provenance.training_stats
    if isinstance(stored, dict) and stored.get("format") == STATS_FORMAT:
        return stored
    path = Path(record.artifact_path) / STATS_FILE if record.artifact_path else None
    if path is None or not path.is_file():
        raise NotFoundError(
            f"{record.label} was registered without statistics of its training data, so drift cannot "
            "be measured; retrain it to monitor drift."
        )
    ws.registry.verify_artifact(record)  # the sha256 covers the statistics file too
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IncompatibleDataError(f"{path}: the training statistics cannot be read ({exc}).") from None
    if not isinstance(stats, dict) or stats.get("format") != STATS_FORMAT:
        raise IncompatibleDataError(f"{path}: the training statistics are not in the format {STATS_FORMAT}.")
    return stats


def has_reference_statistics(ws: Workspace, version_id: int) -> bool:
    """Whether :func:`drift` can run for this version (cheap: no hashing)."""
    record = ws.registry.get(version_id)
    stored = record.provenance.training_stats
    if isinstance(stored, dict) and stored.get("format") == STATS_FORMAT:
        return True
    return bool(record.artifact_path) and (Path(record.artifact_path) / STATS_FILE).is_file()


# -- drift -----------------------------------------------------------------------------------------------
def drift_summary(report: DriftReport) -> dict[str, Any]:
    """What the history keeps of a report: headline numbers first (history views show the first
    few), then each sensor's verdict."""
    payload = report.to_dict()
    psis = [s["psi"] for s in payload["sensors"].values() if s["psi"] is not None]
    pvalues = [s["ks_pvalue"] for s in payload["sensors"].values() if s["ks_pvalue"] is not None]
    return {
        "drifted_sensors": len(report.drifted),
        "max_psi": max(psis) if psis else None,
        "min_ks_pvalue": min(pvalues) if pvalues else None,
        "rows": report.rows,
        "drifted": report.drifted,
        "thresholds": payload["thresholds"],
        "sensors": {
            name: {"psi": s["psi"], "ks_pvalue": s["ks_pvalue"], "drift": s["drift"]}
            for name, s in payload["sensors"].items()
        },
    }


def drift(ws: Workspace, version_id: int, dataset: Dataset, *, store: bool = True) -> DriftReport:
    """Per-sensor drift of ``dataset`` against the version's training data; stored unless ``store``
    is false. Thresholds: ``Settings.drift_psi_threshold`` and ``Settings.drift_ks_pvalue``."""
    stats = reference_statistics(ws, version_id)
    report = compare(
        stats,
        dataset,
        psi_threshold=ws.settings.drift_psi_threshold,
        ks_pvalue=ws.settings.drift_ks_pvalue,
    )
    if store:
        record_metrics_if_writable(
            ws, version_id, kind=DRIFT_KIND, metrics=drift_summary(report), data_hash=report.data_hash
        )
    return report


def check_drift(
    ws: Workspace, version_id: int, dataset: Dataset, *, store: bool = True
) -> DriftReport | None:
    """Drift of ``dataset`` against the version when it can be measured, else None — never an error.

    For checks that ride along with other work (detecting, opening a file): a version registered
    without training statistics, data the statistics cannot be applied to (say a regime model whose
    setting columns the file lacks) or a file sharing no sensor with the training data gives None,
    and nothing is stored. A report with at least one sensor is stored unless ``store`` is false.
    """
    if not has_reference_statistics(ws, version_id):
        return None
    try:
        report = drift(ws, version_id, dataset, store=False)
    except (NotFoundError, IncompatibleDataError) as exc:
        log.info("no drift check of version %s: %s", version_id, exc)
        return None
    if not report.sensors:
        return None
    if store:
        record_metrics_if_writable(
            ws, version_id, kind=DRIFT_KIND, metrics=drift_summary(report), data_hash=report.data_hash
        )
    return report


_PREFERRED_STAGES = ("production", "staging")


def monitored_versions(ws: Workspace, dataset: Dataset, *, limit: int = 500) -> list[int]:
    """The versions a newly opened file is checked against: at most one per model plugin.

    Per plugin, among usable versions (trained, with training statistics, and whose target the file
    has; a ``*`` version qualifies and is compared on the sensors both share): the newest production
    version, else the newest staging one, else the newest. Plugins in the order of their chosen
    version, newest first.
    """
    columns = set(dataset.frame.columns)
    chosen: dict[str, tuple[int, Any]] = {}  # plugin -> (rank of its stage, record)
    for record in ws.registry.list_versions(limit=limit):  # newest first
        if record.status in ("training", "failed"):
            continue
        if record.target != "*" and record.target not in columns:
            continue
        rank = _PREFERRED_STAGES.index(record.stage) if record.stage in _PREFERRED_STAGES else 2
        held = chosen.get(record.plugin)
        if held is not None and held[0] <= rank:
            continue  # a newer version of at least this stage is already chosen
        if has_reference_statistics(ws, record.id):
            chosen[record.plugin] = (rank, record)
    records = sorted((record for _, record in chosen.values()), key=lambda r: -int(r.id))
    return [int(record.id) for record in records]


def drift_history(ws: Workspace, version_id: int) -> list[MetricPoint]:
    """Stored drift checks of the version, oldest first (``metrics`` as in :func:`drift_summary`)."""
    return [e for e in ws.registry.metric_history(version_id) if e.kind == DRIFT_KIND]


def latest_drift(ws: Workspace, version_id: int) -> MetricPoint | None:
    """The newest stored drift check, or None (for a badge)."""
    history = drift_history(ws, version_id)
    return history[-1] if history else None


# -- KPIs ------------------------------------------------------------------------------------------------
def kpi_history(ws: Workspace, version_id: int) -> list[MetricPoint]:
    """The version's KPI entries (validation, detection with ground truth, ...), oldest first."""
    return [e for e in ws.registry.metric_history(version_id) if e.kind != DRIFT_KIND]


def metric_direction(name: str) -> int:
    """-1 when a smaller value is better, +1 when a larger one is, 0 when the name does not say."""
    lowered = name.lower()
    for pattern in _LOWER_IS_BETTER:
        if pattern in lowered:
            return -1
    for pattern in _HIGHER_IS_BETTER:
        if pattern in lowered:
            return 1
    return 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def kpi_changes(baseline: dict[str, Any], latest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per metric of known direction in both: ``worse`` = relative worsening (negative: better)."""
    changes = []
    for name, before in baseline.items():
        direction = metric_direction(str(name))
        a, b = _number(before), _number(latest.get(name))
        if direction == 0 or a is None or b is None:
            continue
        delta = (b - a) * -direction  # > 0: worse
        if a != 0:
            worse = delta / abs(a)
        else:
            worse = 0.0 if delta == 0 else math.copysign(math.inf, delta)
        changes.append({"metric": str(name), "registered": a, "latest": b, "worse": worse})
    return changes


def kpi_warning(ws: Workspace, version_id: int, margin: float | None = None) -> str | None:
    """A sentence when the latest validation is worse than the one at registration by more than
    ``margin`` (relative; default ``Settings.kpi_warning_margin``) in some metric; else None.
    Detections judged by user labels (kind ``"detection"``) are compared the same way, the first
    judged detection being the baseline."""
    margin = ws.settings.kpi_warning_margin if margin is None else float(margin)
    history = kpi_history(ws, version_id)
    for kind, what, since in (
        (VALIDATION_KIND, "validation", "at registration"),
        (DETECTION_KIND, "detection judged by labels", "in the first judged detection"),
    ):
        entries = [e for e in history if _entry(e, "kind") == kind]
        sentence = _kind_warning(ws, version_id, entries, margin, what, since)
        if sentence:
            return sentence
    return None


def _entry(entry: Any, name: str) -> Any:
    """A history entry's field, whether the registry hands out dicts or typed points."""
    return entry.get(name) if isinstance(entry, dict) else getattr(entry, name, None)


def comparable_baseline(entries: list[Any]) -> tuple[Any, Any] | None:
    """(baseline, latest): the latest entry and the first one computed on the *same* data (same
    content hash). Metrics of different data are never compared: a test-file RMSE says nothing
    about a held-out RMSE. None when the latest has no data hash or nothing earlier shares it."""
    if len(entries) < 2:
        return None
    latest = entries[-1]
    data_hash = _entry(latest, "data_hash")
    if not data_hash:
        return None
    same = [e for e in entries[:-1] if _entry(e, "data_hash") == data_hash]
    return (same[0], latest) if same else None


def _kind_warning(
    ws: Workspace, version_id: int, entries: list[Any], margin: float, what: str, since: str
) -> str | None:
    pair = comparable_baseline(entries)
    if pair is None:
        return None
    baseline, latest = pair
    changes = kpi_changes(dict(_entry(baseline, "metrics") or {}), dict(_entry(latest, "metrics") or {}))
    worst = max(changes, key=lambda c: c["worse"], default=None)
    if worst is None or worst["worse"] <= margin:
        return None
    from turbofan_desktop.services.naming import data_description

    record = ws.registry.get(version_id)
    on = data_description(ws, record, _entry(latest, "data_hash")).text
    if baseline is not entries[0]:
        since = f"in the first {what} on the same data ({str(_entry(baseline, 'created') or '')[:10]})"
    amount = "far" if math.isinf(worst["worse"]) else f"{worst['worse']:.0%}"
    return (
        f"{record.label}: {worst['metric']} is {worst['latest']:.4g} in the latest {what} "
        f"({str(_entry(latest, 'created') or '')[:10]}, on {on}), {amount} worse than "
        f"{worst['registered']:.4g} {since} (warning margin {margin:.0%})."
    )


def version_health(ws: Workspace, version_id: int) -> dict[str, Any]:
    """What a badge needs: the KPI warning (or None) and the newest drift check (or None) as
    ``{"drifted": [...], "created", "data_hash"}``."""
    latest = latest_drift(ws, version_id)
    drift_state = None
    if latest is not None:
        metrics = dict(latest.metrics or {})
        drift_state = {
            "drifted": list(metrics.get("drifted") or []),
            "created": latest.created,
            "data_hash": latest.data_hash,
        }
    return {"kpi_warning": kpi_warning(ws, version_id), "drift": drift_state}
