"""Anomaly alarms as a fleet signal: the rule's first alarm, its metrics, and the choice of a rule."""

from __future__ import annotations

import math

import pytest

from turbofan_desktop.services.fleet_alarms import (
    AlarmRule,
    EngineEvidence,
    alarm_metrics,
    candidate_rules,
    choose_rule,
    first_alarm,
)


def engine(unit, ranges, first=1, failure=200):
    return EngineEvidence(unit=unit, first=first, failure=failure, ranges=ranges)


def test_first_alarm_follows_score_agreement_and_persistence():
    e = engine(
        1,
        {
            "s_2": [(20, 22, 1.0), (150, 170, 5.0)],  # a weak early blip, a strong late range
            "s_3": [(160, 200, 2.0)],
        },
    )
    assert first_alarm(e, AlarmRule(("s_2",))) == 20  # any range: the blip
    assert first_alarm(e, AlarmRule(("s_2",), min_score=3.0)) == 150  # the blip is too weak
    assert first_alarm(e, AlarmRule(("s_2", "s_3"), min_sensors=2)) == 160  # both agree from 160
    assert first_alarm(e, AlarmRule(("s_2",), persistence=5)) == 154  # held 5 cycles: known at 154
    assert first_alarm(e, AlarmRule(("s_2",), persistence=30)) is None  # never held that long
    assert first_alarm(e, AlarmRule(("s_9",))) is None  # a sensor without ranges


def test_metrics_count_false_alarms_in_the_first_half_and_the_median_lead():
    engines = [
        engine(1, {"s_2": [(50, 60, 9.0)]}),  # first alarm at 50 of 200: a false alarm, lead 150
        engine(2, {"s_2": [(150, 200, 9.0)]}),  # lead 50
        engine(3, {"s_2": [(170, 200, 9.0)]}),  # lead 30
        engine(4, {}),  # never alarmed
    ]
    m = alarm_metrics(engines, AlarmRule(("s_2",)))
    assert m["engines"] == 4 and m["false_alarm_share"] == 0.25 and m["alarmed_share"] == 0.75
    assert m["lead_time_median"] == 50.0
    assert math.isnan(alarm_metrics([], AlarmRule(("s_2",)))["false_alarm_share"])


def test_the_chosen_rule_meets_both_goals_with_the_longest_lead():
    # s_2 alarms early on every engine (half of them in the first half of life); s_3 only late
    engines = [
        engine(u, {"s_2": [(40 if u % 2 else 120, 200, 1.0)], "s_3": [(130, 200, 4.0)]}) for u in range(10)
    ]
    candidates = candidate_rules(["s_2", "s_3"], scores=(0.0, 3.0), agreements=(1, 2), persistences=(1, 10))
    assert AlarmRule(("s_2", "s_3"), 3.0, 2, 10) in candidates
    assert all(r.min_sensors <= len(r.sensors) for r in candidates)
    rule, m = choose_rule(engines, candidates)
    assert m["false_alarm_share"] <= 0.10 and m["lead_time_median"] >= 50
    assert m == alarm_metrics(engines, rule)
    # among the rules meeting both goals none has a longer lead
    best = max(
        alarm_metrics(engines, r)["lead_time_median"]
        for r in candidates
        if alarm_metrics(engines, r)["false_alarm_share"] <= 0.10
        and alarm_metrics(engines, r)["lead_time_median"] >= 50
    )
    assert m["lead_time_median"] == best
    # no rule meets both: the fewest false alarms among those with the lead
    rule, m = choose_rule(engines, candidates, max_false_alarms=0.0, min_lead=75)
    assert m["false_alarm_share"] == min(
        alarm_metrics(engines, r)["false_alarm_share"]
        for r in candidates
        if alarm_metrics(engines, r)["lead_time_median"] >= 75
    )
    with pytest.raises(ValueError):
        choose_rule(engines, [])


def test_a_snapshot_alarms_only_from_the_rules_sensors_scores_and_persistence():
    from turbofan_desktop.services.fleet_alarms import snapshot_alarm

    found = [
        {"sensor": "s_7", "version_id": 1, "start": 150, "end": 155, "score": 5.0},
        {"sensor": "s_11", "version_id": 2, "start": 170, "end": 190, "score": 2.0},
        {"sensor": "s_4", "version_id": 3, "start": 100, "end": 200, "score": 9.0},  # not in the rule
    ]
    rule = AlarmRule(("s_7", "s_11"), min_score=3.0)
    assert snapshot_alarm(found, 200, rule, window=60) == 150.0  # s_7's strong range
    assert snapshot_alarm(found, 200, rule, window=40) is None  # before the window
    assert snapshot_alarm(found, 200, AlarmRule(("s_7", "s_11"), min_score=1.0), window=40) == 170.0
    assert snapshot_alarm(found, 200, AlarmRule(("s_7", "s_11"), min_score=1.0, persistence=10), 40) == 179.0
    assert snapshot_alarm(found, 200, AlarmRule(("s_7", "s_11"), min_sensors=2), 60) is None  # never both
    assert snapshot_alarm([], 200, rule, 50) is None
    assert snapshot_alarm(found, "2020-01-01", rule, 50) is None  # not cycles: no alarm, no crash


def test_fleet_alarms_follow_the_engines_and_the_default_rule_is_documented():
    from types import SimpleNamespace

    from turbofan_desktop.services import fleet_alarms

    strong = {"sensor": "s_11", "start": 90, "end": 95, "score": 6.0}
    weak = {"sensor": "s_11", "start": 90, "end": 95, "score": 1.0}
    fleet = SimpleNamespace(
        anomaly_window=50,
        engines=[SimpleNamespace(anomalies=a, last_cycle=100) for a in ([strong], [weak], [])],
    )
    alarms = fleet_alarms.fleet_alarms(fleet, fleet_alarms.DEFAULT_RULE)
    assert alarms[0] == 90.0 and math.isnan(alarms[1]) and math.isnan(alarms[2])
    assert AlarmRule(("s_7", "s_11", "s_12"), 3.93, 1, 1) == fleet_alarms.DEFAULT_RULE  # as documented


@pytest.mark.parametrize(
    ("sensors", "score", "agree", "hold", "words"),
    [
        ("", 1, 1, 1, "at least one sensor"),
        ("s_7, s_11", -1, 1, 1, "at least 0"),
        ("s_7", 1, 2, 1, "between 1 and its 1 sensor"),
        ("s_7", 1, 1, 0, "at least 1 cycle"),
        ("s_7", "x", 1, 1, "must be a number"),
    ],
)
def test_a_rule_from_user_input_that_makes_no_sense_is_one_sentence(sensors, score, agree, hold, words):
    from turbofan_desktop.errors import ConfigError
    from turbofan_desktop.services.fleet_alarms import parse_rule

    with pytest.raises(ConfigError, match=words):
        parse_rule(sensors, score, agree, hold)


def test_a_rule_from_user_input():
    from turbofan_desktop.services.fleet_alarms import parse_rule

    rule = parse_rule("s_7, s_11 s_7", "2.5", 2, 3)
    assert rule == AlarmRule(("s_7", "s_11"), 2.5, 2, 3)
