"""Drift on open: a loaded file is checked (as a job) against one version per plugin and the panels
show badges — only the shifted sensor, nothing for identical data, nothing (and no error) for
versions that cannot be checked. The versions are registered with statistics but no model: the
check never loads one, and the window never imports torch for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.data import read_dataset  # noqa: E402
from turbofan_desktop.data.drift import training_statistics  # noqa: E402
from turbofan_desktop.registry import TrainingProvenance  # noqa: E402
from turbofan_desktop.ui.drift_badges import DriftCheck, sensor_badges, version_badges  # noqa: E402
from turbofan_desktop.ui.models_panel import COLUMNS  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"
SHIFTED = "s_4"
SCREENSHOT = Path("/tmp/drift_badges.png")


def _write_cmapss(ds, path: Path) -> Path:
    columns = ["unit", ds.time_col, *ds.settings, *ds.sensors]
    np.savetxt(path, ds.frame[columns].to_numpy(dtype=float), fmt="%.6g")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same 10 training engines as written, and with s_4 moved by 3 standard deviations."""
    folder = tmp_path_factory.mktemp("drift_files")
    train = read_dataset(SAMPLE / "train_FD001.txt")
    fleet = train.subset(train.units[:10])
    frame = fleet.frame.copy()
    frame[SHIFTED] += 3 * frame[SHIFTED].std()
    same = _write_cmapss(fleet, folder / "fleet_same.txt")
    moved = _write_cmapss(fleet.with_frame(frame, {"step": "shift"}), folder / "fleet_shifted.txt")
    return {"same": same, "shifted": moved, "stats": training_statistics(read_dataset(same))}


def _register(workspace, stats, *, plugin="fake", target="s_2"):
    return register_stub_version(
        workspace.registry,
        plugin=plugin,
        target=target,
        lineage=read_dataset(SAMPLE / "test_FD001.txt").lineage,
        provenance=TrainingProvenance(training_stats=stats) if stats is not None else None,
    )


def _open_and_check(window, qtbot, open_and_wait, path):
    """Open ``path`` and wait for the drift job it starts (if any) to end."""
    window.session.drift_checks = None
    open_and_wait(window, [path])
    if window.jobs.running_count() or window.jobs.queued_count():
        qtbot.waitUntil(lambda: window.session.drift_checks is not None, timeout=20000)
    qtbot.waitUntil(lambda: window.jobs.running_count() == 0, timeout=20000)
    return window.session.drift_checks


def _version_row(panel, version_id):
    return next(r for r in range(panel.table.rowCount()) if panel.table.item(r, 0).text() == str(version_id))


def _sensor_texts(panel, sensor, unit=1):
    item = panel.sensor_item(0, unit, sensor)
    return item.text(1), item.toolTip(1)


@pytest.fixture
def window(main_window):
    if main_window.jobs is None or main_window.models_panel is None:
        pytest.skip("the job manager or the models panel is not available")
    return main_window


def test_identical_data_gets_no_badges(window, qtbot, workspace, files, open_and_wait):
    record = _register(workspace, files["stats"])
    checks = _open_and_check(window, qtbot, open_and_wait, files["same"])
    assert [c.version_id for c in checks] == [record.id]
    panel = window.data_panel
    assert panel.drifted_sensors(0) == []
    text, tip = _sensor_texts(panel, SHIFTED)
    assert "DRIFT" not in text and "no drift against" in tip and "PSI" in tip  # numbers, no badge
    models = window.models_panel
    assert models.table.item(_version_row(models, record.id), COLUMNS.index("drift")).text() == "ok"


def test_one_shifted_sensor_is_the_only_badge_and_opens_the_drift_view(
    window, qtbot, workspace, files, open_and_wait
):
    record = _register(workspace, files["stats"])
    checks = _open_and_check(window, qtbot, open_and_wait, files["shifted"])
    assert checks[0].report.drifted == [SHIFTED]
    panel = window.data_panel
    assert panel.drifted_sensors(0) == [SHIFTED]
    text, tip = _sensor_texts(panel, SHIFTED, unit=3)  # every unit carries the file's badge
    assert "DRIFT" in text and "PSI" in tip and "KS p-value" in tip and record.label in tip
    assert "DRIFT" not in _sensor_texts(panel, "s_2")[0]
    models = window.models_panel
    cell = models.table.item(_version_row(models, record.id), COLUMNS.index("drift"))
    assert cell.text() == "DRIFT" and SHIFTED in cell.toolTip() and "fleet_shifted.txt" in cell.toolTip()
    assert "Drift in 1 of 21 sensors: s_4" in window.statusBar().currentMessage()

    item = panel.sensor_item(0, 1, SHIFTED)
    panel.tree.itemDoubleClicked.emit(item, 1)  # as a double-click on the badge
    dialog = window.drift.dialog
    qtbot.addWidget(dialog)
    assert dialog.plot.getPlotItem().titleLabel.text.startswith(SHIFTED)
    assert record.label in dialog.windowTitle()

    panel.select(0, units=[1], sensors=[SHIFTED, "s_2"])
    window.models_dock.raise_()
    window.resize(1280, 800)
    qtbot.wait(50)
    SCREENSHOT.unlink(missing_ok=True)
    assert window.grab().save(str(SCREENSHOT))


def test_version_badges_follow_the_file_selected_in_the_data_panel(
    window, qtbot, workspace, files, open_and_wait
):
    record = _register(workspace, files["stats"])
    _open_and_check(window, qtbot, open_and_wait, files["shifted"])
    _open_and_check(window, qtbot, open_and_wait, files["same"])
    models, panel = window.models_panel, window.data_panel
    column = COLUMNS.index("drift")

    def badge():
        return models.table.item(_version_row(models, record.id), column)

    assert panel.selection().dataset_index == 0 and badge().text() == "DRIFT"  # still looking at file 0
    panel.select(1)
    assert badge().text() == "ok" and "fleet_same.txt" in badge().toolTip()
    panel.select(0, units=[2])
    assert badge().text() == "DRIFT" and "fleet_shifted.txt" in badge().toolTip()
    models.refresh()  # re-reading the registry keeps the badges
    assert badge().text() == "DRIFT"


def test_one_version_per_plugin_production_first(window, qtbot, workspace, files, open_and_wait):
    old = _register(workspace, files["stats"], plugin="telemanom")
    _register(workspace, files["stats"], plugin="telemanom")
    workspace.registry.record_validation(old.id, metrics={"prediction_mse": 0.1}, data_hash="v")
    workspace.registry.promote(old.id, "production")
    other = _register(workspace, files["stats"], plugin="transformer", target="*")
    checks = _open_and_check(window, qtbot, open_and_wait, files["shifted"])
    assert sorted(c.version_id for c in checks) == sorted([old.id, other.id])
    assert window.data_panel.drifted_sensors(0) == [SHIFTED]


def test_versions_that_cannot_be_checked_give_no_job_no_badge_no_error(
    window, qtbot, workspace, files, open_and_wait, monkeypatch
):
    errors = []
    monkeypatch.setattr(window, "show_error", lambda exc: errors.append(str(exc)))
    _register(workspace, None)  # no statistics
    _register(workspace, files["stats"], target="s_99")  # a sensor this file lacks
    assert _open_and_check(window, qtbot, open_and_wait, files["shifted"]) is None  # nothing ran
    panel = window.data_panel
    assert panel.drifted_sensors(0) == [] and panel.drift_badge(0, SHIFTED) is None
    assert "DRIFT" not in _sensor_texts(panel, SHIFTED)[0] and errors == []


def test_sensors_the_version_lacks_get_no_badge(window, qtbot, workspace, files, open_and_wait):
    known = read_dataset(files["same"])
    stats = training_statistics(known, [s for s in known.sensors if s != SHIFTED])
    _register(workspace, stats)
    _open_and_check(window, qtbot, open_and_wait, files["shifted"])
    panel = window.data_panel
    assert panel.drift_badge(0, SHIFTED) is None and panel.drifted_sensors(0) == []
    item = panel.sensor_item(0, 1, SHIFTED)
    panel.tree.itemDoubleClicked.emit(item, 1)  # no badge: nothing opens
    assert window.drift.dialog is None


DRIFT_PROBE = """
import sys
sys.path.insert(0, sys.argv[1])  # tests/, for stub_versions
from stub_versions import register_stub_version
from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.drift import training_statistics
from turbofan_desktop.services import Workspace
from turbofan_desktop.registry import TrainingProvenance
from turbofan_desktop.services.monitoring import monitored_versions
from turbofan_desktop.ui.drift_badges import run_auto_drift, sensor_badges

same, shifted = read_dataset(sys.argv[2]), read_dataset(sys.argv[3])
ws = Workspace.open()
register_stub_version(
    ws.registry, lineage=same.lineage, provenance=TrainingProvenance(training_stats=training_statistics(same))
)
checks = run_auto_drift(ws, monitored_versions(ws, shifted), shifted)
print("drifted", sorted(name for name, badge in sensor_badges(checks).items() if badge.drifted))
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def test_the_drift_check_on_open_never_imports_torch(files):
    """The job the window runs on open, in a fresh interpreter (this one has imported torch by now)."""
    tests = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", DRIFT_PROBE, str(tests), str(files["same"]), str(files["shifted"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"drifted ['{SHIFTED}']" in result.stdout
    assert "torch not imported" in result.stdout


def test_badges_from_reports_without_qt(files):
    from turbofan_desktop.data.drift import compare

    moved = read_dataset(files["shifted"])
    report = compare(files["stats"], moved)
    checks = [
        DriftCheck(7, "fake s_2 v1", report),
        DriftCheck(8, "other * v1", compare(files["stats"], moved)),
    ]
    badges = sensor_badges(checks)
    assert [n for n, b in badges.items() if b.drifted] == [SHIFTED]
    assert badges[SHIFTED].tooltip.count("PSI") == 2 and "Double-click" in badges[SHIFTED].tooltip
    versions = version_badges(checks, "f.txt")
    assert set(versions) == {7, 8} and versions[7].drifted and "s_4 (PSI" in versions[7].tooltip
    assert sensor_badges([]) == {}
