"""Validation use cases: score registered versions on held-out or new data and store the metrics.

Without a data file, a version is scored on its own held-out units: the training source is read
again, checked to be the same data (by its content hash), and split again from the recorded split
(seed, fractions, unit lists) — the test units when the run kept some apart, else the validation
units. With a file (e.g. a C-MAPSS test file paired with its RUL file), every version is scored on
that file. Either way the metrics are stored with the hash of the exact data they were computed on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset, canonical_hash
from turbofan_desktop.errors import Cancelled, IncompatibleDataError, TurbofanError
from turbofan_desktop.plugins.contract import ProgressEvent
from turbofan_desktop.registry.records import TrainingSource
from turbofan_desktop.services import naming
from turbofan_desktop.services._common import raise_if_stopped, stop_checker
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.datasets import keep_dataset
from turbofan_desktop.services.inference import model_for
from turbofan_desktop.services.training import JobProgress, held_out_fingerprint

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

# list_versions is paginated; batch validation walks it in pages of this size.
PAGE = 500


@dataclass
class ValidationOutcome:
    id: int
    plugin: str
    target: str
    metrics: dict[str, float] = field(default_factory=dict)
    data_hash: str | None = None
    data_source: str | None = None
    data: str | None = None  # what the metrics were computed on, for people: "held-out units of X"
    error: str | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plugin": self.plugin,
            "target": self.target,
            "metrics": dict(self.metrics),
            "data_hash": self.data_hash,
            "data_source": self.data_source,
            "data": self.data,
            "error": self.error,
            "cancelled": self.cancelled,
        }


@dataclass
class ValidationSummary:
    results: list[ValidationOutcome]
    validated: int
    failed: int
    cancelled: bool

    @classmethod
    def from_results(cls, results: list[ValidationOutcome]) -> ValidationSummary:
        return cls(
            results=results,
            validated=sum(1 for r in results if r.ok),
            failed=sum(1 for r in results if not r.ok and not r.cancelled),
            cancelled=any(r.cancelled for r in results),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "summary": {"validated": self.validated, "failed": self.failed, "cancelled": self.cancelled},
        }


def select_versions(
    ws: Workspace, version_ids: list[int] | None, *, plugin: str | None = None, target: str | None = None
) -> list[Any]:
    """The registry records to validate: the given ids (NotFoundError for an unknown one), or every
    trained version matching the filters, newest first."""
    if version_ids is not None:
        records = [ws.registry.get(int(v)) for v in version_ids]
        return [
            r
            for r in records
            if (plugin is None or r.plugin == plugin) and (target is None or r.target == target)
        ]
    records: list[Any] = []
    offset = 0
    while True:
        page = ws.registry.list_versions(
            plugin=plugin, target=target, stage=None, status="trained", limit=PAGE, offset=offset
        )
        records.extend(page)
        if len(page) < PAGE:
            return records
        offset += PAGE


def validate(
    ws: Workspace,
    version_ids: list[int] | None = None,
    *,
    data_path: Path | str | None = None,
    plugin: str | None = None,
    target: str | None = None,
    progress: Callable[[JobProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ValidationSummary:
    """Validate versions (``None`` -> all trained ones matching ``plugin``/``target``).

    A bad data file raises before any version is scored; afterwards each version's problem is
    reported in its outcome and the batch goes on. Cancellation stops the batch (nothing is stored
    for the version being scored).
    """
    should_stop = stop_checker(should_stop)
    # refuse before any scoring whose metrics could not be stored
    ws.registry.require_writable(intact=True)
    records = select_versions(ws, version_ids, plugin=plugin, target=target)
    new_data = load_dataset(ws, data_path) if data_path is not None else None
    if new_data is not None and records:
        keep_dataset(ws, new_data)  # the data the new metrics were computed on, by its hash
    held_out = _HeldOutCache(ws)
    results: list[ValidationOutcome] = []
    for index, record in enumerate(records):
        outcome = ValidationOutcome(int(record.id), record.plugin, record.target)
        if results and results[-1].cancelled or should_stop():
            outcome.cancelled, outcome.error = True, "skipped: validation was cancelled"
            results.append(outcome)
            continue
        report = _reporter(progress, record, index, len(records))
        try:
            data = new_data if new_data is not None else held_out.for_record(record)
            outcome.metrics, outcome.data_hash = validate_one(ws, record, data, report, should_stop)
            outcome.data_source = str(data.source) if data.source else data.name
            outcome.data = naming.data_description(ws, record, outcome.data_hash).text
        except Cancelled:
            outcome.cancelled, outcome.error = True, "cancelled"
        except TurbofanError as exc:
            outcome.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - one version's bug must not end the batch
            log.exception("validating version %s failed", record.id)
            outcome.error = f"internal error while validating {record.label}: {type(exc).__name__}: {exc}"
        results.append(outcome)
    return ValidationSummary.from_results(results)


def validate_one(
    ws: Workspace,
    record: Any,
    data: Dataset,
    progress: Callable[[ProgressEvent], None],
    should_stop: Callable[[], bool],
) -> tuple[dict[str, float], str]:
    """Score one version on ``data`` and store the metrics with the data's hash."""
    model = model_for(ws, int(record.id))  # in a worker process when models run there
    target = record.target
    if target != "*" and target not in data.frame.columns:
        where = str(data.source) if data.source else (data.name or "the data")
        raise IncompatibleDataError(f"{record.label} needs sensor {target}, which {where} does not have.")
    metrics = model.evaluate(data, progress=progress, should_stop=should_stop)
    metrics = {str(k): float(v) for k, v in dict(metrics).items()}
    raise_if_stopped(should_stop)
    data_hash = data.data_hash
    # the lineage of the scored data, so the metric's hash leads back to a file name (services.naming)
    ws.registry.record_dataset(data.lineage)
    ws.registry.record_validation(int(record.id), metrics=metrics, data_hash=data_hash)
    return metrics, data_hash


def _reporter(progress, record, index: int, total: int) -> Callable[[ProgressEvent], None]:
    def report(event: ProgressEvent) -> None:
        if progress is not None:
            fraction = min(max(float(event.fraction), 0.0), 1.0)
            progress(
                JobProgress(record.plugin, record.target, index, total, event, (index + fraction) / total)
            )

    return report


class _HeldOutCache:
    """Held-out datasets re-derived from training sources; each source file is read once."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._sources: dict[tuple, Dataset] = {}

    def for_record(self, record: Any) -> Dataset:
        return held_out_data(self.ws, record, sources=self._sources)


def held_out_data(ws: Workspace, record: Any, *, sources: dict[tuple, Dataset] | None = None) -> Dataset:
    """The units ``record`` never trained on (its test split when it kept one, else its validation
    split), read again from its training source and checked to hold the very values it held then.

    When the source file is unchanged the split is applied exactly as in training, so the held-out
    data hashes as it did then. When the model was trained on part of a file (a subset the GUI
    passed in memory), the held-out units are cut from the file and compared value by value with the
    recorded fingerprint of the held-out rows.
    """
    provenance = record.provenance
    source, split = provenance.source, provenance.split
    if source is None or not source.path or split is None:
        raise IncompatibleDataError(
            f"{record.label} does not record its training source and split; validate it on a data file."
        )
    key = (source.path, source.rul_path, source.unit_col, source.time_col)
    cache = sources if sources is not None else {}
    if key not in cache:
        cache[key] = _read_source(ws, record.id, source)
    dataset = cache[key]
    held = list(split.test) or list(split.val)
    by_plain = {_plain(u): u for u in dataset.units}
    missing = [u for u in held if _plain(u) not in by_plain]
    if not held or missing:
        raise IncompatibleDataError(
            f"The held-out units of {record.label} are not in {source.path} any more; "
            "validate it on a data file instead."
        )
    if dataset.data_hash == source.data_hash:
        _train, val, test = split.apply(dataset)
        return test if split.test else val
    part = dataset.subset([by_plain[_plain(u)] for u in held], note=f"held-out units of version {record.id}")
    fingerprint = provenance.held_out.frame_hash if provenance.held_out is not None else None
    if fingerprint is None or canonical_hash(part.frame) != fingerprint:
        raise IncompatibleDataError(
            f"{source.path} no longer holds the data {record.label} was trained on (its data hash "
            "differs); validate the version on a data file instead."
        )
    return part


def _read_source(ws: Workspace, version_id: int, source: TrainingSource) -> Dataset:
    path = Path(source.path)
    if not path.exists():
        raise IncompatibleDataError(
            f"The training data of version {version_id} ({path}) is no longer there; validate it on a data file."
        )
    return load_dataset(
        ws,
        path,
        rul_path=source.rul_path,
        unit_col=source.unit_col,
        time_col=source.time_col,
    )


def _plain(value: Any) -> Any:
    """The JSON form of a value, so a split read back from the registry compares with a fresh one."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


__all__ = [
    "ValidationOutcome",
    "ValidationSummary",
    "held_out_data",
    "held_out_fingerprint",
    "select_versions",
    "validate",
    "validate_one",
]
