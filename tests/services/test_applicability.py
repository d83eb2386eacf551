"""The applicability check: a version's verdict on data before it is used (issue 17).

The versions are stand-ins registered with the real statistics of their training data: the check
reads only the registry (lineage and training statistics), never the model, so a stand-in exercises
exactly what a trained version would. A synthetic multi-regime file always runs; the wrong-fleet case
of the issue (an FD001 model on test_FD002) runs where the C-MAPSS files are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from services_helpers import SAMPLE_DIR, multi_regime_copy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.cli import main  # noqa: E402
from turbofan_desktop.data.drift import training_statistics  # noqa: E402
from turbofan_desktop.registry import TrainingProvenance  # noqa: E402
from turbofan_desktop.services import (
    Workspace,  # noqa: E402
    inference,  # noqa: E402
)
from turbofan_desktop.services.applicability import (  # noqa: E402
    CAUTION,
    OK,
    OUT_OF_SCOPE,
    OutOfScopeError,
    check_applicability,
)
from turbofan_desktop.services.data import load_dataset  # noqa: E402


def _version_trained_on(ws: Workspace, train_path: Path, *, plugin: str = "transformer", target: str = "*"):
    """A stand-in version whose registry entry describes ``train_path`` as its training data."""
    train = load_dataset(ws, train_path)
    return register_stub_version(
        ws.registry,
        plugin=plugin,
        target=target,
        lineage=train.lineage,
        provenance=TrainingProvenance(training_stats=training_statistics(train)),
    )


@pytest.fixture
def sample_version(tmp_path):
    ws = Workspace.open(tmp_path / "registry")
    record = _version_trained_on(ws, SAMPLE_DIR / "train_FD001.txt")
    yield ws, record
    ws.close()


def test_same_fleet_is_ok(sample_version):
    ws, record = sample_version
    verdict = check_applicability(ws, record.id, load_dataset(ws, SAMPLE_DIR / "test_FD001.txt"))
    assert verdict.verdict == OK, verdict.reasons
    assert verdict.to_dict() == {"verdict": "ok", "reasons": []}


def test_multi_regime_file_on_single_regime_version_is_out_of_scope(sample_version, tmp_path):
    ws, record = sample_version
    mixed = load_dataset(ws, multi_regime_copy(SAMPLE_DIR / "test_FD001.txt", tmp_path / "mixed.txt"))
    verdict = check_applicability(ws, record, mixed)
    assert verdict.verdict == OUT_OF_SCOPE
    assert any("3 operating regimes" in r and "single regime" in r for r in verdict.reasons), verdict.reasons
    # every use refuses it unless the caller accepts the verdict; the stand-in model is never loaded
    for use in (inference.predict_rul, inference.forecast, inference.detect):
        with pytest.raises(OutOfScopeError, match="out of scope on mixed.txt"):
            use(ws, record.id, mixed)


def test_missing_sensor_and_other_time_axis_are_out_of_scope(sample_version):
    ws, record = sample_version
    data = load_dataset(ws, SAMPLE_DIR / "test_FD001.txt")
    per_sensor = register_stub_version(
        ws.registry, plugin="telemanom", target="s_99", lineage=record_lineage(ws)
    )
    verdict = check_applicability(ws, per_sensor.id, data)
    assert verdict.verdict == OUT_OF_SCOPE and "s_99" in verdict.reasons[0]
    stepped = data.with_frame(data.frame, {"step": "test"}, time_axis="step")
    verdict = check_applicability(ws, record.id, stepped)
    assert verdict.verdict == OUT_OF_SCOPE
    assert any("time axis is steps" in r and "cycles" in r for r in verdict.reasons)


def record_lineage(ws: Workspace):
    return load_dataset(ws, SAMPLE_DIR / "train_FD001.txt").lineage


def test_shifted_sensor_is_caution_or_worse(sample_version):
    ws, record = sample_version
    data = load_dataset(ws, SAMPLE_DIR / "test_FD001.txt")
    frame = data.frame.copy()
    frame["s_11"] = frame["s_11"] + 0.02 * frame["s_11"].std()  # a nudge: inside the range, no regime change
    nudged = check_applicability(ws, record.id, data.with_frame(frame, {"step": "nudge"}))
    assert nudged.verdict in (OK, CAUTION)
    frame["s_11"] = frame["s_11"] + 40 * data.frame["s_11"].std()  # far outside the training range
    moved = check_applicability(ws, record.id, data.with_frame(frame, {"step": "shift"}))
    assert moved.verdict == OUT_OF_SCOPE
    assert any("outside the training range" in r and "s_11" in r for r in moved.reasons)


def test_version_without_statistics_is_caution(tmp_path):
    with Workspace.open(tmp_path / "registry") as ws:
        bare = register_stub_version(
            ws.registry, plugin="transformer", target="*", lineage=record_lineage(ws)
        )
        verdict = check_applicability(ws, bare.id, load_dataset(ws, SAMPLE_DIR / "test_FD001.txt"))
    assert verdict.verdict == CAUTION and "no statistics" in verdict.reasons[0]


def _cli(capsys, *argv):
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_cli_refuses_out_of_scope_with_the_verdict(sample_version, tmp_path, capsys):
    ws, record = sample_version
    mixed = multi_regime_copy(SAMPLE_DIR / "test_FD001.txt", tmp_path / "mixed.txt")
    reg = ["--registry", str(tmp_path / "registry")]
    for command in ("rul", "forecast", "detect"):
        code, out, _err = _cli(capsys, command, str(mixed), "--version", str(record.id), *reg)
        assert code == 2
        assert out["applicability"]["verdict"] == "out_of_scope"
        assert out["applicability"]["reasons"] and "--force" in out["error"]
    code = main(["rul", str(mixed), "--version", str(record.id), *reg])
    captured = capsys.readouterr()
    assert code == 2 and "applicability: OUT OF SCOPE" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("error: ")


def test_wrong_fleet_fd001_model_on_test_fd002(cmapss_dir, tmp_path, capsys):
    """The issue's case: a version trained on train_FD001 applied to test_FD002."""
    with Workspace.open(tmp_path / "registry") as ws:
        record = _version_trained_on(ws, cmapss_dir / "train_FD001.txt")
        fd002 = check_applicability(ws, record.id, load_dataset(ws, cmapss_dir / "test_FD002.txt"))
        fd001 = check_applicability(ws, record.id, load_dataset(ws, cmapss_dir / "test_FD001.txt"))
    assert fd002.verdict == OUT_OF_SCOPE
    assert "6 operating regimes" in fd002.reasons[0]
    assert fd001.verdict == OK, fd001.reasons
    code, out, _err = _cli(
        capsys,
        "rul",
        str(cmapss_dir / "test_FD002.txt"),
        "--version",
        str(record.id),
        "--registry",
        str(tmp_path / "registry"),
    )
    assert code == 2 and out["applicability"]["verdict"] == "out_of_scope"
