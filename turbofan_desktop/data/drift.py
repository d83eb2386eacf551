"""Data drift: compact statistics of a training set and per-sensor drift of new data against them.

A model trusts that new data look like its training data. :func:`training_statistics` condenses the
training rows into a small JSON-able summary (per sensor: count, mean, std, range and a quantile
sketch), and :func:`compare` measures how far a new dataset moved from it, per sensor:

* **PSI** (population stability index) over the training deciles: ``sum((new - train) * ln(new /
  train))`` over the bin shares, each share floored at :data:`PSI_FLOOR` so an empty bin gives a
  large but finite value. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a real shift.
* **Two-sample Kolmogorov-Smirnov p-value**, computed from the sketch instead of the training rows
  (which are not kept). The sketch stores, at up to 101 quantile values ``v_i`` of the training
  data, the exact training ECDF ``F(v_i)``. The statistic ``D = max_i |F_new(v_i) - F(v_i)|`` is
  therefore a lower bound of the exact two-sample statistic (the supremum runs over every value;
  the gap is at most the training mass between two sketch points, about 1 %). Its p-value uses the
  Kolmogorov distribution with the effective sample size ``n m / (n + m)``, as
  ``scipy.stats.ks_2samp(method="asymp")`` does (:mod:`turbofan_desktop.data.kolmogorov` computes
  it in numpy, agreeing with scipy to about 1e-9), so it is never smaller than the exact test's:
  the sketch can miss a small drift, never invent one.

A sensor **drifts** when the shift is both large (PSI >= threshold) and significant (KS p-value <
threshold). Requiring both keeps a big file from flagging trivial differences (KS alone rejects
anything with enough rows) and a small file from flagging noise (PSI alone is noisy on few rows).

Two observable causes of a different distribution are not sensor drift, and are taken out:

* **Operating regime** (FD002: six flight conditions). With several training regimes each value is
  first expressed in standard deviations from its regime's training mean, so the regime mix of a
  file does not move the distributions; a sensor that moves within a regime still does.
* **Age** on run-to-failure fleets (cycle-indexed, several units). A training file runs every unit
  to failure, a test file stops each unit early, so it holds fewer worn values. The sketch keeps the
  training ECDF per age stratum (row position within the unit, training quintiles), and the new
  data is compared with the training mixture re-weighted to its own age mix (FD001 test vs train:
  PSI about 0.3 pooled, about 0.06 age-matched). The effective training size of that mixture,
  ``1 / sum(w_b^2 / n_b)``, enters the KS p-value.

Rows of one unit are not independent draws (each engine has its own offset), so both sample sizes
in the KS p-value are divided by the design effect ``1 + (rows per unit - 1) * ICC``, with the
sensor's intra-unit correlation ICC (share of the training variance between unit means) stored in
the sketch. Without it a handful of engines would look "significantly" different from the fleet
merely for being particular engines. Autocorrelation within one long series (telemetry with a
single unit) is not corrected: there the p-value is optimistic and PSI carries the decision.

The regime and age mixes themselves are reported (``regime_mix_psi``, ``age_mix_psi``).
Pure numpy: no scipy, no Qt, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.data.kolmogorov import kolmogorov_sf
from turbofan_desktop.data.preprocess import RegimeModel, detect_regimes
from turbofan_desktop.errors import IncompatibleDataError

STATS_FORMAT = "turbofan-drift-stats/1"
#: Probability grid of the sketch: every percentile (101 points before deduplication).
SKETCH_POINTS = 101
#: Age strata on run-to-failure fleets: training quintiles of the row position within a unit.
AGE_STRATA = 5
#: PSI bins: the training deciles.
PSI_BINS = 10
#: Smallest bin share in the PSI sum: an empty bin costs ln(share / 1e-4), not infinity.
PSI_FLOOR = 1e-4
_CDF_DIGITS = 5


# -- helpers ---------------------------------------------------------------------------------------------
def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def _ecdf(sorted_values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Share of ``sorted_values`` at or below each point (zeros when there are none)."""
    if sorted_values.size == 0:
        return np.zeros(len(points))
    return np.searchsorted(sorted_values, points, side="right") / sorted_values.size


def unit_age(ds: Dataset) -> np.ndarray:
    """Row position within its unit (0 at each unit's first row): the age of a run-to-failure unit."""
    if ds.frame.empty:
        return np.zeros(0, dtype=np.int64)
    return ds.frame.groupby(UNIT, sort=False).cumcount().to_numpy(dtype=np.int64)


def _rows_per_unit(ds: Dataset) -> float:
    return ds.n_rows / max(1, len(ds.units))


def intra_unit_correlation(values: np.ndarray, units: np.ndarray) -> float:
    """Share of the variance that lies between unit means (0 for one unit or a flat sensor)."""
    keep = np.isfinite(values)
    values, units = values[keep], units[keep]
    if values.size < 2 or np.unique(units).size < 2:
        return 0.0
    total = float(values.var())
    if total <= 0:
        return 0.0
    _, inverse = np.unique(units, return_inverse=True)
    means = np.bincount(inverse, weights=values) / np.bincount(inverse)
    return float(min(1.0, max(0.0, means[inverse].var() / total)))


def design_effect(icc: float, rows_per_unit: float) -> float:
    """Kish's variance inflation of a sample of clusters: rows / design effect = independent rows."""
    return 1.0 + max(0.0, rows_per_unit - 1.0) * max(0.0, icc)


def _is_fleet(ds: Dataset) -> bool:
    """Cycle-indexed data of several units: rows of one age are comparable across files."""
    return ds.time_kind == "cycle" and len(ds.units) >= 2


# -- the training summary -----------------------------------------------------------------------------
def sensor_statistics(
    values: np.ndarray, strata: np.ndarray | None = None, n_strata: int = 0, points: int = SKETCH_POINTS
) -> dict[str, Any]:
    """Count, mean, std, range and the sketch ``(values, cdf)`` of one sensor's finite values.

    Sketch values are observed values (``inverted_cdf`` quantiles, deduplicated), so C-MAPSS numbers
    keep their short decimal form in JSON; ``cdf`` is the share of rows at or below each (exact to
    five decimals).
    With ``strata`` (an int label per value), ``strata_cdf[b]`` is the same ECDF within stratum b.
    """
    raw = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(raw)
    finite = np.sort(raw[keep])
    n = int(finite.size)
    if n == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None, "values": [], "cdf": []}
    probs = np.linspace(0.0, 1.0, max(2, int(points)))
    sketch = np.unique(np.quantile(finite, probs, method="inverted_cdf"))
    out: dict[str, Any] = {
        "count": n,
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite[0]),
        "max": float(finite[-1]),
        "values": [float(v) for v in sketch],
        "cdf": np.round(_ecdf(finite, sketch), _CDF_DIGITS).tolist(),
    }
    if strata is not None and n_strata > 1:
        labels = np.asarray(strata)[keep]
        out["strata_count"] = [int(np.count_nonzero(labels == b)) for b in range(n_strata)]
        out["strata_cdf"] = [
            np.round(_ecdf(np.sort(raw[keep][labels == b]), sketch), _CDF_DIGITS).tolist()
            for b in range(n_strata)
        ]
    return out


def _regime_normalised(
    columns: dict[str, np.ndarray], labels: np.ndarray, norm: dict[str, dict[str, list[float]]]
) -> dict[str, np.ndarray]:
    """Each value in standard deviations from its regime's training mean (flat regimes: centred only)."""
    out = {}
    for name, values in columns.items():
        mean = np.asarray(norm[name]["mean"], dtype=np.float64)[labels]
        std = np.asarray(norm[name]["std"], dtype=np.float64)[labels]
        out[name] = (values - mean) / std
    return out


def _regime_norm(columns: dict[str, np.ndarray], labels: np.ndarray, n_regimes: int) -> dict[str, Any]:
    norm = {}
    for name, values in columns.items():
        means, stds = [], []
        for regime in range(n_regimes):
            chunk = _finite(values[labels == regime])
            mean = float(chunk.mean()) if chunk.size else 0.0
            std = float(chunk.std()) if chunk.size else 0.0
            means.append(mean)
            stds.append(std if std > 1e-9 * max(1.0, abs(mean)) else 1.0)
        norm[name] = {"mean": means, "std": stds}
    return norm


def _range_of(values: np.ndarray) -> dict[str, float | None]:
    """Minimum and maximum of the finite values (None for a column without any)."""
    finite = _finite(values)
    if finite.size == 0:
        return {"min": None, "max": None}
    return {"min": float(finite.min()), "max": float(finite.max())}


def training_statistics(ds: Dataset, sensors: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON-able summary of ``ds`` that :func:`compare` measures new data against.

    ``sensors`` defaults to every sensor (a constant one that starts moving is drift too). With
    several regimes (:func:`detect_regimes`) the sketches describe regime-normalised values and
    ``regimes`` / ``regime_norm`` say how to normalise new data; on run-to-failure fleets ``age``
    holds the age-stratum edges (see the module docstring).
    """
    names = list(ds.sensors if sensors is None else sensors)
    missing = [s for s in names if s not in ds.frame.columns]
    if missing:
        raise IncompatibleDataError(f"The training data has no sensor(s) {', '.join(missing)}.")
    columns = {s: ds.frame[s].to_numpy(dtype=np.float64) for s in names}
    summary: dict[str, Any] = {
        "format": STATS_FORMAT,
        "rows": int(ds.n_rows),
        "units": len(ds.units),
        "data_hash": ds.data_hash,
        "regimes": None,
        "regime_norm": None,
        "age": None,
        # what the applicability check (services.applicability) compares a new file with; optional
        # keys, absent from statistics written before they existed
        "time_kind": ds.time_kind,
        "settings": {name: _range_of(ds.frame[name].to_numpy(dtype=np.float64)) for name in ds.settings},
    }
    regimes = detect_regimes(ds)
    if regimes.n_regimes > 1:
        labels = regimes.assign(ds.frame)
        summary["regimes"] = regimes.to_dict()
        summary["regime_norm"] = _regime_norm(columns, labels, regimes.n_regimes)
        summary["regime_rows"] = np.bincount(labels, minlength=regimes.n_regimes).tolist()
        columns = _regime_normalised(columns, labels, summary["regime_norm"])
    strata, n_strata = None, 0
    if _is_fleet(ds):
        age = unit_age(ds)
        edges = np.unique(np.quantile(age, np.arange(1, AGE_STRATA) / AGE_STRATA, method="inverted_cdf"))
        strata = np.searchsorted(edges, age, side="right")
        n_strata = len(edges) + 1
        summary["age"] = {"edges": [int(e) for e in edges]}
    unit_ids = ds.frame[UNIT].to_numpy()
    summary["rows_per_unit"] = _rows_per_unit(ds)
    summary["sensors"] = {}
    for name, values in columns.items():
        block = sensor_statistics(values, strata, n_strata)
        block["icc"] = round(intra_unit_correlation(values, unit_ids), 4)
        summary["sensors"][name] = block
    return summary


def values_as_summarised(stats: dict[str, Any], ds: Dataset, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` of ``ds`` in the space the summary describes: raw values, or standard
    deviations from the regime's training mean when the training data had several regimes."""
    columns = {name: ds.frame[name].to_numpy(dtype=np.float64) for name in names}
    if stats.get("regimes"):
        labels = RegimeModel.from_dict(stats["regimes"]).assign(ds.frame)
        columns = _regime_normalised(columns, labels, stats["regime_norm"])
    return columns


# -- the two measures ----------------------------------------------------------------------------------
def population_stability_index(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, *, floor: float = PSI_FLOOR
) -> float:
    """PSI of two bin-share (or bin-count) vectors of the same bins; 0 for identical shares.

    Counts are normalised to shares; each share is floored at ``floor`` so an empty bin on one
    side gives a large finite value. Empty inputs give 0 (nothing to compare).
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        raise ValueError(f"PSI needs bins of the same shape, got {e.shape} and {a.shape}.")
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = np.maximum(e / e.sum(), floor)
    a = np.maximum(a / a.sum(), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_edges(points: np.ndarray, cdf: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Indices of the sketch points nearest above ``1/bins, 2/bins, ...`` of the training CDF."""
    targets = np.arange(1, bins) / bins
    return np.unique(np.searchsorted(cdf, targets - 1e-9, side="left").clip(0, len(points) - 1))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in the bins ``(-inf, e1], ..., (e_k, inf)`` (right-closed, like the ECDF)."""
    finite = _finite(values)
    if finite.size == 0:
        return np.zeros(len(edges) + 1)
    index = np.searchsorted(edges, finite, side="left")
    return np.bincount(index, minlength=len(edges) + 1) / finite.size


def ks_pvalue(d: float, n: float, m: float) -> float:
    """Asymptotic two-sample KS p-value of statistic ``d`` for sample sizes ``n`` and ``m``."""
    if d <= 0 or n <= 0 or m <= 0:
        return 1.0
    effective = max(1, int(round(n * m / (n + m))))
    return kolmogorov_sf(d, effective)


@dataclass(frozen=True)
class _Reference:
    """The training distribution a new sample is measured against (maybe age re-weighted)."""

    points: np.ndarray
    cdf: np.ndarray
    size: float  # effective number of training rows


def _reference(sketch: dict[str, Any], age_weights: np.ndarray | None) -> _Reference:
    points = np.asarray(sketch["values"], dtype=np.float64)
    if age_weights is None or "strata_cdf" not in sketch:
        return _Reference(points, np.asarray(sketch["cdf"], dtype=np.float64), float(sketch["count"]))
    counts = np.asarray(sketch["strata_count"], dtype=np.float64)
    weights = np.where(counts > 0, age_weights, 0.0)
    if weights.sum() <= 0:
        return _Reference(points, np.asarray(sketch["cdf"], dtype=np.float64), float(sketch["count"]))
    weights = weights / weights.sum()
    cdf = weights @ np.asarray(sketch["strata_cdf"], dtype=np.float64)
    used = weights > 0
    size = 1.0 / float(np.sum(weights[used] ** 2 / counts[used]))
    return _Reference(points, cdf, size)


def _measure(
    ref: _Reference, values: np.ndarray, new_deff: float = 1.0
) -> tuple[float, float, float, np.ndarray]:
    """(psi, ks_stat, ks_pvalue, new ECDF at the sketch points) of ``values`` against ``ref``.

    Shares of the PSI bins come from the reference ECDF at the decile points (exact at sketch
    points), plus a bin below the training minimum; the KS statistic also counts new values below
    the smallest training value.
    """
    finite = np.sort(_finite(values))
    if ref.points.size == 0 or finite.size == 0:
        return 0.0, 0.0, 1.0, np.zeros(0)
    picks = decile_edges(ref.points, ref.cdf)
    # a first bin below the training minimum (training share 0) sees a fall under the range
    edges = np.concatenate([[np.nextafter(ref.points[0], -np.inf)], ref.points[picks]])
    train_shares = np.maximum(np.diff(np.concatenate([[0.0, 0.0], ref.cdf[picks], [1.0]])), 0.0)
    psi = population_stability_index(train_shares, bin_shares(finite, edges))
    new_cdf = _ecdf(finite, ref.points)
    below = np.count_nonzero(finite < ref.points[0]) / finite.size
    d = float(max(np.max(np.abs(new_cdf - ref.cdf)), below))
    return psi, d, ks_pvalue(d, ref.size, finite.size / new_deff), new_cdf


def ks_from_sketch(sketch: dict[str, Any], values: np.ndarray) -> tuple[float, float]:
    """``(D, p)`` of independent ``values`` against one sensor sketch (no age weights, no clusters).

    ``D`` never exceeds the exact two-sample statistic, so ``p`` is never below the exact
    asymptotic p-value (see the module docstring).
    """
    if not sketch.get("count"):
        return 0.0, 1.0
    _, d, p, _ = _measure(_reference(sketch, None), values)
    return d, p


# -- the report ------------------------------------------------------------------------------------------
def _round(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


@dataclass
class SensorDrift:
    """One sensor's drift measures and, for plots, both CDFs at the sketch points."""

    sensor: str
    psi: float
    ks_stat: float
    ks_pvalue: float
    drift: bool
    train_mean: float | None
    new_mean: float | None
    train_std: float | None
    rows: int
    points: list[float] = field(default_factory=list)
    train_cdf: list[float] = field(default_factory=list)
    new_cdf: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def shift_std(self) -> float | None:
        """Mean shift in training standard deviations (None when the sensor is flat or absent)."""
        if self.train_mean is None or self.new_mean is None or not self.train_std:
            return None
        return (self.new_mean - self.train_mean) / self.train_std

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "psi": _round(self.psi),
            "ks_pvalue": _round(self.ks_pvalue),
            "drift": bool(self.drift),
            "ks_stat": _round(self.ks_stat),
            "shift_std": _round(self.shift_std),
            "rows": self.rows,
        }
        if self.note:
            out["note"] = self.note
        if detail:
            out["distribution"] = {
                "values": list(self.points),
                "train_cdf": [_round(c) for c in self.train_cdf],
                "new_cdf": [_round(c) for c in self.new_cdf],
            }
        return out


@dataclass
class DriftReport:
    """Per-sensor drift of one dataset against a version's training statistics.

    ``space`` says what the sensor values are: ``raw`` units, or ``regime_z`` (standard deviations
    from the regime's training mean) when the training data had several regimes.
    """

    sensors: dict[str, SensorDrift]
    psi_threshold: float
    ks_pvalue_threshold: float
    rows: int
    data_hash: str
    reference_hash: str | None = None
    space: str = "raw"
    age_matched: bool = False
    regimes: int = 1
    regime_mix_psi: float | None = None
    age_mix_psi: float | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return [name for name, s in self.sensors.items() if s.drift]

    @property
    def any_drift(self) -> bool:
        return bool(self.drifted)

    def summary(self) -> str:
        """One sentence for a badge tooltip or the CLI."""
        if not self.drifted:
            return (
                f"No drift in {len(self.sensors)} sensors "
                f"(drift = PSI >= {self.psi_threshold:g} and KS p < {self.ks_pvalue_threshold:g})."
            )
        return f"Drift in {len(self.drifted)} of {len(self.sensors)} sensors: {', '.join(self.drifted)}."

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """The CLI JSON: ``{"sensors": {name: {"psi", "ks_pvalue", "drift", ...}}, "drifted": [...], ...}``."""
        return {
            "sensors": {name: s.to_dict(detail=detail) for name, s in self.sensors.items()},
            "drifted": self.drifted,
            "any_drift": self.any_drift,
            "thresholds": {"psi": self.psi_threshold, "ks_pvalue": self.ks_pvalue_threshold},
            "rows": self.rows,
            "data_hash": self.data_hash,
            "reference_hash": self.reference_hash,
            "space": self.space,
            "age_matched": self.age_matched,
            "regimes": self.regimes,
            "regime_mix_psi": _round(self.regime_mix_psi),
            "age_mix_psi": _round(self.age_mix_psi),
            "missing_sensors": list(self.missing),
        }


def _check_stats(stats: Any) -> None:
    if not isinstance(stats, dict) or stats.get("format") != STATS_FORMAT or "sensors" not in stats:
        raise IncompatibleDataError(
            f"The stored training statistics are not in the expected format ({STATS_FORMAT})."
        )


def compare(
    stats: dict[str, Any], ds: Dataset, *, psi_threshold: float = 0.25, ks_pvalue: float = 0.01
) -> DriftReport:
    """Per-sensor drift of ``ds`` against ``stats`` from :func:`training_statistics`.

    Sensors of the statistics that ``ds`` lacks are listed in ``missing``; extra sensors of ``ds``
    are ignored (the model never saw them). Constant sensors give finite numbers, never NaN.
    """
    _check_stats(stats)
    names = [name for name in stats["sensors"] if name in ds.frame.columns]
    missing = [name for name in stats["sensors"] if name not in ds.frame.columns]
    columns = {name: ds.frame[name].to_numpy(dtype=np.float64) for name in names}

    regime_mix_psi, n_regimes = None, 1
    if stats.get("regimes"):
        model = RegimeModel.from_dict(stats["regimes"])
        n_regimes = model.n_regimes
        labels = model.assign(ds.frame)  # IncompatibleDataError names a missing setting column
        columns = _regime_normalised(columns, labels, stats["regime_norm"])
        regime_mix_psi = population_stability_index(
            stats.get("regime_rows") or np.ones(n_regimes), np.bincount(labels, minlength=n_regimes)
        )

    age_weights, age_mix_psi = None, None
    if stats.get("age") and ds.time_kind == "cycle":  # one unit is placed by age too
        edges = np.asarray(stats["age"]["edges"], dtype=np.int64)
        strata = np.searchsorted(edges, unit_age(ds), side="right")
        age_weights = np.bincount(strata, minlength=len(edges) + 1).astype(np.float64)
        first = next((s for s in stats["sensors"].values() if "strata_count" in s), None)
        if first is not None:
            age_mix_psi = population_stability_index(first["strata_count"], age_weights)

    results: dict[str, SensorDrift] = {}
    for name in names:
        sketch = stats["sensors"][name]
        values = columns[name]
        finite = _finite(values)
        icc = float(sketch.get("icc") or 0.0)
        if not sketch.get("count"):
            ref = _Reference(np.zeros(0), np.zeros(0), 0.0)
        else:
            ref = _reference(sketch, age_weights)
            train_deff = design_effect(icc, float(stats.get("rows_per_unit") or 1.0))
            ref = _Reference(ref.points, ref.cdf, ref.size / train_deff)
        psi, d, p, new_cdf = _measure(ref, values, design_effect(icc, _rows_per_unit(ds)))
        note = ""
        if not finite.size:
            note = "no values in the new data"
        elif not sketch.get("count"):
            note = "no values in the training data"
        results[name] = SensorDrift(
            sensor=name,
            psi=psi,
            ks_stat=d,
            ks_pvalue=p,
            drift=bool(psi >= psi_threshold and p < ks_pvalue),
            train_mean=sketch.get("mean"),
            new_mean=float(finite.mean()) if finite.size else None,
            train_std=sketch.get("std"),
            rows=int(finite.size),
            points=[float(v) for v in ref.points],
            train_cdf=[float(c) for c in ref.cdf],
            new_cdf=[float(c) for c in new_cdf],
            note=note,
        )
    return DriftReport(
        sensors=results,
        psi_threshold=float(psi_threshold),
        ks_pvalue_threshold=float(ks_pvalue),
        rows=int(ds.n_rows),
        data_hash=ds.data_hash,
        reference_hash=stats.get("data_hash"),
        space="regime_z" if stats.get("regimes") else "raw",
        age_matched=age_weights is not None,
        regimes=n_regimes,
        regime_mix_psi=regime_mix_psi,
        age_mix_psi=age_mix_psi,
        missing=missing,
    )
