"""The fleet assessment with tiny trained versions: through the service and through ``cli.main``."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.cli import main
from turbofan_desktop.errors import ConfigError, IncompatibleDataError, PluginError
from turbofan_desktop.services import Workspace
from turbofan_desktop.services import fleet as fleet_service
from turbofan_desktop.services.applicability import OutOfScopeError
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.fleet import ACTIONS, assess, default_rul_version
from turbofan_desktop.services.fleet_alarms import DEFAULT_RULE, AlarmRule, snapshot_alarm
from turbofan_desktop.services.inference import detect, predict_rul
from turbofan_desktop.services.training import TrainRequest, train
from turbofan_desktop.services.validation import held_out_data

JSON_KEYS = {
    "unit",
    "last_cycle",
    "rul",
    "lower",
    "upper",
    "p_fail_within_h",
    "anomalies",
    "drift",
    "recommendation",
    "alarm",
}


@pytest.fixture(scope="module")
def fleet_registry(tmp_path_factory, fd001_small):
    """A registry with a tiny Transformer (RUL) and a tiny Telemanom on s_2 (anomalies)."""
    require_plugin("transformer")
    require_plugin("telemanom")
    home = tmp_path_factory.mktemp("fleet_registry")
    with Workspace.open(home) as ws:
        versions = {}
        for plugin, targets in (("transformer", None), ("telemanom", ["s_2"])):
            summary = train(
                ws,
                TrainRequest(
                    plugin=plugin,
                    data_path=fd001_small["train"],
                    targets=targets,
                    config=TINY[plugin],
                    # 4 of the 10 engines held out: the Transformer keeps 2 apart as calibration engines
                    # (20 cuts, the calibration's minimum)
                    val_fraction=0.4,
                ),
            )
            assert summary.failed == 0, summary.to_dict()
            versions[plugin] = summary.registered[0]
    return home, versions


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- bad input: one sentence, exit 2 ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--horizon", "0"], "horizon"),
        (["--cost-failure", "10", "--cost-visit", "50"], "must exceed"),
        (["--cost-visit", "-5"], "not negative"),
        (["--alarm-sensors", "s_2", "--alarm-agree", "2"], "agreement"),
        (["--alarm-min-score", "-1"], "minimum score"),
        (["--alarm-sensors", " , "], "at least one sensor"),
    ],
)
def test_bad_plan_settings_exit_2_before_any_model_runs(capsys, tmp_path, fd001_small, extra, words):
    code, out, err = run_cli(capsys, "fleet", str(fd001_small["test"]), "--registry", str(tmp_path), *extra)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and err.count("\n") == 1


def test_a_missing_file_and_a_version_without_rul_exit_2(capsys, fleet_registry, fd001_small, tmp_path):
    home, versions = fleet_registry
    code, _, err = run_cli(capsys, "fleet", str(tmp_path / "nope.txt"), "--registry", str(home))
    assert code == 2 and "nope.txt" in err and "does not exist" in err
    code, _, err = run_cli(
        capsys,
        "fleet",
        str(fd001_small["test"]),
        "--rul-version",
        str(versions["telemanom"]),
        "--registry",
        str(home),
    )
    assert code == 2 and "does not offer rul" in err
    code, _, err = run_cli(
        capsys, "fleet", str(fd001_small["test"]), "--rul-version", "999", "--registry", str(home)
    )
    assert code == 2 and "999" in err


def test_an_empty_registry_says_to_train_first(capsys, fd001_small, tmp_path):
    Workspace.open(tmp_path).close()
    code, _, err = run_cli(capsys, "fleet", str(fd001_small["test"]), "--registry", str(tmp_path))
    assert code == 2 and "train a Transformer first" in err


def test_a_file_without_the_versions_sensors_is_named(fleet_registry, fd001_small, tmp_path):
    home, versions = fleet_registry
    rows = [line.split() for line in fd001_small["test"].read_text().splitlines() if line.strip()]
    cut = tmp_path / "test_cut.csv"  # unit, cycle and two sensors: not what the version was trained on
    cut.write_text("unit,cycle,s_2,s_3\n" + "".join(f"{r[0]},{r[1]},{r[6]},{r[7]}\n" for r in rows))
    with Workspace.open(home) as ws, pytest.raises((IncompatibleDataError, PluginError), match="test_cut"):
        assess(ws, [fd001_small["test"], cut], rul_version=versions["transformer"])


# -- the assessment ----------------------------------------------------------------------------------------
def test_assessment_matches_the_models_rul_and_keeps_its_quantiles(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        data = load_dataset(ws, fd001_small["test"])
        assessment = assess(ws, [fd001_small["test"]])  # the default: the newest RUL version
        direct = predict_rul(ws, versions["transformer"], data)
    assert assessment.rul_version == versions["transformer"]
    assert len(assessment) == len(direct.units) == 6
    assert list(assessment.levels) == pytest.approx([0.1, 0.5, 0.9])
    for engine, unit, q in zip(assessment.engines, direct.units, assessment.raw_quantiles, strict=True):
        assert engine.unit == unit.unit and engine.rul == pytest.approx(unit.rul)
        assert q == pytest.approx([unit.lower, unit.rul, unit.upper])
        assert engine.true_rul == unit.true_rul
        assert engine.last_cycle == data.unit_frame(unit.unit)["cycle"].max()
    assert assessment.files[0].data_hash == data.data_hash and assessment.files[0].units == 6


def test_what_if_recomputes_from_the_cached_quantiles_without_the_model(
    fleet_registry, fd001_small, monkeypatch
):
    home, _ = fleet_registry
    with Workspace.open(home) as ws:
        assessment = assess(ws, [fd001_small["test"]], drift=False)
    monkeypatch.setattr(fleet_service, "predict_rul", lambda *a, **k: pytest.fail("the model ran again"))
    short = assessment.plan(horizon=5, cost_failure=500, cost_visit=50)
    long = assessment.plan(horizon=200, cost_failure=500, cost_visit=50)
    assert np.all(long.p_fail >= short.p_fail) and long.p_fail.max() > short.p_fail.min()
    assert set(long.action) <= set(ACTIONS)
    with pytest.raises(ConfigError):
        assessment.plan(horizon=-3)


def test_anomalies_in_the_last_cycles_come_from_the_anomaly_versions(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        everything = assess(
            ws, [fd001_small["test"]], anomaly_versions=[versions["telemanom"]], anomaly_window=10**6
        )
        recent = assess(ws, [fd001_small["test"]], anomaly_versions=[versions["telemanom"]], anomaly_window=0)
        detection = detect(
            ws, versions["telemanom"], load_dataset(ws, fd001_small["test"]), record_kpis=False
        )
        history = ws.registry.metric_history(versions["telemanom"])
    # a fleet view only reads: no detection KPIs, no drift checks added to the versions' histories
    assert {point.kind for point in history} == {"validation"}  # only what training recorded
    for engine in everything.engines:
        ranges = detection.units[engine.unit].anomalies
        assert [(a["start"], a["end"]) for a in engine.anomalies] == [(r.start, r.end) for r in ranges]
        assert all(
            a["sensor"] == "s_2" and a["version_id"] == versions["telemanom"] for a in engine.anomalies
        )
    for engine in recent.engines:  # window 0: only ranges reaching the last cycle
        assert all(a["end"] >= engine.last_cycle for a in engine.anomalies)


def test_the_default_version_prefers_a_production_one_trained_on_matching_data(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        data = load_dataset(ws, fd001_small["test"])
        assert default_rul_version(ws, data) == versions["transformer"]  # nothing in production: newest
        record = ws.registry.get(versions["transformer"])
    assert fleet_service._pairing_key(record.lineage["source"]) == "small"
    assert (
        fleet_service._pairing_key("x/test_FD001.txt")
        == fleet_service._pairing_key("train_FD001.txt")
        == "fd001"
    )


def test_the_lower_tail_is_calibrated_on_the_versions_held_out_training_engines(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        calibrated = assess(ws, [fd001_small["test"]], drift=False)
        plain = assess(ws, [fd001_small["test"]], drift=False, calibrate=False)
        held = held_out_data(ws, ws.registry.get(versions["transformer"]))
    calibration = calibrated.calibration
    assert calibration.calibrated and calibration.units == len(held.units) >= 1
    # the app's default split kept these engines apart from fitting and early stopping
    split = held_split(home, versions["transformer"])
    assert split.test and set(held.units) == set(split.test) and calibration.engines == "test"
    assert "kept apart from fitting and early stopping" in calibration.summary()
    assert calibration.to_dict()["engines"] == "test"
    assert calibration.cuts == 10 * len(held.units)  # ten cuts per held-out engine
    assert calibration.levels == (0.1,) and calibration.scales[0] >= 1.0
    # only the lower quantile moves, only ever down, and the table's lower bound shows it
    # the chosen tail's knots come first, at levels below the model's lowest; then the model's levels
    own = np.flatnonzero(np.isin(np.round(calibrated.levels, 9), np.round(plain.levels, 9)))
    assert list(calibrated.levels[own]) == pytest.approx(list(plain.levels))
    assert np.all(calibrated.levels[: own[0]] < plain.levels[0])
    at_own = calibrated.quantiles[:, own]
    assert np.all(calibrated.quantiles[:, : own[0]] <= at_own[:, :1])
    assert np.all(at_own[:, 0] <= calibrated.raw_quantiles[:, 0])
    assert np.array_equal(at_own[:, 1:], calibrated.raw_quantiles[:, 1:])
    assert [e.lower for e in calibrated.engines] == pytest.approx(list(at_own[:, 0]))
    assert calibration.tail_shape in ("model", "linear", "exponential")
    assert calibration.brier_after <= calibration.brier_before
    assert plain.calibration is None and np.array_equal(plain.quantiles, plain.raw_quantiles)
    assert np.array_equal(plain.raw_quantiles, calibrated.raw_quantiles)
    assert np.all(calibrated.plan().p_fail >= plain.plan().p_fail - 1e-12)


def held_split(home, version_id):
    with Workspace.open(home) as ws:
        return ws.registry.get(version_id).provenance.split


def test_a_version_without_calibration_engines_is_calibrated_on_its_validation_engines_and_says_so(
    fd001_small, tmp_path
):
    """Versions trained before calibration engines were kept apart (no test split) still work."""
    require_plugin("transformer")
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(
            ws,
            TrainRequest(
                plugin="transformer",
                data_path=fd001_small["train"],
                config=TINY["transformer"],
                test_fraction=0.0,
            ),
        )
        old = summary.registered[0]
        split = ws.registry.get(old).provenance.split
        assert not split.test and split.val
        assessment = assess(ws, [fd001_small["test"]], rul_version=old, drift=False)
    calibration = assessment.calibration
    assert calibration.engines == "val" and calibration.units == len(split.val)
    assert "validation engines" in calibration.summary() and "early stopping" in calibration.summary()


def test_every_file_carries_the_verdict_of_every_version_used(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        assessment = assess(ws, [fd001_small["test"]], anomaly_versions=[versions["telemanom"]], drift=False)
    verdicts = assessment.files[0].applicability
    assert [(v["role"], v["version_id"]) for v in verdicts] == [
        ("rul", versions["transformer"]),
        ("anomaly", versions["telemanom"]),
    ]
    assert all(v["verdict"] in ("ok", "caution") and v["used"] for v in verdicts)
    summary = assessment.applicability()
    assert summary["verdict"] == assessment.files[0].verdict in ("ok", "caution")
    assert summary["files"][0]["path"] == assessment.files[0].path
    assert all(e.applicability == assessment.files[0].verdict for e in assessment.engines)


def test_a_file_out_of_scope_is_refused_or_assessed_with_its_verdict(fleet_registry, fd001_small, tmp_path):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        data = load_dataset(ws, fd001_small["test"])
        frame = data.frame.copy()
        frame["s_2"] = frame["s_2"] + 40 * frame["s_2"].std()  # far outside the training range
        moved = data.with_frame(frame, {"step": "shift s_2"}, name="moved.txt", source=None)
        with pytest.raises(OutOfScopeError, match="out of scope on"):
            assess(ws, [moved], anomaly_versions=[versions["telemanom"]], drift=False)
        accepted = assess(
            ws,
            [moved],
            anomaly_versions=[versions["telemanom"]],
            anomaly_window=10**6,
            drift=False,
            accept_out_of_scope=True,
        )
    rul, anomaly = accepted.files[0].applicability
    assert rul["verdict"] == "out_of_scope" and rul["used"] and "s_2" in " ".join(rul["reasons"])
    # the anomaly version out of the file's scope is left out of it, and says so
    assert anomaly["verdict"] == "out_of_scope" and not anomaly["used"]
    assert all(e.anomalies == [] and e.applicability == "out_of_scope" for e in accepted.engines)
    assert accepted.applicability()["verdict"] == "out_of_scope"
    assert "left out" in fleet_service.verdict_line(anomaly)


# -- the command -------------------------------------------------------------------------------------------
def test_cli_json_has_one_object_per_unit_most_urgent_first(capsys, fleet_registry, fd001_small):
    home, versions = fleet_registry
    code, out, err = run_cli(
        capsys,
        "fleet",
        str(fd001_small["test"]),
        "--rul-version",
        str(versions["transformer"]),
        "--anomaly-versions",
        str(versions["telemanom"]),
        "--horizon",
        "40",
        "--cost-failure",
        "800",
        "--cost-visit",
        "40",
        "--json",
        "--registry",
        str(home),
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rul_version"] == versions["transformer"] and payload["horizon"] == 40
    assert payload["files"][0]["path"].endswith("test_FD001.txt") and payload["files"][0]["data_hash"]
    units = payload["units"]
    assert len(units) == 6 and all(set(u) >= JSON_KEYS for u in units)
    assert all(0.0 <= u["p_fail_within_h"] <= 1.0 and u["recommendation"] in ACTIONS for u in units)
    urgency = [ACTIONS.index(u["recommendation"]) for u in units]
    assert urgency == sorted(urgency)
    assert sum(payload["counts"].values()) == 6
    applicability = payload["applicability"]
    assert applicability["verdict"] in ("ok", "caution")
    assert [v["version_id"] for v in applicability["files"][0]["versions"]] == [
        versions["transformer"],
        versions["telemanom"],
    ]
    assert all(u["applicability"] == applicability["files"][0]["verdict"] for u in units)
    assert (
        payload["calibration"]["cuts"] > 0
        and "held-out training engines" in payload["calibration"]["summary"]
    )


def test_cli_json_names_the_alarm_rule_once_and_gives_each_units_alarm(capsys, fleet_registry, fd001_small):
    home, versions = fleet_registry
    base = ["fleet", str(fd001_small["test"]), "--anomaly-versions", str(versions["telemanom"])]
    base += ["--anomaly-window", "1000", "--json", "--registry", str(home)]
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["alarm_rule"]["text"] == DEFAULT_RULE.describe() and payload["alarm_rule"]["default"]
    assert all(u["alarm"] is None for u in payload["units"])  # the default rule's sensors were not assessed
    # a rule on the sensor the anomaly version watches: each unit's alarm is the rule on its ranges
    code, out, err = run_cli(
        capsys, *base, "--alarm-sensors", "s_2", "--alarm-min-score", "0", "--alarm-persistence", "1"
    )
    assert code == 0, err
    payload = json.loads(out)
    rule = AlarmRule(("s_2",), 0.0, 1, 1)
    assert payload["alarm_rule"]["text"] == rule.describe() and not payload["alarm_rule"]["default"]
    assert payload["alarm_rule"]["alarmed"] == sum(u["alarm"] is not None for u in payload["units"])
    for unit in payload["units"]:
        assert unit["alarm"] == snapshot_alarm(unit["anomalies"], unit["last_cycle"], rule, 1000)
        assert (unit["alarm"] is not None) == bool(unit["anomalies"])
    assert any(u["alarm"] is not None for u in payload["units"])


def test_cli_csv_and_text(capsys, fleet_registry, fd001_small):
    home, _ = fleet_registry
    code, out, err = run_cli(capsys, "fleet", str(fd001_small["test"]), "--csv", "--registry", str(home))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 and {r["recommendation"] for r in rows} <= set(ACTIONS)
    assert all(r["true_rul"] != "" for r in rows)
    assert all(r["alarm"] == "" for r in rows)  # the column is there; no anomaly version, no alarm
    code, out, err = run_cli(capsys, "fleet", str(fd001_small["test"]), "--registry", str(home))
    assert code == 0, err
    assert "engines, RUL from transformer/*" in out and out.count(" unit ") == 6
    assert out.count("alarm rule: " + DEFAULT_RULE.describe()) == 1 and "no anomaly versions" in out


def test_cli_csv_and_text_give_the_alarm_cycle(capsys, fleet_registry, fd001_small):
    home, versions = fleet_registry
    base = ["fleet", str(fd001_small["test"]), "--anomaly-versions", str(versions["telemanom"])]
    base += ["--anomaly-window", "1000", "--alarm-sensors", "s_2", "--alarm-min-score", "0"]
    base += ["--registry", str(home)]
    code, out, err = run_cli(capsys, *base, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    alarmed = [r for r in rows if r["alarm"] != ""]
    assert alarmed and all(float(r["alarm"]) <= float(r["last_cycle"]) for r in alarmed)
    code, out, err = run_cli(capsys, *base)
    assert code == 0, err
    assert out.count("alarm rule: 1 of s_2 with score >= 0") == 1
    assert out.count("alarm at cycle ") == len(alarmed)


def test_fleet_report_html_and_pdf_name_the_plan_versions_and_hashes(
    capsys, fleet_registry, fd001_small, tmp_path
):
    home, versions = fleet_registry
    html_path, pdf_path = tmp_path / "fleet.html", tmp_path / "fleet.pdf"
    for path in (html_path, pdf_path):
        code, out, err = run_cli(
            capsys,
            "fleet",
            str(fd001_small["test"]),
            "--report",
            str(path),
            "--json",
            "--registry",
            str(home),
        )
        assert code == 0, err
        assert json.loads(out)["report"] == str(path)
    text = html_path.read_text()
    with Workspace.open(home) as ws:
        record = ws.registry.get(versions["transformer"])
        data_hash = load_dataset(ws, fd001_small["test"]).data_hash
    assert (
        "The plan" in text and "Engines, most urgent first" in text and 'src="data:image/png;base64,' in text
    )
    assert record.label in text and record.artifact_sha256 in text and data_hash in text
    assert "Applicability" in text and "Lower tail" in text and "held-out training engines" in text
    assert text.count("Alarm rule") == 1 and DEFAULT_RULE.describe().replace(">", "&gt;") in text
    assert text.count("test_FD001.txt unit ") == 6
    assert pdf_path.read_bytes().startswith(b"%PDF") and pdf_path.stat().st_size > 5000
    code, _, err = run_cli(
        capsys,
        "fleet",
        str(fd001_small["test"]),
        "--report",
        str(tmp_path / "x.docx"),
        "--registry",
        str(home),
    )
    assert code == 0  # the suffix is not .pdf: HTML
    assert (tmp_path / "x.docx").read_text().startswith("<!DOCTYPE html>")


def test_anomaly_version_choices_for_the_files(fleet_registry, fd001_small):
    home, versions = fleet_registry
    with Workspace.open(home) as ws:
        data = load_dataset(ws, fd001_small["test"])
        listed = [int(r.id) for r in fleet_service.anomaly_versions_for(ws, [data])]
        newest = fleet_service.newest_validated_anomaly_versions(ws, [data])
        production = fleet_service.default_anomaly_versions(ws, [data])
        without_s2 = data.with_frame(data.frame.drop(columns=["s_2"]), {"step": "drop s_2"})
        none_fit = fleet_service.anomaly_versions_for(ws, [data, without_s2])
    assert listed == [versions["telemanom"]]  # the RUL version is not an anomaly version
    assert newest == [versions["telemanom"]]  # training validated it on its held-out units
    assert production == []  # nothing promoted
    assert none_fit == []  # a version is offered only when every file has its sensor


def test_without_its_held_out_engines_the_tail_stays_the_models_and_says_why(fleet_registry, monkeypatch):
    from turbofan_desktop.services import validation
    from turbofan_desktop.services.fleet_calibration import tail_calibration

    home, versions = fleet_registry

    def gone(ws, record, **_):
        raise IncompatibleDataError(f"{record.lineage['source']} is not there any more.")

    monkeypatch.setattr(validation, "held_out_data", gone)
    with Workspace.open(home) as ws:
        calibration = tail_calibration(ws, versions["transformer"], cuts_per_unit=3)  # not cached yet
    assert not calibration.calibrated and calibration.cuts == 0
    assert "not there any more" in calibration.note and "as the model gives it" in calibration.summary()
    q = np.array([[5.0, 10.0, 20.0]])
    assert np.array_equal(calibration.apply(np.array([0.1, 0.5, 0.9]), q), q)
