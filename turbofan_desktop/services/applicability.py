"""Is a model version applicable to a dataset? A verdict before any detect / forecast / RUL / fleet use.

A model answers confidently on any numbers it is given; whether the answer means anything depends on
the data resembling what it was trained on. :func:`check_applicability` compares a dataset with what
the registry keeps of a version's training data — its lineage (format, time kind, columns) and the
training statistics in its artifact (:mod:`turbofan_desktop.data.drift`: operating regimes, per-sensor
ranges and sketches, setting ranges) — and returns an :class:`Applicability`:

* ``out_of_scope`` — the answer would be a guess: a sensor the version needs is missing; the time axis
  is of another kind (cycles vs timestamps); the data holds several operating regimes while the
  version saw one (an FD001 model on FD002), or more regimes than it saw; the operating settings or a
  sensor the version uses lie outside the training range on more than :data:`OUT_OF_RANGE_SHARE` of
  the rows.
* ``caution`` — usable, but look twice: a different file format, a few rows outside the training
  range, drifted sensors (the drift rule of the settings, as ``turbofan-desktop drift`` applies it),
  or no training statistics to check against (a version registered without them).
* ``ok`` — none of the above.

Every finding is one sentence in ``reasons``. The check reads only; nothing is stored. Pure Python +
numpy: no Qt, no torch (the model is never loaded for it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.data.drift import compare, values_as_summarised
from turbofan_desktop.data.preprocess import detect_regimes
from turbofan_desktop.errors import IncompatibleDataError, NotFoundError, TurbofanError
from turbofan_desktop.services.monitoring import has_reference_statistics, reference_statistics

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

OK, CAUTION, OUT_OF_SCOPE = "ok", "caution", "out_of_scope"
VERDICTS = (OK, CAUTION, OUT_OF_SCOPE)

#: Rows are outside the training range when beyond it by more than this share of the range's width.
RANGE_MARGIN = 0.05
#: Share of rows outside the training range (per sensor or setting) that calls for caution ...
CAUTION_RANGE_SHARE = 0.01
#: ... and that puts the data out of the version's scope.
OUT_OF_RANGE_SHARE = 0.10
_MAX_NAMED = 6  # sensors named in one reason


class OutOfScopeError(IncompatibleDataError):
    """A version was asked to work on data it is not applicable to (and nobody accepted that)."""


@dataclass(frozen=True)
class Applicability:
    """The verdict (``ok`` / ``caution`` / ``out_of_scope``) of one version on one dataset, with reasons."""

    verdict: str
    reasons: list[str] = field(default_factory=list)
    version_id: int | None = None
    data_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    @property
    def out_of_scope(self) -> bool:
        return self.verdict == OUT_OF_SCOPE

    def headline(self) -> str:
        """One line for a status bar or the CLI: the verdict and its first reason."""
        words = {OK: "applicable", CAUTION: "use with caution", OUT_OF_SCOPE: "OUT OF SCOPE"}[self.verdict]
        return f"{words}: {self.reasons[0]}" if self.reasons else words

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons)}


class _Findings:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.caution: list[str] = []

    def verdict(self, version_id: int, data_hash: str) -> Applicability:
        if self.out:
            return Applicability(OUT_OF_SCOPE, self.out + self.caution, version_id, data_hash)
        if self.caution:
            return Applicability(CAUTION, self.caution, version_id, data_hash)
        return Applicability(OK, [], version_id, data_hash)


# (registry, version id, created, artifact sha256, data hash) -> verdict: the UI asks again for every
# unit it draws; a version id may be reused after a delete, its creation time and artifact are not
_CACHE: OrderedDict[tuple, Applicability] = OrderedDict()
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def check_applicability(ws: Workspace, version: Any, dataset: Dataset) -> Applicability:
    """The verdict of ``version`` (an id or a registry record) on ``dataset``; never raises for a
    dataset the version cannot use (that is the verdict), only for an unknown version."""
    record = version if hasattr(version, "plugin") else ws.registry.get(int(version))
    data_hash = dataset.data_hash
    key = (str(ws.registry.path), int(record.id), record.created, record.artifact_sha256, data_hash)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    result = _check(ws, record, dataset).verdict(int(record.id), data_hash)
    with _CACHE_LOCK:
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return result


def require_applicable(
    ws: Workspace, version: Any, dataset: Dataset, *, accept: bool = False
) -> Applicability:
    """:func:`check_applicability`, raising :class:`OutOfScopeError` on ``out_of_scope`` unless
    ``accept`` (the user was shown the verdict and chose to go on)."""
    result = check_applicability(ws, version, dataset)
    if result.out_of_scope and not accept:
        record = version if hasattr(version, "plugin") else ws.registry.get(int(version))
        raise OutOfScopeError(f"{_label(record)} is out of scope on {_where(dataset)}: {result.reasons[0]}")
    return result


# -- the checks -----------------------------------------------------------------------------------------
def _check(ws: Workspace, record: Any, dataset: Dataset) -> _Findings:
    found = _Findings()
    lineage = _lineage(record)
    stats = _statistics(ws, record)
    needed = _needed_sensors(ws, record, stats, lineage)
    columns = set(dataset.frame.columns)
    missing = [s for s in needed if s not in columns]
    if missing:
        found.out.append(f"the data has no sensor(s) {_names(missing)}, which the version was trained on.")
    _check_format(found, stats, lineage, dataset)
    if stats is None:
        found.caution.append(
            "the version has no statistics of its training data, so regimes, value ranges and drift "
            "cannot be checked."
        )
        return found
    _check_regimes(found, stats, dataset)
    _check_setting_ranges(found, stats, dataset)
    present = [s for s in needed if s in columns and s in stats.get("sensors", {})]
    _check_sensor_ranges(found, stats, dataset, present)
    _check_drift(ws, found, stats, dataset, present)
    return found


def _check_format(found: _Findings, stats: dict | None, lineage: dict, dataset: Dataset) -> None:
    trained_kind = (stats or {}).get("time_kind") or lineage.get("time_kind")
    if trained_kind and trained_kind != dataset.time_kind:
        found.out.append(
            f"the data's time axis is {_kind(dataset.time_kind)}, the version was trained on "
            f"{_kind(trained_kind)}."
        )
    trained_format = lineage.get("format")
    if trained_format and trained_format != dataset.format:
        found.caution.append(
            f"the data was read as {dataset.format}, the training data as {trained_format}; "
            "check that the columns mean the same."
        )


def _check_regimes(found: _Findings, stats: dict, dataset: Dataset) -> None:
    trained = len((stats.get("regimes") or {}).get("regimes") or []) or 1
    try:
        seen = detect_regimes(dataset).n_regimes
    except TurbofanError:
        return
    if seen > 1 and trained == 1:
        found.out.append(
            f"the data holds {seen} operating regimes, the version was trained on a single regime "
            "(a model of one flight condition applied to a mixed fleet)."
        )
    elif seen > trained:
        found.out.append(
            f"the data holds {seen} operating regimes, more than the {trained} the version was trained on."
        )


def _outside_share(values: np.ndarray, low: float | None, high: float | None) -> float:
    finite = values[np.isfinite(values)]
    if finite.size == 0 or low is None or high is None:
        return 0.0
    margin = max(RANGE_MARGIN * (high - low), 1e-6 * max(1.0, abs(low), abs(high)))
    return float(np.count_nonzero((finite < low - margin) | (finite > high + margin)) / finite.size)


def _check_setting_ranges(found: _Findings, stats: dict, dataset: Dataset) -> None:
    """Operating settings outside what training saw (a single-regime model at another altitude)."""
    ranges = stats.get("settings") or {}
    if stats.get("regimes"):
        return  # multi-regime training: the regime check above places every row in a known regime
    out, few = [], []
    for name, bounds in ranges.items():
        if name not in dataset.frame.columns:
            continue
        share = _outside_share(dataset.frame[name].to_numpy(dtype=np.float64), bounds["min"], bounds["max"])
        if share > OUT_OF_RANGE_SHARE:
            out.append((name, share))
        elif share > CAUTION_RANGE_SHARE:
            few.append((name, share))
    if out:
        found.out.append(f"operating setting(s) outside the training range: {_shares(out)} of the rows.")
    if few:
        found.caution.append(
            f"operating setting(s) slightly outside the training range: {_shares(few)} of the rows."
        )


def _check_sensor_ranges(found: _Findings, stats: dict, dataset: Dataset, sensors: list[str]) -> None:
    if not sensors:
        return
    try:
        values = values_as_summarised(stats, dataset, sensors)
    except IncompatibleDataError as exc:  # a regime model whose setting columns the data lacks
        found.out.append(f"the data's operating regimes cannot be placed: {exc}")
        return
    out, few = [], []
    for name in sensors:
        block = stats["sensors"][name]
        share = _outside_share(values[name], block.get("min"), block.get("max"))
        if share > OUT_OF_RANGE_SHARE:
            out.append((name, share))
        elif share > CAUTION_RANGE_SHARE:
            few.append((name, share))
    space = " (per operating regime)" if stats.get("regimes") else ""
    if out:
        found.out.append(f"sensor values outside the training range{space}: {_shares(out)} of the rows.")
    if few:
        found.caution.append(
            f"a few sensor values outside the training range{space}: {_shares(few)} of the rows."
        )


def _check_drift(ws: Workspace, found: _Findings, stats: dict, dataset: Dataset, sensors: list[str]) -> None:
    try:
        report = compare(
            stats,
            dataset,
            psi_threshold=ws.settings.drift_psi_threshold,
            ks_pvalue=ws.settings.drift_ks_pvalue,
        )
    except IncompatibleDataError:
        return  # the range check above already said why the data cannot be placed
    drifted = [s for s in report.drifted if s in sensors]
    if drifted:
        found.caution.append(
            f"{len(drifted)} of {len(sensors)} sensors drifted from the training data: {_names(drifted)}."
        )


# -- what the registry keeps of the training data -------------------------------------------------------
def _statistics(ws: Workspace, record: Any) -> dict[str, Any] | None:
    if not has_reference_statistics(ws, int(record.id)):
        return None
    try:
        return reference_statistics(ws, int(record.id))
    except (NotFoundError, IncompatibleDataError):
        return None


def _lineage(record: Any) -> dict[str, Any]:
    lineage = getattr(record, "lineage", None) or {}
    return lineage.to_dict() if hasattr(lineage, "to_dict") else dict(lineage)


def _needed_sensors(ws: Workspace, record: Any, stats: dict | None, lineage: dict) -> list[str]:
    """The sensors the version reads: its target, or for an all-sensor version its configured
    sensors, the loaded model's own list, else every sensor that varied in training."""
    if record.target != "*":
        return [record.target]
    configured = [s for s in (record.config or {}).get("sensors") or [] if isinstance(s, str)]
    if configured:
        return configured
    cached = ws.cached_model(int(record.id))
    loaded = getattr(cached[1], "sensors", None) if cached is not None else None
    if loaded:
        return list(loaded)
    if stats is not None:
        return [name for name, block in stats.get("sensors", {}).items() if block.get("std")]
    return []


# -- wording --------------------------------------------------------------------------------------------
def _label(record: Any) -> str:
    return str(getattr(record, "label", f"version {record.id}"))


def _where(dataset: Dataset) -> str:
    return dataset.source.name if dataset.source else (dataset.name or "the data")


def _kind(kind: str) -> str:
    return {"cycle": "cycles", "timestamp": "timestamps", "step": "steps"}.get(kind, kind)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED])
    return shown + (f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else "")


def _shares(items: list[tuple[str, float]]) -> str:
    items = sorted(items, key=lambda item: -item[1])
    shown = ", ".join(f"{name} {share:.0%}" for name, share in items[:_MAX_NAMED])
    return shown + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


__all__ = [
    "CAUTION",
    "OK",
    "OUT_OF_SCOPE",
    "VERDICTS",
    "Applicability",
    "OutOfScopeError",
    "check_applicability",
    "require_applicable",
]
