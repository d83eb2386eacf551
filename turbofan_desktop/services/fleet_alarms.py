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
    "AlarmRule",
    "EngineEvidence",
    "alarm_metrics",
    "candidate_rules",
    "choose_rule",
    "first_alarm",
]
