"""Training status across equipment: one line per (plugin, target)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import peewee

from turbofan_desktop.registry.records import StatusRow


def human_age(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``5 h``, ``3 d``: how stale a model is, at a glance."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(max(seconds, 0))} s"


def _age_seconds(created: str, now: datetime) -> float | None:
    try:
        then = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)


def _rows_at_versions(ModelVersion: Any, newest: peewee.ModelSelect) -> dict[tuple[str, str], Any]:
    """The rows named by a grouped (plugin, target, v) query, keyed by (plugin, target).

    Only the small columns are read: the overview must not load training histories.
    """
    newest = newest.alias("newest")
    query = ModelVersion.select(*_small_columns(ModelVersion)).join(
        newest,
        on=(
            (ModelVersion.plugin == newest.c.plugin)
            & (ModelVersion.target == newest.c.target)
            & (ModelVersion.version == newest.c.v)
        ),
    )
    return {(row.plugin, row.target): row for row in query}


def _newest_per_group(ModelVersion: Any, where=None) -> peewee.ModelSelect:
    query = ModelVersion.select(
        ModelVersion.plugin, ModelVersion.target, peewee.fn.MAX(ModelVersion.version).alias("v")
    )
    if where is not None:
        query = query.where(where)
    return query.group_by(ModelVersion.plugin, ModelVersion.target)


def _small_columns(ModelVersion: Any) -> tuple[Any, ...]:
    names = ("id", "plugin", "target", "version", "status", "stage", "created", "validation_performed")
    return tuple(getattr(ModelVersion, name) for name in names)


def training_status(ModelVersion: Any) -> list[StatusRow]:  # noqa: N803 - a table class
    """Latest version, production version, last trained, validated and age per (plugin, target),
    read from one registry's ``model_versions`` table.

    A few grouped, index-covered queries whatever the number of versions.
    """
    counts = {
        (row.plugin, row.target): row.n
        for row in ModelVersion.select(
            ModelVersion.plugin, ModelVersion.target, peewee.fn.COUNT(ModelVersion.id).alias("n")
        )
        .group_by(ModelVersion.plugin, ModelVersion.target)
        .objects()
    }
    latest_rows = _rows_at_versions(ModelVersion, _newest_per_group(ModelVersion))
    # "last trained" is the newest successfully trained version, which may be older than the latest row
    trained_rows = _rows_at_versions(
        ModelVersion, _newest_per_group(ModelVersion, ModelVersion.status == "trained")
    )
    production = {
        (row.plugin, row.target): row
        for row in ModelVersion.select(*_small_columns(ModelVersion)).where(
            ModelVersion.stage == "production"
        )
    }
    now = datetime.now(UTC)
    lines = []
    for key in sorted(counts, key=lambda k: (k[1], k[0])):
        latest = latest_rows.get(key)
        prod = production.get(key)
        trained = trained_rows.get(key)
        last_trained = trained.created if trained else None
        age = _age_seconds(last_trained, now) if last_trained else None
        lines.append(
            StatusRow(
                plugin=key[0],
                target=key[1],
                versions=counts[key],
                latest_id=latest.id if latest else None,
                latest_version=latest.version if latest else None,
                latest_status=latest.status if latest else None,
                latest_stage=latest.stage if latest else None,
                validated=bool(latest.validation_performed) if latest else False,
                production_id=prod.id if prod else None,
                production_version=prod.version if prod else None,
                production_validated=bool(prod.validation_performed) if prod else None,
                last_trained=last_trained,
                age_seconds=age,
                age=human_age(age),
            )
        )
    return lines
