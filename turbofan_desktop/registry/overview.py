"""Training status across equipment: one line per (plugin, target)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import peewee

from turbofan_desktop.registry.schema import ModelVersion


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


def training_status() -> list[dict[str, Any]]:
    """Latest version, production version, last trained, validated and age per (plugin, target).

    Three grouped queries whatever the number of versions: counts and newest version numbers, the
    rows of those newest versions, and the production rows.
    """
    groups = {
        (row.plugin, row.target): (row.latest, row.n)
        for row in ModelVersion.select(
            ModelVersion.plugin,
            ModelVersion.target,
            peewee.fn.MAX(ModelVersion.version).alias("latest"),
            peewee.fn.COUNT(ModelVersion.id).alias("n"),
        )
        .group_by(ModelVersion.plugin, ModelVersion.target)
        .objects()
    }
    latest_rows: dict[tuple[str, str], ModelVersion] = {}
    newest = (
        ModelVersion.select(
            ModelVersion.plugin, ModelVersion.target, peewee.fn.MAX(ModelVersion.version).alias("v")
        )
        .group_by(ModelVersion.plugin, ModelVersion.target)
        .alias("newest")
    )
    query = ModelVersion.select().join(
        newest,
        on=(
            (ModelVersion.plugin == newest.c.plugin)
            & (ModelVersion.target == newest.c.target)
            & (ModelVersion.version == newest.c.v)
        ),
    )
    for row in query:
        latest_rows[(row.plugin, row.target)] = row
    production = {
        (row.plugin, row.target): row
        for row in ModelVersion.select().where(ModelVersion.stage == "production")
    }
    # "last trained" is the newest successfully trained version, which may be older than the latest row
    trained = {
        (row.plugin, row.target): row.created
        for row in ModelVersion.select(
            ModelVersion.plugin, ModelVersion.target, peewee.fn.MAX(ModelVersion.created).alias("created")
        )
        .where(ModelVersion.status == "trained")
        .group_by(ModelVersion.plugin, ModelVersion.target)
        .objects()
    }
    now = datetime.now(UTC)
    lines = []
    for key in sorted(groups, key=lambda k: (k[1], k[0])):
        latest = latest_rows.get(key)
        prod = production.get(key)
        last_trained = trained.get(key)
        age = _age_seconds(last_trained, now) if last_trained else None
        lines.append(
            {
                "plugin": key[0],
                "target": key[1],
                "versions": groups[key][1],
                "latest_id": latest.id if latest else None,
                "latest_version": latest.version if latest else None,
                "latest_status": latest.status if latest else None,
                "latest_stage": latest.stage if latest else None,
                "validated": bool(latest.validation_performed) if latest else False,
                "production_id": prod.id if prod else None,
                "production_version": prod.version if prod else None,
                "production_validated": bool(prod.validation_performed) if prod else None,
                "last_trained": last_trained,
                "age_seconds": age,
                "age": human_age(age),
            }
        )
    return lines
