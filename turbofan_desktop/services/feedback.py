"""User feedback on detected anomalies: labels per time range, and the precision / recall they imply.

A user marks a detected range as a true anomaly or a false alarm, or marks a range the model missed.
Labels live in the registry (``feedback_labels``) per version, on the data's own time axis.
:func:`feedback_metrics` turns them into the version's precision and recall as judged by its users:
``precision = true / (true + false)`` over labelled detections, ``recall = true / (true + missed)``.
They can be appended to the version's KPI history (kind ``"feedback"``).

Pure Python: no Qt, no torch.
"""

from __future__ import annotations

from typing import Any

from turbofan_desktop.errors import ConfigError

TRUE_ANOMALY = "true_anomaly"
FALSE_ALARM = "false_alarm"
MISSED_ANOMALY = "missed_anomaly"
LABELS = (TRUE_ANOMALY, FALSE_ALARM, MISSED_ANOMALY)
LABEL_TEXT = {TRUE_ANOMALY: "true anomaly", FALSE_ALARM: "false alarm", MISSED_ANOMALY: "missed anomaly"}
FEEDBACK_KIND = "feedback"


def _plain(value: Any) -> Any:
    """Numbers and strings as JSON keeps them (numpy scalars and timestamps would not round-trip)."""
    item = getattr(value, "item", None)
    if callable(item):
        value = item()
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else value


def mark_range(ws, version_id: int, *, unit: Any, start: Any, end: Any, label: str, note: str = "") -> int:
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
    for old in ws.registry.list_feedback(version_id):
        if old["unit"] == unit and old["start"] == start and old["end"] == end:
            ws.registry.delete_feedback(old["id"])
    return ws.registry.add_feedback(version_id, unit=unit, start=start, end=end, label=label, note=note)


def label_for(labels: list[dict[str, Any]], unit: Any, start: Any, end: Any) -> str | None:
    """The label stored for exactly this unit and range, or None."""
    unit, start, end = _plain(unit), _plain(start), _plain(end)
    for entry in reversed(labels):
        if entry["unit"] == unit and entry["start"] == start and entry["end"] == end:
            return entry["label"]
    return None


def feedback_metrics(ws, version_id: int, *, record: bool = False) -> dict[str, Any]:
    """Counts per label and the implied precision / recall (None when undefined); with ``record``
    the numbers are appended to the version's KPI history."""
    labels = ws.registry.list_feedback(version_id)
    counts = {name: sum(1 for entry in labels if entry["label"] == name) for name in LABELS}
    tp, fp, fn = counts[TRUE_ANOMALY], counts[FALSE_ALARM], counts[MISSED_ANOMALY]
    metrics: dict[str, Any] = {
        "feedback_precision": tp / (tp + fp) if tp + fp else None,
        "feedback_recall": tp / (tp + fn) if tp + fn else None,
        "labels": len(labels),
        **counts,
    }
    if record and labels:
        ws.registry.record_metrics(version_id, kind=FEEDBACK_KIND, metrics=metrics)
    return metrics


def report_rows(ws, version_id: int) -> list[tuple[str, str]]:
    """(what, detail) rows for a report: each label, then the implied precision and recall."""
    rows = []
    for entry in ws.registry.list_feedback(version_id):
        text = LABEL_TEXT.get(entry["label"], entry["label"])
        note = f" - {entry['note']}" if entry.get("note") else ""
        rows.append((f"unit {entry['unit']} {entry['start']}-{entry['end']}", f"{text}{note}"))
    if rows:
        metrics = feedback_metrics(ws, version_id)
        shown = {k: "-" if v is None else f"{v:.2f}" for k, v in metrics.items() if k.startswith("feedback_")}
        rows.append(
            ("precision / recall from labels", f"{shown['feedback_precision']} / {shown['feedback_recall']}")
        )
    return rows
