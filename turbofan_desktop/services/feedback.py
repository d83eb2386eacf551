"""User feedback on detected anomalies: labels per time range, and the precision / recall they imply.

A user marks a detected range as a true anomaly or a false alarm, or marks a range the model missed.
Labels live in the registry (``feedback_labels``) per version, on the data's own time axis.
:func:`feedback_metrics` turns them into the version's precision and recall as judged by its users:
``precision = true / (true + false)`` over labelled detections, ``recall = true / (true + missed)``.
They can be appended to the version's KPI history (kind ``"feedback"``).

Each label also names the data it was made on (:func:`data_key`: the file's sha256, else the content
hash), so labels reach only the same data: :func:`labels_for_data` gathers the labels of every version
of a (plugin, target) on one dataset — the ground truth a re-trained version is judged by, and what
Telemanom's ``exclude_labelled`` leaves out of its threshold statistics. Labels stored before data keys
existed (``data_key`` None) count for any data.

:func:`detection_kpis` judges a detection against those labels, range by range (as the Telemanom
benchmark scores): ground truth = ranges labelled true or missed anomaly; a ground-truth range is a
true positive when any detected range overlaps it, else a false negative; a detected range is a false
positive when it overlaps a range labelled false alarm and no ground truth. Detected ranges the user
has not judged count for neither side (``unjudged``). Only units with labels are judged.
:func:`record_detection_kpis` appends precision / recall / F0.5 to the version's KPI history (kind
``"detection"``), which :func:`~turbofan_desktop.services.monitoring.kpi_warning` watches too.

Pure Python: no Qt, no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.registry.records import LabelRecord
from turbofan_desktop.services._common import record_metrics_if_writable

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

TRUE_ANOMALY = "true_anomaly"
FALSE_ALARM = "false_alarm"
MISSED_ANOMALY = "missed_anomaly"
LABELS = (TRUE_ANOMALY, FALSE_ALARM, MISSED_ANOMALY)
LABEL_TEXT = {TRUE_ANOMALY: "true anomaly", FALSE_ALARM: "false alarm", MISSED_ANOMALY: "missed anomaly"}
FEEDBACK_KIND = "feedback"
DETECTION_KIND = "detection"
GROUND_TRUTH = (TRUE_ANOMALY, MISSED_ANOMALY)


def _plain(value: Any) -> Any:
    """Numbers and strings as JSON keeps them (numpy scalars and timestamps would not round-trip)."""
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else value


def data_key(dataset: Any) -> str | None:
    """What names the data a label is on: the source file's sha256, else the content hash."""
    if dataset is None:
        return None
    return getattr(dataset, "file_sha256", None) or getattr(dataset, "data_hash", None)


def mark_range(
    ws: Workspace,
    version_id: int,
    *,
    unit: Any,
    start: Any,
    end: Any,
    label: str,
    note: str = "",
    data_key: str | None = None,
) -> int:
    """Store one label; replaces an earlier label of the same version, unit and range."""
    if label not in LABELS:
        raise ConfigError(f"Unknown feedback label '{label}' (choose one of {', '.join(LABELS)}).")
    unit, start, end = _plain(unit), _plain(start), _plain(end)
    try:
        if start is not None and end is not None and start > end:
            raise ConfigError(f"A feedback range must not end ({end}) before it starts ({start}).")
    except TypeError:
        raise ConfigError(
            f"A feedback range needs comparable start and end, got {start!r} and {end!r}."
        ) from None
    clear_label(ws, version_id, unit=unit, start=start, end=end)
    return ws.registry.add_feedback(
        version_id, unit=unit, start=start, end=end, label=label, note=note, data_key=data_key
    )


def clear_label(ws: Workspace, version_id: int, *, unit: Any, start: Any, end: Any) -> int:
    """Remove the labels of this version on exactly this unit and range; returns how many went."""
    unit, start, end = _plain(unit), _plain(start), _plain(end)
    gone = 0
    for old in ws.registry.list_feedback(version_id):
        if old.unit == unit and old.start == start and old.end == end:
            ws.registry.delete_feedback(old.id)
            gone += 1
    return gone


def version_labels(ws: Workspace, version_id: int) -> list[LabelRecord]:
    """The labels stored on this very version, oldest first."""
    return ws.registry.list_feedback(int(version_id))


def labels_for_data(ws: Workspace, version_id: int, dataset: Any) -> list[LabelRecord]:
    """Labels of every version of this version's (plugin, target) made on ``dataset`` (or on
    unnamed data), oldest first; a later label of the same unit and range wins over an earlier one."""
    record = ws.registry.get(int(version_id))
    key = data_key(dataset)
    latest: dict[tuple[str, str, str], LabelRecord] = {}
    for entry in ws.registry.list_feedback_for(record.plugin, record.target):
        if entry.data_key not in (None, key):
            continue
        latest[(str(entry.unit), str(entry.start), str(entry.end))] = entry
    return sorted(latest.values(), key=lambda e: e.id)


def _bounds(start: Any, end: Any) -> tuple[float, float] | None:
    """A range as comparable numbers (timestamps as epoch seconds); None when it has no bounds."""
    if start is None or end is None:
        return None
    try:
        return float(start), float(end)
    except (TypeError, ValueError):
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(start)).timestamp(), datetime.fromisoformat(str(end)).timestamp()
    except ValueError:
        return None


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def f_beta(precision: float | None, recall: float | None, beta: float = 0.5) -> float | None:
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def detection_kpis(detection: Any, labels: list[LabelRecord]) -> dict[str, Any] | None:
    """Precision / recall / F0.5 of ``detection`` (a DetectionResult) judged by ``labels`` (see the
    module text); None when no detected unit has a label."""
    tp = fp = fn = unjudged = units = 0
    for unit, found in detection.units.items():
        mine = [e for e in labels if str(e.unit) == str(unit)]
        if not mine:
            continue
        units += 1
        truth = [b for e in mine if e.label in GROUND_TRUTH and (b := _bounds(e.start, e.end))]
        dismissed = [b for e in mine if e.label == FALSE_ALARM and (b := _bounds(e.start, e.end))]
        detected = [b for r in found.anomalies if (b := _bounds(_plain(r.start), _plain(r.end)))]
        hit = [any(_overlaps(t, d) for d in detected) for t in truth]
        tp += sum(hit)
        fn += len(hit) - sum(hit)
        for d in detected:
            if any(_overlaps(d, t) for t in truth):
                continue
            if any(_overlaps(d, f) for f in dismissed):
                fp += 1
            else:
                unjudged += 1
    if not units:
        return None
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {
        "precision": precision,
        "recall": recall,
        "f0_5": f_beta(precision, recall),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "unjudged_detections": unjudged,
        "labelled_units": units,
    }


def record_detection_kpis(
    ws: Workspace, version_id: int, detection: Any, dataset: Any
) -> dict[str, Any] | None:
    """Judge ``detection`` by the labels on ``dataset`` and append the KPIs to the version's history
    (kind ``"detection"``); returns them, or None (nothing recorded) when no detected unit has labels."""
    kpis = detection_kpis(detection, labels_for_data(ws, version_id, dataset))
    if kpis is not None:
        record_metrics_if_writable(
            ws, version_id, kind=DETECTION_KIND, metrics=kpis, data_hash=data_key(dataset)
        )
    return kpis


def label_for(labels: list[LabelRecord], unit: Any, start: Any, end: Any) -> str | None:
    """The label stored for exactly this unit and range, or None."""
    unit, start, end = _plain(unit), _plain(start), _plain(end)
    for entry in reversed(labels):
        if entry.unit == unit and entry.start == start and entry.end == end:
            return entry.label
    return None


def feedback_metrics(ws: Workspace, version_id: int, *, record: bool = False) -> dict[str, Any]:
    """Counts per label and the implied precision / recall (None when undefined); with ``record``
    the numbers are appended to the version's KPI history."""
    labels = ws.registry.list_feedback(version_id)
    counts = {name: sum(1 for entry in labels if entry.label == name) for name in LABELS}
    tp, fp, fn = counts[TRUE_ANOMALY], counts[FALSE_ALARM], counts[MISSED_ANOMALY]
    metrics: dict[str, Any] = {
        "feedback_precision": tp / (tp + fp) if tp + fp else None,
        "feedback_recall": tp / (tp + fn) if tp + fn else None,
        "labels": len(labels),
        **counts,
    }
    if record and labels:
        record_metrics_if_writable(ws, version_id, kind=FEEDBACK_KIND, metrics=metrics)
    return metrics


def report_rows(ws: Workspace, version_id: int) -> list[tuple[str, str]]:
    """(what, detail) rows for a report: each label, then the implied precision and recall."""
    rows = []
    for entry in ws.registry.list_feedback(version_id):
        text = LABEL_TEXT.get(entry.label, entry.label)
        note = f" - {entry.note}" if entry.note else ""
        rows.append((f"unit {entry.unit} {entry.start}-{entry.end}", f"{text}{note}"))
    if rows:
        metrics = feedback_metrics(ws, version_id)
        shown = {k: "-" if v is None else f"{v:.2f}" for k, v in metrics.items() if k.startswith("feedback_")}
        rows.append(
            ("precision / recall from labels", f"{shown['feedback_precision']} / {shown['feedback_recall']}")
        )
    return rows
