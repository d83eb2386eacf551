"""Reproduce a version from its lineage: train it again and say whether the result is the same.

The version's recorded config (its seed included), its unit split and the stored source dataset (see
:mod:`turbofan_desktop.services.datasets`) are all a new training needs. The rebuilt model is never
registered; it is compared with the version on the data hashes (source, train split, validation
split), the validation metrics and the weights' hash (:mod:`turbofan_desktop.plugins.weights`). On the
same machine with the same library versions the answer should be "identical"; otherwise the report
lists each difference with its size, and the library versions that changed since.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import IncompatibleDataError, NotFoundError
from turbofan_desktop.plugins.contract import ProgressEvent, build_config
from turbofan_desktop.plugins.weights import weight_arrays, weight_differences, weights_hash
from turbofan_desktop.services._common import library_versions, plugin_version, stop_checker
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.datasets import stored_dataset
from turbofan_desktop.services.inference import load_model

if TYPE_CHECKING:
    from turbofan_desktop.registry import VersionRecord
    from turbofan_desktop.services import Workspace


class MissingDatasetError(IncompatibleDataError):
    """The data a version was trained on is no longer kept (and no file giving it was named)."""


@dataclass(frozen=True)
class Comparison:
    """One compared quantity: the version's value, the rebuilt one, and (for numbers) the difference."""

    name: str
    original: Any
    rebuilt: Any

    @property
    def same(self) -> bool:
        if isinstance(self.original, float) and isinstance(self.rebuilt, float):
            both_nan = math.isnan(self.original) and math.isnan(self.rebuilt)
            return both_nan or self.original == self.rebuilt
        return self.original == self.rebuilt

    @property
    def difference(self) -> float | None:
        if isinstance(self.original, int | float) and isinstance(self.rebuilt, int | float):
            return float(self.rebuilt) - float(self.original)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "original": self.original,
            "rebuilt": self.rebuilt,
            "same": self.same,
            "difference": self.difference,
        }


@dataclass
class ReproduceReport:
    version_id: int
    label: str
    data: list[Comparison]
    metrics: list[Comparison]
    weights: Comparison | None  # None: the plugin offers no weight arrays
    weight_differences: list[dict[str, Any]] = field(default_factory=list)
    libraries: list[Comparison] = field(default_factory=list)
    data_from: str = ""
    seconds: float = 0.0
    # the torch_threads setting it ran with (0 = every usable core): a sum split over another
    # number of threads rounds differently, so weights match bit for bit only with the same count
    torch_threads: int = 0

    @property
    def identical(self) -> bool:
        parts = [*self.data, *self.metrics, *([self.weights] if self.weights else [])]
        return all(c.same for c in parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "label": self.label,
            "identical": self.identical,
            "data_from": self.data_from,
            "data": [c.to_dict() for c in self.data],
            "metrics": [c.to_dict() for c in self.metrics],
            "weights": self.weights.to_dict() if self.weights else None,
            "weight_differences": list(self.weight_differences),
            "libraries": [c.to_dict() for c in self.libraries],
            "seconds": round(self.seconds, 3),
            "torch_threads": self.torch_threads,
        }


def reproduce(
    ws: Workspace,
    version_id: int,
    *,
    data_path: Path | str | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ReproduceReport:
    """Train version ``version_id`` again from its lineage and compare (nothing is registered).

    The source data comes from the registry's dataset store, or from ``data_path`` when given (it must
    hash as the recorded source). A version that does not record its split, or whose data is neither
    kept nor given, raises an IncompatibleDataError naming the data it needs.
    """
    started = time.perf_counter()
    record = ws.registry.get(int(version_id))
    provenance = record.provenance
    source, split = provenance.source, provenance.split
    if source is None or not source.data_hash or split is None:
        raise IncompatibleDataError(
            f"Version {record.id} does not record its training data and split, so it cannot be reproduced."
        )
    dataset, data_from = _source_dataset(ws, record, data_path)
    train_ds, val_ds, _test_ds = split.apply(dataset)

    spec = ws.plugins.model(record.plugin)
    known = {row["name"] for row in spec.schema()}
    config = build_config(spec.config_class, {k: v for k, v in record.config.items() if k in known})
    model = spec.build(config, record.target, threads=ws.settings.torch_threads)
    report = progress or (lambda event: None)
    model.fit(train_ds, val_ds, progress=report, should_stop=stop_checker(should_stop))
    metrics = model.evaluate(val_ds, should_stop=stop_checker(should_stop))
    metrics = {str(k): float(v) for k, v in dict(metrics).items()}

    validation = provenance.validation
    data = [
        Comparison("source", source.data_hash, dataset.data_hash),
        Comparison("train split", (record.lineage or {}).get("data_hash"), train_ds.data_hash),
    ]
    if validation is not None and validation.data_hash:
        data.append(Comparison("validation split", validation.data_hash, val_ds.data_hash))
    recorded = dict(record.metrics or {})
    names = sorted(set(recorded) | set(metrics))
    compared = [Comparison(n, _number(recorded.get(n)), _number(metrics.get(n))) for n in names]

    weights, differences = _compare_weights(ws, record, model)
    return ReproduceReport(
        version_id=int(record.id),
        label=record.label,
        data=data,
        metrics=compared,
        weights=weights,
        weight_differences=differences,
        libraries=_library_changes(ws, record),
        data_from=data_from,
        seconds=time.perf_counter() - started,
        torch_threads=int(ws.settings.torch_threads),
    )


def _source_dataset(
    ws: Workspace, record: VersionRecord, data_path: Path | str | None
) -> tuple[Dataset, str]:
    source = record.provenance.source
    assert source is not None and source.data_hash
    if data_path is not None:
        dataset = load_dataset(
            ws, data_path, rul_path=source.rul_path, unit_col=source.unit_col, time_col=source.time_col
        )
        if dataset.data_hash != source.data_hash:
            raise IncompatibleDataError(
                f"{data_path} is not the data version {record.id} was trained on: its data hash is "
                f"{dataset.data_hash[:12]}, the version needs {source.data_hash}."
            )
        return dataset, str(data_path)
    try:
        return stored_dataset(ws, source.data_hash), f"dataset store ({source.data_hash[:12]})"
    except NotFoundError:
        where = f" (source file {source.path})" if source.path else ""
        raise MissingDatasetError(
            f"Version {record.id} needs dataset {source.data_hash}{where}, which the registry no longer "
            "keeps; give that data with --data FILE."
        ) from None


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _compare_weights(
    ws: Workspace, record: VersionRecord, rebuilt: Any
) -> tuple[Comparison | None, list[dict[str, Any]]]:
    new = weight_arrays(rebuilt)
    if new is None:
        return None, []
    _spec, original_model = load_model(ws, int(record.id))
    old = weight_arrays(original_model) or {}
    comparison = Comparison("weights sha256", weights_hash(old), weights_hash(new))
    return comparison, ([] if comparison.same else weight_differences(old, new))


def _library_changes(ws: Workspace, record: VersionRecord) -> list[Comparison]:
    extra = {}
    spec = ws.plugins.model(record.plugin)
    version = plugin_version(ws, spec.plugin)
    if version is not None:
        extra[f"plugin:{spec.plugin}"] = version
    now = library_versions(extra)
    then = dict(record.library_versions or {})
    changes = [Comparison(name, then.get(name), now.get(name)) for name in sorted(set(then) | set(now))]
    return [c for c in changes if not c.same]


__all__ = ["Comparison", "MissingDatasetError", "ReproduceReport", "reproduce"]


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    return str(value)


def _line(c: Comparison) -> str:
    if c.same:
        return f"    {c.name}: {_value(c.original)}  same"
    diff = c.difference
    size = f" ({diff:+.3g})" if diff is not None else ""
    return f"    {c.name}: {_value(c.original)} -> {_value(c.rebuilt)}{size}"


def report_lines(report: ReproduceReport) -> list[str]:
    """The comparison as the lines the CLI prints and the window shows, ending in identical/different."""
    lines: list[str] = []
    threads = report.torch_threads or "all usable"
    lines.append(
        f"Reproduced {report.label} from {report.data_from} with {threads} torch thread(s) "
        f"in {report.seconds:.1f} s"
    )
    lines.append("  data:")
    for c in report.data:
        lines.append(_line(c))
    same = sum(c.same for c in report.metrics)
    lines.append(f"  metrics: {same} of {len(report.metrics)} identical")
    for c in report.metrics:
        if not c.same:
            lines.append(_line(c))
    if report.weights is None:
        lines.append("  weights: the plugin offers no weight arrays; not compared")
    else:
        lines.append("  weights:")
        lines.append(_line(report.weights))
        for row in report.weight_differences:
            if "problem" in row:
                lines.append(f"      {row['name']}: {row['problem']}")
            else:
                lines.append(
                    f"      {row['name']}: {row['differing']} of {row['values']} values differ, "
                    f"largest by {row['max_abs_difference']:.3g}"
                )
    if report.libraries:
        lines.append("  libraries changed since training:")
        for c in report.libraries:
            lines.append(f"    {c.name}: {c.original} -> {c.rebuilt}")
    lines.append("identical" if report.identical else "different")
    return lines
