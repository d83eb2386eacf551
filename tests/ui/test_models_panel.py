"""ModelsPanel on a real registry: filters, details, promote/archive/delete/cleanup with the dialogs
patched; and one real tiny training job through JobManager + services.train to a registry row,
a version link in the JobsPanel and an HTML report written by a job."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QInputDialog, QMessageBox  # noqa: E402

from turbofan_desktop.ui import models_panel as models_module  # noqa: E402
from turbofan_desktop.ui.jobs import JobManager, Progress, target_progress  # noqa: E402

services = pytest.importorskip("turbofan_desktop.services", reason="services layer not available")


@pytest.fixture
def workspace():
    ws = services.Workspace.open()
    yield ws
    ws.close()


@pytest.fixture
def jobs(qtbot, workspace):
    manager = JobManager(workspace.settings.log_file)
    yield manager
    assert manager.shutdown(10000)


def _register(ws, plugin="telemanom", target="s_2", validated=True, metrics=None):
    """A registry version with a tiny stand-in artifact (the panel never loads the model)."""
    dataset_id = ws.registry.record_dataset(
        {
            "data_hash": "ab" * 32,
            "source": "train_FD001.txt",
            "format": "cmapss",
            "units": 100,
            "rows": 20631,
            "time_kind": "cycle",
            "time_start": 1,
            "time_end": 362,
        }
    )
    metrics = metrics or {"prediction_mse": 0.5}
    return ws.registry.register_version(
        run_id=None,
        plugin=plugin,
        target=target,
        dataset_id=dataset_id,
        config={"epochs": 1},
        history=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}],
        metrics=metrics,
        validation_performed=validated,
        validation_metrics=metrics if validated else None,
        validation_data_hash="cd" * 32 if validated else None,
        training_seconds=1.5,
        library_versions={},
        write_artifact=lambda d: (Path(d) / "weights.json").write_text("{}"),
    )


@pytest.fixture
def dialogs(monkeypatch):
    """Every modal dialog the panel opens, answered by the test and recorded."""
    record = {"questions": [], "errors": [], "answers": [], "stage": "production", "keep": 1}

    def question(parent, title, text, *args, **kwargs):
        record["questions"].append(text)
        answer = record["answers"].pop(0) if record["answers"] else True
        return QMessageBox.StandardButton.Yes if answer else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(QMessageBox, "information", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(lambda *a, **k: (record["stage"], True)))
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (record["keep"], True)))
    monkeypatch.setattr(
        models_module, "show_error", lambda parent, exc, log_file=None: record["errors"].append(str(exc))
    )
    return record


def _panel(qtbot, workspace, jobs):
    panel = models_module.ModelsPanel(workspace, jobs)
    qtbot.addWidget(panel)
    return panel


def test_table_filters_and_details(qtbot, workspace, jobs):
    a = _register(workspace, target="s_2")
    b = _register(workspace, target="s_3", validated=False)
    c = _register(
        workspace, plugin="transformer", target="*", metrics={"rul_rmse": 21.5, "forecast_rmse": 0.3}
    )
    panel = _panel(qtbot, workspace, jobs)
    assert [r.id for r in panel.records] == [c.id, b.id, a.id]  # newest first
    assert panel.table.rowCount() == 3
    row = {panel.table.item(r, 0).text(): r for r in range(3)}
    # the key metric says what it was computed on (a hash the registry holds no lineage for)
    assert panel.table.item(row[str(c.id)], 6).text() == "rul_rmse = 21.5 on data cdcdcdcd"
    assert panel.table.item(row[str(b.id)], 7).text() == "no"
    panel.plugin_filter.setCurrentText("telemanom")
    assert {r.id for r in panel.records} == {a.id, b.id}
    panel.target_filter.setCurrentText("s_3")
    assert [r.id for r in panel.records] == [b.id]
    assert panel.select_version(c.id)  # clears the filters that hide it
    assert panel.selected_ids() == [c.id]
    text = panel.details.toPlainText()
    assert "transformer/* v1" in text and "Data lineage" in text and "train_FD001.txt" in text
    assert "KPI history" in text and "validation" in text
    with qtbot.waitSignal(panel.show_on_plot_requested) as blocker:
        panel.buttons["plot"].click()
    assert blocker.args == [c.id]
    with qtbot.waitSignal(panel.validate_requested) as blocker:
        panel.buttons["validate"].click()
    assert blocker.args == [[c.id]]


def test_promote_needs_validation_and_archives_the_previous_production(qtbot, workspace, jobs, dialogs):
    unvalidated = _register(workspace, validated=False)
    first = _register(workspace)
    second = _register(workspace)
    panel = _panel(qtbot, workspace, jobs)
    panel.select_version(unvalidated.id)
    assert panel.promote() is False
    assert "has not been validated" in dialogs["errors"][-1]  # ValidationRequiredError, one sentence
    panel.select_version(first.id)
    assert panel.promote() is True
    assert workspace.registry.get(first.id).stage == "production"
    panel.select_version(second.id)
    panel.buttons["promote"].click()
    assert workspace.registry.get(second.id).stage == "production"
    assert workspace.registry.get(first.id).stage == "archived"
    panel.select_version(unvalidated.id)
    panel.buttons["archive"].click()
    assert workspace.registry.get(unvalidated.id).stage == "archived"
    assert {r.id: r.stage for r in panel.records}[second.id] == "production"  # the table was re-read


def test_delete_asks_and_production_needs_an_explicit_force(qtbot, workspace, jobs, dialogs):
    plain = _register(workspace)
    production = _register(workspace)
    workspace.registry.promote(production.id, "production")
    panel = _panel(qtbot, workspace, jobs)

    panel.select_version(plain.id)
    dialogs["answers"] = [False]  # "no" keeps it
    assert panel.delete() == []
    assert workspace.registry.get(plain.id)
    dialogs["answers"] = [True]
    assert panel.delete() == [plain.id]
    assert all(r.id != plain.id for r in panel.records)

    panel.select_version(production.id)
    dialogs["answers"] = [True, False]  # confirmed, but the production warning declined
    assert panel.delete() == []
    assert "in production" in dialogs["questions"][-1]
    assert workspace.registry.get(production.id).stage == "production"
    dialogs["answers"] = [True, True]
    assert panel.delete() == [production.id]
    assert workspace.registry.count_versions() == 0


def test_cleanup_lists_what_goes_before_deleting(qtbot, workspace, jobs, dialogs):
    versions = [_register(workspace) for _ in range(4)]
    workspace.registry.promote(versions[0].id, "staging")
    panel = _panel(qtbot, workspace, jobs)
    dialogs["keep"] = 1
    dialogs["answers"] = [False]
    assert panel.cleanup() == []
    listed = dialogs["questions"][-1]
    assert "Delete 2 version(s)" in listed
    assert versions[1].label in listed and versions[2].label in listed
    assert versions[0].label not in listed and versions[3].label not in listed
    assert workspace.registry.count_versions() == 4
    dialogs["answers"] = [True]
    assert panel.cleanup() == sorted([versions[1].id, versions[2].id])
    assert sorted(r.id for r in panel.records) == [versions[0].id, versions[3].id]


@pytest.mark.timeout(240)
def test_training_job_registers_a_version_shown_in_the_panels_and_a_report_job(
    qtbot, workspace, jobs, sample_dir, tmp_path, monkeypatch
):
    """The GUI's whole training path: TrainDialog -> JobManager(train) -> registry row -> panels."""
    training = pytest.importorskip("turbofan_desktop.services.training")
    pytest.importorskip("turbofan_desktop.services.reports")
    from turbofan_desktop.services.data import load_dataset
    from turbofan_desktop.ui.jobs_panel import JobsPanel
    from turbofan_desktop.ui.report_dialog import ReportDialog
    from turbofan_desktop.ui.train_dialog import TrainDialog

    if "telemanom" not in workspace.plugins.models():
        pytest.skip("telemanom plugin not registered")
    full = load_dataset(workspace, sample_dir / "train_FD001.txt")
    dataset = full.subset(full.units[:8])
    panel = _panel(qtbot, workspace, jobs)
    jobs_panel = JobsPanel(jobs)
    qtbot.addWidget(jobs_panel)
    assert panel.table.rowCount() == 0

    dialog = TrainDialog(workspace, dataset, ["s_2"])
    qtbot.addWidget(dialog)
    dialog.set_plugin("telemanom")
    dialog.form.set_values({"epochs": 2, "lstm_units": (8,), "batch_size": 256})
    request = dialog.request()
    progress = []
    jobs.job_progress.connect(lambda job_id, p: progress.append(p))
    with qtbot.waitSignal(jobs.job_finished, timeout=180_000) as blocker:
        job_id = jobs.submit(
            dialog.job_title(),
            lambda progress, should_stop: training.train(
                workspace, request, progress=target_progress(progress), should_stop=should_stop
            ),
        ).id
    summary = blocker.args[1]
    assert summary.successful == 1 and len(summary.registered) == 1
    version_id = summary.registered[0]
    assert progress and isinstance(progress[-1], Progress) and progress[-1].series == "s_2"
    assert [p.epoch for p in jobs.job(job_id).losses] == [1, 2]

    qtbot.waitUntil(lambda: panel.table.rowCount() == 1, timeout=5000)  # refreshed by job_finished
    assert panel.records[0].id == version_id and panel.records[0].target == "s_2"
    jobs_panel.refresh()
    row = jobs_panel.rows[job_id]
    assert row.progress.value() == 1000 and not row.cancel_button.isVisibleTo(row)
    assert [p.epoch for p in jobs.job(job_id).losses] == list(row.train_curve.getData()[0])
    with qtbot.waitSignal(jobs_panel.version_activated) as activated:
        row.version_buttons()[0].click()
    assert activated.args == [version_id]
    jobs_panel.resize(700, 320)
    jobs_panel.grab().save(str(tmp_path / "jobs_panel.png"))

    # Open report: an HTML export job, then the file is opened
    opened = []
    monkeypatch.setattr(
        models_module.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url))
    )
    panel.select_version(version_id)
    with qtbot.waitSignal(jobs.job_finished, timeout=120_000):
        panel.open_report()
    qtbot.waitUntil(lambda: bool(opened), timeout=5000)
    html_path = Path(opened[0].toLocalFile())
    assert html_path.suffix == ".html" and "<html" in html_path.read_text(encoding="utf-8").lower()

    # validation on the held-out units (rebuilt by the service from the version's recorded split),
    # then on a data file: one row per version with its metrics (key metric first) or its sentence
    from turbofan_desktop.ui.validate_dialog import ValidateDialog

    validate = ValidateDialog(workspace, jobs, [version_id])
    qtbot.addWidget(validate)
    with qtbot.waitSignal(jobs.job_finished, timeout=120_000) as held_out:
        validate.start()
    assert validate.table.rowCount() == 1 and validate.table.item(0, 0).text() == str(version_id)
    outcome = held_out.args[1].results[0]
    shown = validate.table.item(0, 3).text()
    assert shown == f"error: {outcome.error}" if outcome.error else shown.startswith("prediction_mse = ")
    validate.path_edit.setText(str(sample_dir / "test_FD001.txt"))
    assert validate.data_path() == sample_dir / "test_FD001.txt"
    with qtbot.waitSignal(jobs.job_finished, timeout=120_000):
        validate.start()
    assert validate.table.item(0, 3).text().startswith("prediction_mse = ")
    assert validate.summary.text().startswith("1 validated, 0 failed")
    assert len(validate.table.item(0, 4).text()) == 16

    # the report dialog writes where it is told
    report = ReportDialog(workspace, jobs, version_id, default_dir=tmp_path)
    qtbot.addWidget(report)
    with qtbot.waitSignal(jobs.job_finished, timeout=120_000):
        report.start()
    assert report.written == tmp_path / f"model-{version_id}-report.html"
    assert report.written.stat().st_size > 1000 and report.open_button.isEnabled()

    # Reproduce: the version trained again in a job from its stored data; the comparison is shown
    shown_text = []
    monkeypatch.setattr(
        models_module.QMessageBox,
        "information",
        staticmethod(lambda parent, title, text: shown_text.append(text)),
    )
    panel.select_version(version_id)
    assert panel.buttons["reproduce"].isEnabled()
    with qtbot.waitSignal(jobs.job_finished, timeout=120_000):
        panel.buttons["reproduce"].click()
    qtbot.waitUntil(lambda: bool(shown_text), timeout=5000)
    lines = shown_text[0].splitlines()
    assert lines[0].startswith(f"Reproduced telemanom/s_2 v1 (#{version_id})")
    assert lines[-1] == "identical", shown_text[0]
    assert len(workspace.registry.list_versions()) == 1  # nothing registered


@pytest.mark.timeout(240)
def test_cancelling_a_training_job_registers_nothing(qtbot, workspace, jobs, sample_dir):
    training = pytest.importorskip("turbofan_desktop.services.training")
    from turbofan_desktop.services.data import load_dataset

    if "telemanom" not in workspace.plugins.models():
        pytest.skip("telemanom plugin not registered")
    full = load_dataset(workspace, sample_dir / "train_FD001.txt")
    request = training.TrainRequest(
        plugin="telemanom",
        dataset=full.subset(full.units[:8]),
        targets=["s_2", "s_3"],
        config={"epochs": 200, "lstm_units": (8,), "batch_size": 16, "patience": 200},
    )
    job_id = jobs.submit(
        "long training",
        lambda progress, should_stop: training.train(
            workspace, request, progress=target_progress(progress), should_stop=should_stop
        ),
    ).id
    qtbot.waitUntil(lambda: jobs.job(job_id).epoch is not None, timeout=120_000)
    with qtbot.waitSignal(jobs.job_cancelled, timeout=60_000):
        jobs.cancel(job_id)
    summary = jobs.job(job_id).result
    assert summary is None or (summary.cancelled and summary.registered == [])
    assert workspace.registry.count_versions() == 0
    assert workspace.registry.list_runs()[0].status == "cancelled"
