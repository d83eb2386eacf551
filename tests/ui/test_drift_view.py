"""The drift view: badges per sensor, both CDFs overlaid, the check run as a job from the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.data import read_dataset  # noqa: E402
from turbofan_desktop.data.drift import compare, training_statistics  # noqa: E402
from turbofan_desktop.registry import TrainingProvenance  # noqa: E402
from turbofan_desktop.ui.drift_view import DriftDialog  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


@pytest.fixture(scope="module")
def fd001():
    train = read_dataset(SAMPLE / "train_FD001.txt")
    return train.subset(train.units[:30])


def _shifted(ds, sensor, delta):
    frame = ds.frame.copy()
    frame[sensor] += delta
    return ds.with_frame(frame, {"step": "test-shift"})


def _register(workspace, dataset, stats):
    return register_stub_version(
        workspace.registry,
        target="s_4",
        lineage=dataset.lineage,
        provenance=TrainingProvenance(training_stats=stats),
    )


def test_dialog_shows_badges_and_overlays_both_distributions(qtbot, fd001):
    stats = training_statistics(fd001)
    report = compare(stats, _shifted(fd001, "s_4", 3 * fd001.frame["s_4"].std()))
    dialog = DriftDialog(report)
    qtbot.addWidget(dialog)
    assert dialog.drifted_rows() == ["s_4"]
    assert "s_4" in dialog.summary.text()
    # the drifted sensor is selected first and both curves are drawn on the same points
    x_train, y_train = dialog.train_curve.getData()
    x_new, y_new = dialog.new_curve.getData()
    assert len(x_train) == len(x_new) > 10
    assert y_train[-1] == pytest.approx(1.0)
    assert np.max(np.abs(y_train - y_new)) > 0.5  # shifted by 3 std: the CDFs are far apart
    dialog.show_sensor("s_1")  # a constant sensor: one point, no error
    assert len(dialog.train_curve.getData()[0]) == 1


def test_drift_check_runs_as_a_job_and_opens_the_dialog(main_window, qtbot, workspace, fd001, open_and_wait):
    if main_window.jobs is None:
        pytest.skip("the job manager is not available")
    record = _register(workspace, fd001, training_statistics(fd001))
    open_and_wait(main_window, [SAMPLE / "test_FD001.txt"])
    job = main_window.drift.start_check(record.id)
    assert job is not None
    assert job.job.title == f"Drift against {record.label}"  # the version as the models table names it
    qtbot.waitUntil(lambda: main_window.drift.dialog is not None, timeout=20000)
    dialog = main_window.drift.dialog
    assert dialog.windowTitle() == f"Data drift against {record.label}"
    assert dialog.drifted_rows() == []  # test units of the same fleet
    assert len(dialog.names) == 21
    dialog.close()
    from turbofan_desktop.services.monitoring import drift_history

    assert len(drift_history(workspace, record.id)) >= 1  # the check on opening may add one


def test_drift_check_without_a_version_says_what_is_missing(main_window, monkeypatch):
    messages = []
    monkeypatch.setattr(main_window, "show_error", lambda exc: messages.append(str(exc)))
    assert main_window.drift.start_check(None) is None
    assert messages and "select a model version" in messages[0]


def test_kpi_dialog_plots_history_and_shows_the_warning(qtbot, workspace, fd001):
    from turbofan_desktop.ui.kpi_view import KpiDialog

    record = _register(workspace, fd001, training_statistics(fd001))
    empty = KpiDialog(workspace, record.id)
    qtbot.addWidget(empty)
    assert empty.series == {} and "No KPI warning" in empty.warning_label.text()
    workspace.registry.record_validation(record.id, metrics={"prediction_mse": 0.1}, data_hash="a")
    workspace.registry.record_metrics(record.id, kind="detection", metrics={"precision": 0.7})
    workspace.registry.record_validation(record.id, metrics={"prediction_mse": 0.2}, data_hash="a")
    dialog = KpiDialog(workspace, record.id)
    qtbot.addWidget(dialog)
    assert "prediction_mse" in dialog.warning_label.text() and "100%" in dialog.warning_label.text()
    assert dialog.metric_box.currentText() == "detection: precision"  # known directions, sorted
    dialog.show_metric("validation: prediction_mse")
    xs, ys = dialog.curve.getData()
    assert list(xs) == [1, 3] and list(ys) == [0.1, 0.2]


def test_open_kpi_history_needs_a_selected_version(qtbot, workspace, fd001):
    from types import SimpleNamespace

    from turbofan_desktop.ui.kpi_view import KpiController

    errors: list[str] = []
    record = _register(workspace, fd001, training_statistics(fd001))
    panel = SimpleNamespace(selected_record=lambda: None)
    kpi = KpiController(workspace, panel, errors.append)
    assert kpi.open() is None and "Select a model version" in errors[0]
    panel.selected_record = lambda: record
    dialog = kpi.open()
    qtbot.addWidget(dialog)
    assert str(record.id) in dialog.windowTitle()


def test_opening_a_file_checks_it_against_a_reference_version(main_window, qtbot, workspace, fd001):
    drift = main_window.drift
    assert drift.start_auto_check(fd001) is None  # nothing registered: nothing to do
    record = _register(workspace, fd001, training_statistics(fd001))
    moved = _shifted(fd001, "s_4", 3 * fd001.frame["s_4"].std())
    assert drift.start_auto_check(moved) is not None
    qtbot.waitUntil(lambda: main_window.session.last_drift is not None, timeout=20000)
    version_id, report = main_window.session.last_drift
    assert version_id == record.id and report.drifted == ["s_4"]
    assert "Drift in 1 of 21 sensors: s_4" in main_window.statusBar().currentMessage()


def test_models_panel_shows_the_drift_badge_and_kpi_warning(main_window, workspace, fd001):
    from turbofan_desktop.services.monitoring import drift

    panel = main_window.models_panel
    if panel is None or not hasattr(panel, "select_version"):
        pytest.skip("the models panel is not available")
    record = _register(workspace, fd001, training_statistics(fd001))
    drift(workspace, record.id, _shifted(fd001, "s_4", 3 * fd001.frame["s_4"].std()))
    workspace.registry.record_validation(record.id, metrics={"prediction_mse": 0.1}, data_hash="a")
    workspace.registry.record_validation(record.id, metrics={"prediction_mse": 0.3}, data_hash="a")
    panel.refresh()
    assert panel.select_version(record.id)
    text = panel.details.toPlainText()
    assert "DRIFT in s_4" in text and "prediction_mse" in text and "worse than" in text
