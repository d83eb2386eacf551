"""Anomaly alarms as a fleet signal: when does an engine's anomaly evidence amount to an alarm?

One anomaly version per sensor flags ranges of cycles with a score each. A fleet needs one alarm per
engine, and a false one in the first half of an engine's life costs a visit for nothing. An
:class:`AlarmRule` turns an engine's ranges into its first alarm cycle, explicitly:

* only ranges of the rule's ``sensors`` with a score of at least ``min_score`` count;
* the signal at a cycle is the number of those sensors with such a range covering it; it is on when at
  least ``min_sensors`` agree;
* the alarm fires at the first cycle where the signal has been on for ``persistence`` consecutive
  cycles (so it is known at that cycle, not before).

:func:`alarm_metrics` scores a rule on run-to-failure engines as the Telemanom plugin does (the first
alarm's lead time before failure; a false alarm is a first alarm in the first half of life), and
:func:`choose_rule` picks a rule from candidates on engines held out of training. Pure Python + numpy.

**In the fleet view** an engine is a snapshot: :func:`snapshot_alarm` applies a rule to the anomaly
ranges the assessment found in its last cycles (``services.fleet``'s anomaly window) and gives the
cycle at which the alarm fired there, or None. :data:`DEFAULT_RULE` is the rule the fleet benchmark
chose on FD001's held-out validation engines (``benchmarks/fleet_cmapss.py --alarms-only``: Telemanom,
``epochs=5``, sensors s_4, s_7, s_11, s_12, 775 candidates; validation 10 % false-alarm engines, median
lead 56 cycles; on the held-out test engines nothing was chosen on, 10 % and 54 cycles). Its minimum
score belongs to those versions' scores: with other versions, set the rule again (the panel can).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AlarmRule:
    """Which sensors count, how strong a range must be, how many must agree and for how long."""

    sensors: tuple[str, ...]
    min_score: float = 0.0
    min_sensors: int = 1
    persistence: int = 1

    def describe(self) -> str:
        agree = f"{self.min_sensors} of {len(self.sensors)}" if len(self.sensors) > 1 else "1"
        return (
            f"{agree} of {', '.join(self.sensors)} with score >= {self.min_score:.3g}, "
            f"held {self.persistence} cycle(s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensors": list(self.sensors),
            "min_score": self.min_score,
            "min_sensors": self.min_sensors,
            "persistence": self.persistence,
            "text": self.describe(),
        }


DEFAULT_RULE = AlarmRule(("s_7", "s_11", "s_12"), min_score=3.93, min_sensors=1, persistence=1)


def parse_rule(sensors: str | Sequence[str], min_score: Any, min_sensors: Any, persistence: Any) -> AlarmRule:
    """A rule from user input (``sensors`` comma- or space-separated); ConfigError with one sentence
    saying what was expected."""
    from turbofan_desktop.errors import ConfigError

    names = sensors.replace(",", " ").split() if isinstance(sensors, str) else [str(s) for s in sensors]
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise ConfigError("An alarm rule needs at least one sensor name (for example s_7, s_11).")
    try:
        score, agree, hold = float(min_score), int(min_sensors), int(persistence)
    except (TypeError, ValueError):
        raise ConfigError(
            "An alarm rule's minimum score must be a number, its agreement and persistence whole numbers."
        ) from None
    if not np.isfinite(score) or score < 0:
        raise ConfigError(f"An alarm rule's minimum score must be a number of at least 0, not {min_score}.")
    if not 1 <= agree <= len(names):
        raise ConfigError(
            f"An alarm rule's agreement must be between 1 and its {len(names)} sensor(s), not {min_sensors}."
        )
    if hold < 1:
        raise ConfigError(f"An alarm rule's persistence must be at least 1 cycle, not {persistence}.")
    return AlarmRule(tuple(names), score, agree, hold)


@dataclass
class EngineEvidence:
    """One run-to-failure engine: its first and last (failure) cycle and, per sensor, the anomaly
    ranges ``(start, end, score)`` its versions found, in cycles."""

    unit: Any
    first: float
    failure: float
    ranges: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)


def first_alarm(engine: EngineEvidence, rule: AlarmRule) -> float | None:
    """The cycle of the engine's first alarm under ``rule`` (None: no alarm)."""
    cycles = np.arange(int(engine.first), int(engine.failure) + 1)
    if not len(cycles):
        return None
    count = np.zeros(len(cycles), dtype=np.int32)
    for sensor in rule.sensors:
        covered = np.zeros(len(cycles), dtype=bool)
        for start, end, score in engine.ranges.get(sensor, ()):
            if score >= rule.min_score:
                covered |= (cycles >= start) & (cycles <= end)
        count += covered
    on = count >= rule.min_sensors
    if rule.persistence > 1:  # consecutive cycles on, ending at each cycle
        run = np.zeros(len(on), dtype=np.int32)
        streak = 0
        for i, value in enumerate(on):
            streak = streak + 1 if value else 0
            run[i] = streak
        on = run >= rule.persistence
    hits = np.flatnonzero(on)
    return float(cycles[hits[0]]) if len(hits) else None


def snapshot_alarm(
    anomalies: Sequence[dict[str, Any]], last_cycle: Any, rule: AlarmRule, window: int
) -> float | None:
    """The cycle at which ``rule`` fired within the last ``window`` cycles before ``last_cycle``, from
    an engine's anomaly ranges (dicts with ``sensor``, ``start``, ``end``, ``score`` as the fleet
    assessment gives them); None without an alarm, or when the cycles are not numbers."""
    try:
        last = float(last_cycle)
        ranges: dict[str, list[tuple[float, float, float]]] = {}
        for a in anomalies:
            ranges.setdefault(str(a["sensor"]), []).append(
                (float(a["start"]), float(a["end"]), float(a["score"]))
            )
    except (TypeError, ValueError, KeyError):
        return None
    engine = EngineEvidence(unit=None, first=max(last - int(window), 0.0), failure=last, ranges=ranges)
    return first_alarm(engine, rule)


def fleet_alarms(assessment: Any, rule: AlarmRule) -> np.ndarray:
    """Per engine of a fleet assessment (in its order): the cycle its alarm fired under ``rule`` within
    the assessment's anomaly window, NaN for none. Pure arithmetic on the cached ranges (no model)."""
    return np.array(
        [
            np.nan
            if (at := snapshot_alarm(e.anomalies, e.last_cycle, rule, assessment.anomaly_window)) is None
            else at
            for e in assessment.engines
        ],
        dtype=np.float64,
    )


def alarm_metrics(engines: Sequence[EngineEvidence], rule: AlarmRule) -> dict[str, Any]:
    """Over the engines: the share with a first alarm in the first half of life (false alarm), the
    share alarmed at all, and the median lead time (failure minus first alarm) of the alarmed ones."""
    leads, early = [], 0
    for engine in engines:
        at = first_alarm(engine, rule)
        if at is None:
            continue
        leads.append(engine.failure - at)
        early += at <= engine.first + (engine.failure - engine.first) / 2.0
    n = len(engines)
    return {
        "engines": n,
        "false_alarm_share": early / n if n else float("nan"),
        "alarmed_share": len(leads) / n if n else float("nan"),
        "lead_time_median": float(np.median(leads)) if leads else float("nan"),
    }


def candidate_rules(
    sensors: Sequence[str],
    scores: Iterable[float] = (0.0,),
    agreements: Iterable[int] = (1, 2),
    persistences: Iterable[int] = (1, 5, 10, 20),
) -> list[AlarmRule]:
    """Every rule over the non-empty subsets of ``sensors`` and the given thresholds."""
    rules = []
    scores, agreements, persistences = list(scores), list(agreements), list(persistences)
    for size in range(1, len(sensors) + 1):
        for subset in itertools.combinations(sensors, size):
            for k in agreements:
                if k > size:
                    continue
                for s in scores:
                    for p in persistences:
                        rules.append(AlarmRule(tuple(subset), float(s), int(k), int(p)))
    return rules


def choose_rule(
    engines: Sequence[EngineEvidence],
    candidates: Sequence[AlarmRule],
    *,
    max_false_alarms: float = 0.10,
    min_lead: float = 50.0,
) -> tuple[AlarmRule, dict[str, Any]]:
    """The candidate with the longest median lead among those meeting both goals on ``engines``
    (ties: fewer false alarms, then the simpler rule); when none meets both, the one with the fewest
    false alarms among those with the lead, else the fewest false alarms with the longest lead."""
    if not candidates:
        raise ValueError("no candidate alarm rule")
    scored = [(rule, alarm_metrics(engines, rule)) for rule in candidates]

    def lead(m: dict[str, Any]) -> float:
        return -np.inf if np.isnan(m["lead_time_median"]) else m["lead_time_median"]

    def simple(rule: AlarmRule) -> tuple[int, int]:
        return (len(rule.sensors), rule.persistence)

    both = [(r, m) for r, m in scored if m["false_alarm_share"] <= max_false_alarms and lead(m) >= min_lead]
    if both:
        return min(both, key=lambda rm: (-lead(rm[1]), rm[1]["false_alarm_share"], simple(rm[0])))
    with_lead = [(r, m) for r, m in scored if lead(m) >= min_lead]
    pool = with_lead or scored
    return min(pool, key=lambda rm: (rm[1]["false_alarm_share"], -lead(rm[1]), simple(rm[0])))


__all__ = [
    "DEFAULT_RULE",
    "AlarmRule",
    "EngineEvidence",
    "alarm_metrics",
    "candidate_rules",
    "choose_rule",
    "first_alarm",
    "fleet_alarms",
    "parse_rule",
    "snapshot_alarm",
]
