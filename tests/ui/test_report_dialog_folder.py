"""The report dialog (issue 17): its default folder is the folder last used for a report, else the
user's documents — never the installed package's sample folder — and the version is named as the
models table names it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.services.data import bundled_sample_dir  # noqa: E402
from turbofan_desktop.ui.jobs import JobManager  # noqa: E402
from turbofan_desktop.ui.report_dialog import ReportDialog  # noqa: E402


@pytest.fixture
def jobs(qtbot):
    manager = JobManager("/tmp/turbofan-test.log")
    yield manager
    assert manager.shutdown(5000)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_default_folder_is_documents_never_the_sample_folder(qtbot, workspace, jobs, home):
    record = register_stub_version(workspace.registry, plugin="telemanom", target="s_2")
    (home / "Documents").mkdir()
    for last_used in (None, bundled_sample_dir()):  # the sample folder is never proposed
        dialog = ReportDialog(workspace, jobs, record.id, default_dir=last_used)
        qtbot.addWidget(dialog)
        assert Path(dialog.path_edit.text()).parent == home / "Documents"
    assert dialog.windowTitle() == f"Export report: {record.label}"


def test_default_folder_is_the_last_used_one(qtbot, workspace, jobs, home, tmp_path):
    record = register_stub_version(workspace.registry, plugin="telemanom", target="s_2")
    used = tmp_path / "reports"
    used.mkdir()
    dialog = ReportDialog(workspace, jobs, record.id, default_dir=used)
    qtbot.addWidget(dialog)
    assert Path(dialog.path_edit.text()).parent == used
    without_documents = ReportDialog(workspace, jobs, record.id, default_dir=tmp_path / "gone")
    qtbot.addWidget(without_documents)
    assert Path(without_documents.path_edit.text()).parent == home  # no Documents folder: home


def test_the_window_remembers_the_report_folder(main_window, monkeypatch, tmp_path, workspace):
    from turbofan_desktop.ui import report_dialog

    record = register_stub_version(workspace.registry, plugin="telemanom", target="s_2")
    seen = []

    class Written(report_dialog.ReportDialog):
        def exec(self):
            seen.append(self._default_dir)
            self.written = tmp_path / "out" / "report.pdf"
            return 1

    monkeypatch.setattr(report_dialog, "ReportDialog", Written)
    monkeypatch.setattr(main_window, "selected_version_ids", lambda: [record.id])
    (tmp_path / "out").mkdir()
    main_window.export_report()
    assert main_window.ui_settings.last_report_directory() == str(tmp_path / "out")
    main_window.export_report()
    assert seen[-1] == tmp_path / "out"
