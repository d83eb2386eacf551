"""Fleet benchmark: risk ranking and maintenance plans on the C-MAPSS test files.

    python benchmarks/fleet_cmapss.py --data /work/shared/data/cmapss --subsets FD001 FD002 FD003 \
        [--horizon 30] [--cost-failure 500 2000] [--cost-visit 50] [--set ensemble=1 --set epochs=15] \
        [--registry DIR] [--json out.json] [--test-fraction 0.2] [--no-calibration] [--alarms | --alarms-only]
        [--no-speed | --whatif-only [--whatif-repeats N]] [--no-ui] [--seed N | --seeds N N ...] [--no-held-out]

Per subset, a Transformer is trained on train_FD00x.txt through the services (as the app does: the
registry's unit split holds out validation units and, for a RUL model, keeps half of them apart from
early stopping as calibration engines) into a benchmark registry (``--registry``; a version
trained there on the same file with the same settings is reused), then ``services.fleet.assess``
takes one snapshot per engine of test_FD00x.txt (its last cycle; the true RUL from RUL_FD00x.txt).
The predictive distribution's lower tail is calibrated on the version's held-out training engines cut
at random cycles (``services.fleet_calibration``; its test units: by default the calibration engines
carved out of the held-out ones, with ``--test-fraction 0`` its validation units), never on a test file, and so is the shape of the tail below the lowest quantile
(model / linear / exponential, by the held-out Brier score of P(T <= h)); ``--no-calibration`` measures
the model's own quantiles.

Printed, with H = ``--horizon``:

* precision and recall of "fails within H" (P(T <= H) > 0.5) against the true RUL (T <= H), and the
  Brier score of P(T <= H);
* realised cost of each policy over the fleet, with the accounting of ``services.fleet`` (costs in
  cycles of life: a visit at cycle s costs C_v + (T - s) if the engine still runs, else C_f; an engine
  not visited within H costs C_f if T <= H, else C_v), as a ratio to perfect knowledge (c), which
  pays C_v per engine:
  the recommended plan; (a) a fixed service interval (engine age in cycles) chosen on the training
  engines' lives to minimise the same cost per engine over the whole life; (b) service now when the
  median RUL < H; (c) perfect knowledge;
* the decisive band: engines whose median RUL is in [H, 1.5 H), which (b) leaves alone and the plan may
  service; their mean P(T <= H) against the share that failed within H (where calibration decides);
* the same costs of the plan and of (b) on the version's **held-out calibration engines**, out of
  sample (the engines split in two; each half planned with the tail calibration fitted on the other
  half), and the decisive band there: the data settings may be chosen on, beside the test file;
* with ``--seeds``: every seed's rows (one version per subset and seed), then per subset and cost the
  mean ratio of each policy over the seeds and on how many seeds the plan beat (a) and (b) — a test file
  of 100 engines at C_f 2000 turns on one engine (a failure costs 0.4 of the ratio), so one seed says
  little;
* assessment time (model loaded, drift check on) for synthetic fleets of 250 and 2,500 engines made by
  repeating FD001's test units with new ids, and the what-if time for 1,000 engines (median of 20): the
  plan alone (``plan`` from cached quantiles), and the fleet panel's update (plan, table and chart
  repainted, offscreen Qt; ``--no-ui`` skips it).

With ``--alarms`` (FD001's training file, or ``--alarm-subset``): anomaly alarms as a fleet signal.
One Telemanom version per sensor of ``--alarm-sensors`` (few sensors, ``--alarm-set`` epochs=5: reduced
compute) is trained through the services with a unit split of 60 % training, 20 % validation (early
stopping) and 20 % test engines. On the **validation** engines an alarm rule
(:mod:`turbofan_desktop.services.fleet_alarms`: which sensors, a minimum anomaly score, how many
sensors agree, how many cycles the signal must hold) is chosen to meet <= 10 % false-alarm engines
(first alarm in the first half of life) with a median lead time >= 50 cycles; it is then measured on
the **test** engines, which nothing was chosen on. Both are training engines the registry's split held
out; no test file is used. Printed with each sensor's plugin defaults (any anomaly raises the alarm).

Timings on a shared machine are noisy: each is the median of a few repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from turbofan_desktop.cli._jobs import parse_settings
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.fleet import (
    _levels_and_values,
    assess,
    failure_probability,
    plan,
    realised_cost,
)
from turbofan_desktop.services.fleet_alarms import (
    AlarmRule,
    EngineEvidence,
    alarm_metrics,
    candidate_rules,
    choose_rule,
)
from turbofan_desktop.services.fleet_calibration import (
    DEFAULT_CUTS_PER_UNIT,
    calibration_from_cuts,
    cut_snapshots,
)
from turbofan_desktop.services.inference import detect, predict_rul
from turbofan_desktop.services.training import TrainRequest, train, training_split
from turbofan_desktop.services.validation import held_out_data

DEFAULT_SETTINGS = {"ensemble": "1", "epochs": "15"}
ALARM_SENSORS = ["s_4", "s_7", "s_11", "s_12"]
ALARM_SETTINGS = {"epochs": "5"}


def trained_version(
    ws: Workspace, train_path: Path, settings: dict, seed: int, test_fraction: float | None = None
) -> tuple[int, float]:
    """A Transformer version trained on ``train_path`` with ``settings`` (reused when the registry has
    one with the same unit split) and the seconds its training took. ``test_fraction`` None trains as
    the app does: half of the held-out engines are kept apart from early stopping as calibration
    engines (``services.training.training_split``); 0 keeps none (the tail calibration then uses the
    validation engines); > 0 keeps that share of training engines apart as a test split."""
    request = TrainRequest(
        plugin="transformer",
        data_path=train_path,
        config={**settings, "seed": seed},
        seed=seed,
        test_fraction=test_fraction,
    )
    units = load_dataset(ws, train_path).units
    expected = training_split(ws.plugins.model("transformer"), units, request)
    plain = lambda group: [int(u) for u in group]  # noqa: E731
    for record in ws.registry.list_versions(plugin="transformer", limit=500):
        same_file = dict(record.lineage or {}).get("source") == str(train_path)
        same_config = all(str(record.config.get(k)) == str(v) for k, v in {**settings, "seed": seed}.items())
        split = record.provenance.split
        same_split = split is not None and all(
            plain(getattr(split, g)) == plain(getattr(expected, g)) for g in ("train", "val", "test")
        )
        if record.status in ("trained", "validated") and same_file and same_config and same_split:
            return int(record.id), float(record.training_seconds)
    started = time.perf_counter()
    summary = train(ws, request)
    if summary.failed or not summary.registered:
        raise SystemExit(f"training on {train_path} failed: {summary.to_dict()}")
    print(f"  trained {train_path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return summary.registered[0], time.perf_counter() - started


def trained_anomaly_versions(
    ws: Workspace, train_path: Path, sensors: list[str], settings: dict, seed: int
) -> tuple[dict[str, int], float]:
    """One Telemanom version per sensor trained on ``train_path`` with a 60/20/20 unit split (reused
    when the registry has them) and the seconds training took."""
    config = {**settings, "seed": seed}
    found: dict[str, int] = {}
    for record in ws.registry.list_versions(plugin="telemanom", limit=500):
        provenance = record.provenance
        same_file = dict(record.lineage or {}).get("source") == str(train_path)
        same_config = all(str(record.config.get(k)) == str(v) for k, v in config.items())
        has_test = provenance.split is not None and bool(provenance.split.test)
        usable = record.status in ("trained", "validated") and same_file and same_config and has_test
        if usable and record.target in sensors:
            found.setdefault(record.target, int(record.id))
    missing = [s for s in sensors if s not in found]
    started = time.perf_counter()
    if missing:
        summary = train(
            ws,
            TrainRequest(
                plugin="telemanom",
                data_path=train_path,
                targets=missing,
                config=config,
                seed=seed,
                val_fraction=0.2,
                test_fraction=0.2,
            ),
        )
        if summary.failed:
            raise SystemExit(f"Telemanom training on {train_path} failed: {summary.to_dict()}")
        for version_id in summary.registered:
            found[ws.registry.get(version_id).target] = int(version_id)
        print(
            f"  trained Telemanom on {', '.join(missing)} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return found, time.perf_counter() - started


def engine_evidence(ws: Workspace, versions: dict[str, int], dataset) -> list[EngineEvidence]:
    """Every run-to-failure engine of ``dataset`` with the anomaly ranges of each sensor's version."""
    times = dataset.frame.groupby("unit", sort=False)[dataset.time_col]
    first, last = times.min(), times.max()
    engines = {
        u: EngineEvidence(unit=u, first=float(first[u]), failure=float(last[u])) for u in dataset.units
    }
    for sensor, version_id in versions.items():
        result = detect(ws, version_id, dataset, record_kpis=False)
        for unit, found in result.units.items():
            engines[unit].ranges[sensor] = [
                (float(r.start), float(r.end), float(r.score)) for r in found.anomalies
            ]
    return list(engines.values())


def alarm_benchmark(ws: Workspace, train_path: Path, sensors: list[str], settings: dict, seed: int) -> dict:
    """The alarm rule chosen on the validation engines, measured on the test engines (module doc)."""
    versions, seconds = trained_anomaly_versions(ws, train_path, sensors, settings, seed)
    splits = {repr(ws.registry.get(v).provenance.split.test) for v in versions.values()}
    if len(splits) != 1:
        raise SystemExit("the sensors' versions were trained on different unit splits")
    split = ws.registry.get(next(iter(versions.values()))).provenance.split
    _train, val, test = split.apply(load_dataset(ws, train_path))
    started = time.perf_counter()
    choose_on, measure_on = engine_evidence(ws, versions, val), engine_evidence(ws, versions, test)
    detect_seconds = time.perf_counter() - started
    scores = [r[2] for e in choose_on for ranges in e.ranges.values() for r in ranges]
    thresholds = (
        sorted({0.0, *(float(np.quantile(scores, q)) for q in (0.25, 0.5, 0.75, 0.9))}) if scores else [0.0]
    )
    candidates = candidate_rules(sensors, thresholds, agreements=(1, 2, 3), persistences=(1, 5, 10, 20, 30))
    rule, chosen_val = choose_rule(choose_on, candidates)
    defaults = {
        sensor: {
            "validation": alarm_metrics(choose_on, AlarmRule((sensor,))),
            "test": alarm_metrics(measure_on, AlarmRule((sensor,))),
        }
        for sensor in sensors
    }
    any_sensor = AlarmRule(tuple(sensors))
    return {
        "train_file": str(train_path),
        "sensors": sensors,
        "settings": settings,
        "versions": versions,
        "train_seconds": seconds,
        "detect_seconds": detect_seconds,
        "validation_engines": len(choose_on),
        "test_engines": len(measure_on),
        "candidates": len(candidates),
        "defaults_per_sensor": defaults,
        "defaults_any_sensor": {
            "validation": alarm_metrics(choose_on, any_sensor),
            "test": alarm_metrics(measure_on, any_sensor),
        },
        "chosen_rule": rule.to_dict(),
        "chosen": {"validation": chosen_val, "test": alarm_metrics(measure_on, rule)},
    }


def print_alarms(row: dict) -> None:
    def line(m: dict) -> str:
        return (
            f"false alarm {m['false_alarm_share']:.0%}, median lead {m['lead_time_median']:.0f} cycles, "
            f"alarmed {m['alarmed_share']:.0%} of {m['engines']}"
        )

    print(
        f"alarms ({Path(row['train_file']).name}, Telemanom {row['settings']} on {', '.join(row['sensors'])}; "
        f"{row['validation_engines']} validation / {row['test_engines']} test engines held out):"
    )
    for sensor, d in row["defaults_per_sensor"].items():
        print(f"  defaults {sensor}: validation {line(d['validation'])}; test {line(d['test'])}")
    d = row["defaults_any_sensor"]
    print(f"  defaults, any sensor: validation {line(d['validation'])}; test {line(d['test'])}")
    print(f"  chosen on validation ({row['candidates']} rules): {row['chosen_rule']['text']}")
    print(f"    validation {line(row['chosen']['validation'])}")
    print(f"    test       {line(row['chosen']['test'])}", flush=True)


def fixed_interval(lives: np.ndarray, cost_failure: float, cost_visit: float) -> int:
    """The service age (cycles) that minimises the mean cost over whole lives: a failure before the
    visit costs C_f, a visit at age tau costs C_v + the life left (L - tau)."""
    taus = np.arange(1, int(lives.max()) + 1)
    costs = np.where(
        lives[None, :] < taus[:, None], cost_failure, cost_visit + lives[None, :] - taus[:, None]
    )
    return int(taus[np.argmin(costs.mean(axis=1))])


def precision_recall(flag: np.ndarray, truth: np.ndarray) -> tuple[float | None, float | None]:
    hits = float((flag & truth).sum())
    precision = hits / flag.sum() if flag.sum() else None
    recall = hits / truth.sum() if truth.sum() else None
    return precision, recall


def policy_costs(assessment, lives: np.ndarray, horizon: int, c_f: float, c_v: float) -> dict:
    true_rul = np.array([e.true_rul for e in assessment.engines], dtype=float)
    age = np.array([e.last_cycle for e in assessment.engines], dtype=float)
    median = np.array([e.rul for e in assessment.engines], dtype=float)
    ours = assessment.plan(horizon, c_f, c_v)
    tau = fixed_interval(lives, c_f, c_v)
    fixed_at = np.maximum(tau - age, 0.0)  # overdue engines are serviced now
    median_at = median_rule_at(median, horizon)

    def total(service_at):
        return float(
            realised_cost(service_at, true_rul, horizon=horizon, cost_failure=c_f, cost_visit=c_v).sum()
        )

    perfect = c_v * len(true_rul)
    # the fixed interval's whole future is known: its visit at age tau wastes the life left then, or
    # comes too late (the window's accounting counts visits after H as perfectly timed, for every policy)
    fails_at = age + true_rul
    whole_life = np.where(tau <= age, c_v + true_rul, np.where(fails_at < tau, c_f, c_v + fails_at - tau))
    rows = {
        "plan": total(ours.service_at),
        "fixed_interval": total(fixed_at),
        "fixed_interval_whole_life": float(whole_life.sum()),
        "median_below_h": total(median_at),
        "perfect": perfect,
    }
    failures = {
        name: int(
            ((np.isnan(s) | (s > horizon)) & (true_rul <= horizon)).sum()
            + ((s <= horizon) & (true_rul < s)).sum()
        )
        for name, s in (
            ("plan", ours.service_at),
            ("fixed_interval", fixed_at),
            ("median_below_h", median_at),
        )
    }
    return {
        "cost_failure": c_f,
        "cost_visit": c_v,
        "fixed_interval_cycles": tau,
        "total": rows,
        "ratio_to_perfect": {k: v / perfect for k, v in rows.items()},
        "unplanned_failures": failures,
        "counts": ours.counts(),
    }


def median_rule_at(median: np.ndarray, horizon: int) -> np.ndarray:
    """Policy (b): service now when the median RUL is below H, else no visit within H."""
    return np.where(median < horizon, 0.0, np.nan)


def decisive_band(p_fail: np.ndarray, median: np.ndarray, truth: np.ndarray, horizon: int) -> dict:
    """Engines whose median RUL is in [H, 1.5 H): policy (b) leaves them alone, the plan may service
    them. Their mean P(T <= H) and the share that did fail within H (reliability where it decides)."""
    band = (median >= horizon) & (median < 1.5 * horizon)
    return {
        "engines": int(band.sum()),
        "mean_p_fail": float(p_fail[band].mean()) if band.any() else None,
        "failed_within_h": float((truth[band] <= horizon).mean()) if band.any() else None,
    }


def held_out_check(
    ws: Workspace, version_id: int, horizon: int, costs: list[float], cost_visit: float, folds: int = 2
) -> dict:
    """The plan against (b) on the version's own held-out calibration engines, cut as the tail
    calibration cuts them, out of sample: the engines are split into ``folds`` groups, and each
    group's cuts are planned with the calibration fitted on the other groups' cuts. This is the
    data settings may be chosen on (never a test file). Engines are recovered from the cut ids
    (``cut_snapshots`` numbers each engine's cuts consecutively)."""
    record = ws.registry.get(version_id)
    cuts = cut_snapshots(held_out_data(ws, record))
    result = predict_rul(ws, version_id, cuts)
    levels, values = _levels_and_values(result)
    truth = np.array([float(u.true_rul) for u in result.units])
    engine = (np.array([int(u.unit) for u in result.units]) - 1) // DEFAULT_CUTS_PER_UNIT
    groups = np.random.default_rng(0).permutation(np.unique(engine))
    p_fail = np.zeros(len(truth))
    service_at = {c_f: np.full(len(truth), np.nan) for c_f in costs}
    for fold in range(folds):
        inside = np.isin(engine, groups[fold::folds])
        fitted = calibration_from_cuts(version_id, levels, values[~inside], truth[~inside])
        ext_levels, q = fitted.with_tail(levels, fitted.apply(levels, values[inside]))
        p_fail[inside] = failure_probability(ext_levels, q, float(horizon))
        for c_f in costs:
            ours = plan(ext_levels, q, horizon=horizon, cost_failure=c_f, cost_visit=cost_visit)
            service_at[c_f][inside] = ours.service_at
    median = values[:, int(np.argmin(np.abs(levels - 0.5)))]
    perfect = cost_visit * len(truth)

    def ratio(at: np.ndarray, c_f: float) -> float:
        cost = realised_cost(at, truth, horizon=horizon, cost_failure=c_f, cost_visit=cost_visit)
        return float(cost.sum() / perfect)

    return {
        "engines": int(len(groups)),
        "cuts": int(len(truth)),
        "band": decisive_band(p_fail, median, truth, horizon),
        "costs": [
            {
                "cost_failure": c_f,
                "plan": ratio(service_at[c_f], c_f),
                "median_below_h": ratio(median_rule_at(median, horizon), c_f),
            }
            for c_f in costs
        ],
    }


def synthetic_fleet(ws: Workspace, test_path: Path, engines: int):
    """FD001's test units repeated with new ids until ``engines`` engines."""
    data = load_dataset(ws, test_path)
    units = data.units
    frames = []
    for i in range(engines):
        rows = data.unit_frame(units[i % len(units)]).copy()
        rows["unit"] = i + 1
        frames.append(rows)
    frame = pd.concat(frames, ignore_index=True)
    return data.with_frame(
        frame,
        {"step": "synthetic fleet (benchmark)", "engines": engines},
        rul=None,
        source=None,
        name=f"synthetic_{engines}",
    )


def repeated_assessment(base, engines: int):
    """``base``'s engines repeated with new unit ids until ``engines`` (quantiles tiled with them)."""
    reps = int(np.ceil(engines / len(base)))
    rows = [dataclasses.replace(e, unit=i + 1) for i, e in enumerate((base.engines * reps)[:engines])]
    quantiles = np.tile(base.quantiles, (reps, 1))[:engines]
    return dataclasses.replace(base, engines=rows, quantiles=quantiles)


def panel_whatif_ms(assessment, horizons: list[int]) -> tuple[float, float]:
    """Median and fastest ms for the fleet panel to recompute the plan and repaint its table and chart
    after a change of H (offscreen Qt; the event loop runs until the repaint is done)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from turbofan_desktop.ui.fleet_panel import FleetPanel

    app = QApplication.instance() or QApplication([])
    panel = FleetPanel(None, None, lambda: [])
    panel.resize(1500, 700)
    panel.show()
    panel.show_assessment(assessment)
    app.processEvents()
    times = []
    for h in horizons:
        started = time.perf_counter()
        panel.horizon.setValue(h)  # valueChanged -> update_plan; the repaint is queued
        app.processEvents()
        times.append(time.perf_counter() - started)
    panel.close()
    return statistics.median(times) * 1000, min(times) * 1000


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def subset_row(ws: Workspace, args: argparse.Namespace, settings: dict, sub: str, seed: int) -> dict:
    """Train (or reuse) ``sub``'s version for ``seed``, assess its test file, print and return the row."""
    h = args.horizon
    train_path, test_path = args.data / f"train_{sub}.txt", args.data / f"test_{sub}.txt"
    version_id, train_seconds = trained_version(ws, train_path, settings, seed, args.test_fraction)
    assessment = assess(ws, [test_path], rul_version=version_id, calibrate=not args.no_calibration)
    lives = load_dataset(ws, train_path).unit_lengths().to_numpy(dtype=float)
    true_rul = np.array([e.true_rul for e in assessment.engines], dtype=float)
    p = assessment.plan(h, args.cost_failure[0], args.cost_visit).p_fail
    truth = true_rul <= h
    precision, recall = precision_recall(p > 0.5, truth)
    at = np.flatnonzero(np.isclose(assessment.levels, (1.0 - assessment.interval) / 2.0))
    lower = assessment.quantiles[:, at[0] if len(at) else 0]  # the interval's (not a tail knot)
    upper = assessment.quantiles[:, -1]
    row = {
        "version_id": version_id,
        "calibration": assessment.calibration.to_dict() if assessment.calibration else None,
        "train_seconds": train_seconds,
        "engines": len(assessment),
        "engines_failing_within_h": int(truth.sum()),
        "precision": precision,
        "recall": recall,
        "brier": float(np.mean((p - truth) ** 2)),
        "interval_coverage": float(((true_rul >= lower) & (true_rul <= upper)).mean()),
        "costs": [policy_costs(assessment, lives, h, c_f, args.cost_visit) for c_f in args.cost_failure],
        "band": decisive_band(p, assessment.raw_quantiles[:, _median_column(assessment)], true_rul, h),
    }
    if not args.no_calibration and not args.no_held_out:
        row["held_out"] = held_out_check(ws, version_id, h, args.cost_failure, args.cost_visit)
    print(
        f"{sub}: {row['engines']} engines, {row['engines_failing_within_h']} fail within {h}; "
        f"P>0.5 precision {precision:.2f} recall {recall:.2f}, Brier {row['brier']:.3f}, "
        f"interval coverage {row['interval_coverage']:.2f} (version {version_id}, trained {train_seconds:.0f} s)",
        flush=True,
    )
    if assessment.calibration is not None:
        print(f"  {assessment.calibration.summary()}")
    for c in row["costs"]:
        r = c["ratio_to_perfect"]
        c["beats_fixed_interval_by"] = r["fixed_interval"] - r["plan"]
        c["beats_median_below_h_by"] = r["median_below_h"] - r["plan"]
        f = c["unplanned_failures"]
        print(
            f"  C_f {c['cost_failure']:g} / C_v {c['cost_visit']:g}: cost / perfect  plan {r['plan']:.2f} "
            f"({f['plan']} failures; {c['counts']})  fixed interval {c['fixed_interval_cycles']} cycles "
            f"{r['fixed_interval']:.2f} ({f['fixed_interval']}; over the whole life {r['fixed_interval_whole_life']:.2f})  median<H {r['median_below_h']:.2f} "
            f"({f['median_below_h']}); plan beats (a) by {c['beats_fixed_interval_by']:+.2f}, "
            f"(b) by {c['beats_median_below_h_by']:+.2f}",
            flush=True,
        )
    band = row["band"]
    if band["engines"]:
        print(
            f"  engines with a median RUL in [{h}, {1.5 * h:g}): {band['engines']}, mean P(T <= {h}) "
            f"{band['mean_p_fail']:.2f}, failed within {h}: {band['failed_within_h']:.2f}"
        )
    held = row.get("held_out")
    if held:
        hb = held["band"]
        costs = ", ".join(
            f"C_f {c['cost_failure']:g} plan {c['plan']:.2f} / (b) {c['median_below_h']:.2f}"
            for c in held["costs"]
        )
        print(
            f"  held-out calibration engines, out of sample ({held['engines']} engines, {held['cuts']} cuts): "
            f"{costs}; median RUL in [{h}, {1.5 * h:g}): {hb['engines']} cuts, mean P {_num(hb['mean_p_fail'])}, "
            f"failed {_num(hb['failed_within_h'])}"
        )
    return row


def _median_column(assessment) -> int:
    """The median's column of the model's own quantiles (``raw_quantiles``: the model's levels, the
    last of ``levels`` after any tail knots)."""
    model_levels = np.asarray(assessment.levels)[-assessment.raw_quantiles.shape[1] :]
    return int(np.flatnonzero(np.isclose(model_levels, 0.5))[0])


def _num(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def seed_summary(by_seed: dict, subsets: list[str]) -> dict:
    """Per subset and failure cost: each policy's ratio to perfect knowledge per seed, their means, and
    on how many seeds the plan beat (a) and (b) (on the test file and on the held-out engines)."""
    summary = {}
    for sub in subsets:
        rows = [by_seed[seed][sub] for seed in by_seed]
        per_cost = []
        for k, first in enumerate(rows[0]["costs"]):
            ratios = [r["costs"][k]["ratio_to_perfect"] for r in rows]
            plan_r = [x["plan"] for x in ratios]
            fixed = [x["fixed_interval"] for x in ratios]
            median = [x["median_below_h"] for x in ratios]
            held = [r["held_out"]["costs"][k] for r in rows if r.get("held_out")]
            per_cost.append(
                {
                    "cost_failure": first["cost_failure"],
                    "plan": plan_r,
                    "fixed_interval": fixed,
                    "median_below_h": median,
                    "mean": {
                        "plan": float(np.mean(plan_r)),
                        "fixed_interval": float(np.mean(fixed)),
                        "median_below_h": float(np.mean(median)),
                    },
                    "plan_beats_fixed_interval": int(sum(p < f for p, f in zip(plan_r, fixed, strict=True))),
                    "plan_beats_median_below_h": int(sum(p < m for p, m in zip(plan_r, median, strict=True))),
                    "held_out_plan": [c["plan"] for c in held],
                    "held_out_median_below_h": [c["median_below_h"] for c in held],
                    "held_out_plan_beats_median_below_h": int(
                        sum(c["plan"] < c["median_below_h"] for c in held)
                    ),
                }
            )
        summary[sub] = {"seeds": list(by_seed), "costs": per_cost}
    return summary


def print_seed_summary(summary: dict) -> None:
    for sub, entry in summary.items():
        n = len(entry["seeds"])
        print(f"{sub} over seeds {entry['seeds']}:")
        for c in entry["costs"]:
            m = c["mean"]
            line = (
                f"  C_f {c['cost_failure']:g}: mean cost / perfect  plan {m['plan']:.3f}  (a) {m['fixed_interval']:.3f}  "
                f"(b) {m['median_below_h']:.3f}; plan beats (a) on {c['plan_beats_fixed_interval']} of {n} seeds, "
                f"(b) on {c['plan_beats_median_below_h']} of {n} (per seed plan "
                + " ".join(f"{x:.2f}" for x in c["plan"])
                + ", (b) "
                + " ".join(f"{x:.2f}" for x in c["median_below_h"])
                + ")"
            )
            if c["held_out_plan"]:
                line += (
                    f"; held-out engines: plan beats (b) on {c['held_out_plan_beats_median_below_h']} of "
                    f"{len(c['held_out_plan'])} (mean {np.mean(c['held_out_plan']):.3f} against "
                    f"{np.mean(c['held_out_median_below_h']):.3f})"
                )
            print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--subsets", nargs="+", default=["FD001", "FD002", "FD003"])
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--cost-failure", type=float, nargs="+", default=[500.0, 2000.0])
    parser.add_argument("--cost-visit", type=float, default=50.0)
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="several seeds, one version per subset and seed; prints each and a summary (default: --seed)",
    )
    parser.add_argument(
        "--no-held-out",
        action="store_true",
        help="skip the out-of-sample plan on the versions' held-out calibration engines",
    )
    parser.add_argument("--registry", type=Path, default=Path("/tmp/fleet_benchmark_registry"))
    parser.add_argument("--speed-engines", type=int, nargs=2, default=[250, 2500], metavar=("SMALL", "LARGE"))
    parser.add_argument("--whatif-engines", type=int, default=1000)
    parser.add_argument("--no-ui", action="store_true", help="skip the fleet panel's what-if timing")
    parser.add_argument("--no-speed", action="store_true", help="skip the timings")
    parser.add_argument("--no-calibration", action="store_true", help="the model's quantiles as they are")
    parser.add_argument("--alarms", action="store_true", help="also measure anomaly alarms as a fleet signal")
    parser.add_argument("--alarms-only", action="store_true", help="only the alarm part")
    parser.add_argument("--whatif-only", action="store_true", help="only the what-if timings")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="the Transformers' test split of training engines (the tail calibration uses it); default: "
        "as the app (half of the held-out engines kept apart from early stopping); 0: none (validation "
        "engines calibrate)",
    )
    parser.add_argument("--whatif-repeats", type=int, default=20)
    parser.add_argument("--alarm-subset", default="FD001")
    parser.add_argument("--alarm-sensors", nargs="+", default=ALARM_SENSORS)
    parser.add_argument("--alarm-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    settings = {**DEFAULT_SETTINGS, **parse_settings(args.sets)}
    h = args.horizon
    seeds = args.seeds or [args.seed]
    print(
        f"settings {settings}, seeds {seeds}, horizon {h}, visit {args.cost_visit:g}, failure {args.cost_failure}"
    )
    out: dict = {
        "settings": settings,
        "seed": seeds[0],
        "seeds": seeds,
        "horizon": h,
        "test_fraction": args.test_fraction,
        "subsets": {},
        "by_seed": {},
    }
    with Workspace.open(args.registry) as ws:
        versions = {}
        if args.alarms or args.alarms_only:
            alarm_settings = {**ALARM_SETTINGS, **parse_settings(args.alarm_set)}
            train_path = args.data / f"train_{args.alarm_subset}.txt"
            out["alarms"] = alarm_benchmark(ws, train_path, args.alarm_sensors, alarm_settings, seeds[0])
            print_alarms(out["alarms"])
        for seed in [] if (args.alarms_only or args.whatif_only) else seeds:
            if len(seeds) > 1:
                print(f"-- seed {seed}", flush=True)
            rows = {sub: subset_row(ws, args, settings, sub, seed) for sub in args.subsets}
            out["by_seed"][seed] = rows
            versions.setdefault(args.subsets[0], rows[args.subsets[0]]["version_id"])
        if out["by_seed"]:
            out["subsets"] = out["by_seed"][seeds[0]]
        if len(out["by_seed"]) > 1:
            out["summary"] = seed_summary(out["by_seed"], args.subsets)
            print_seed_summary(out["summary"])
        if args.alarms_only or args.no_speed:
            if args.json:
                args.json.write_text(json.dumps(out, indent=1, default=str))
            return 0
        # speed: FD001's version, synthetic fleets, model already loaded by the assessments above
        first = args.subsets[0]
        if first not in versions:  # --whatif-only: the version of the first subset, reused or trained
            versions[first] = trained_version(
                ws, args.data / f"train_{first}.txt", settings, seeds[0], args.test_fraction
            )[0]
        test_path = args.data / f"test_{first}.txt"
        speed = {}
        for engines in [] if args.whatif_only else args.speed_engines:
            fleet = synthetic_fleet(ws, test_path, engines)
            assess(ws, [fleet], rul_version=versions[first])  # warm
            seconds = timed(lambda fleet=fleet: assess(ws, [fleet], rul_version=versions[first]), 3)
            speed[f"assess_{engines}_s"] = seconds
            print(
                f"assessment of {engines} engines (model loaded, drift on): {seconds:.2f} s (median of 3)",
                flush=True,
            )
        base = assess(ws, [test_path], rul_version=versions[first], drift=False)
        big = repeated_assessment(base, args.whatif_engines)
        whatif = timed(
            lambda: plan(big.levels, big.quantiles, horizon=h, cost_failure=700, cost_visit=40), 20
        )
        speed[f"whatif_{args.whatif_engines}_ms"] = whatif * 1000
        print(f"what-if plan for {args.whatif_engines} engines: {whatif * 1000:.1f} ms (median of 20)")
        big.plan(h + 40, 700, 40)  # the curves once, as the panel's first plan makes them
        costs = iter(range(10**6))
        cached = timed(lambda: big.plan(h + next(costs) % 40, 700 + next(costs) % 50, 40), 20)
        speed[f"whatif_{args.whatif_engines}_cached_ms"] = cached * 1000
        print(
            f"what-if plan from the cached curves (other H and costs): {cached * 1000:.1f} ms (median of 20)"
        )
        if not args.no_ui:
            ui_ms, ui_best = panel_whatif_ms(big, [h + 1 + k % 40 for k in range(args.whatif_repeats)])
            speed[f"panel_whatif_{args.whatif_engines}_ms"] = ui_ms
            speed[f"panel_whatif_{args.whatif_engines}_best_ms"] = ui_best
            print(
                f"fleet panel what-if (plan + table + chart repaint) for {args.whatif_engines} engines: "
                f"{ui_ms:.1f} ms median of {args.whatif_repeats}, fastest {ui_best:.1f} ms"
            )
        out["speed"] = speed
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
