"""The applicability verdict in the window (issue 17): a version out of scope on the data shown asks
before anything is computed, and the verdict stands above the plots and in the status bar.

The wrong-fleet case is built as the service tests build it: a stand-in version registered with the
real statistics of the sample FD001 training file, shown on a copy of test_FD001 flown in three
operating regimes (an FD002-like file). The check reads only the registry, never the model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
from PySide6.QtWidgets import QMessageBox  # noqa: E402
from services_helpers import SAMPLE_DIR, multi_regime_copy  # noqa: E402
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.data.drift import training_statistics  # noqa: E402
from turbofan_desktop.plugins.contract import RULResult, UnitRUL  # noqa: E402
from turbofan_desktop.registry import TrainingProvenance  # noqa: E402
from turbofan_desktop.services.data import load_dataset  # noqa: E402
from turbofan_desktop.ui import main_window as main_window_module  # noqa: E402


@pytest.fixture
def fd001_version(workspace):
    train = load_dataset(workspace, SAMPLE_DIR / "train_FD001.txt")
    return register_stub_version(
        workspace.registry,
        plugin="transformer",
        target="*",
        lineage=train.lineage,
        provenance=TrainingProvenance(training_stats=training_statistics(train)),
    )


@pytest.fixture
def asked(monkeypatch):
    """QMessageBox.question answered by the test: ``asked.answer`` (No unless set), texts recorded."""

    class Asked(list):
        answer = QMessageBox.StandardButton.No

    seen = Asked()

    def question(parent, title, text, *args, **kwargs):
        seen.append((title, text))
        return seen.answer

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return seen


def _show_and_wait(window, qtbot, version_id):
    handle = window.show_version_on_plot(version_id)
    assert handle is not None
    with qtbot.waitSignal(handle.finished, timeout=20000):
        pass
    qtbot.wait(50)  # the draw slot runs right after the job's own finished signal


def test_wrong_fleet_asks_and_shows_out_of_scope(
    main_window, qtbot, open_and_wait, fd001_version, asked, tmp_path
):
    mixed = multi_regime_copy(SAMPLE_DIR / "test_FD001.txt", tmp_path / "test_FD002_like.txt")
    open_and_wait(main_window, [mixed])
    jobs_before = len(main_window.jobs.jobs())
    _show_and_wait(main_window, qtbot, fd001_version.id)

    name = f"transformer/* v1 (#{fd001_version.id})"
    assert len(asked) == 1
    title, text = asked[0]
    assert title == "Out of scope" and name in text and "3 operating regimes" in text
    label = main_window.plot_area.applicability_label
    assert label.isVisible() and main_window.plot_area.verdict == "out_of_scope"
    assert label.text().startswith(f"{name}: OUT OF SCOPE: the data holds 3 operating regimes")
    assert "OUT OF SCOPE" in main_window.statusBar().currentMessage()
    # declined: nothing computed, nothing drawn, no second job
    assert main_window.plot_area.overlay_items() == [] and not main_window.plot_area.rul_label.isVisible()
    assert len(main_window.jobs.jobs()) == jobs_before + 1
    assert main_window.jobs.jobs()[-1].title == f"Show {name} on unit 1"
    main_window.plot_area.grab().save("/tmp/i17/out_of_scope_plot.png")


def test_accepting_out_of_scope_computes_and_keeps_the_verdict_shown(
    main_window, qtbot, open_and_wait, fd001_version, asked, monkeypatch, tmp_path
):
    mixed = multi_regime_copy(SAMPLE_DIR / "test_FD001.txt", tmp_path / "test_FD002_like.txt")
    open_and_wait(main_window, [mixed])
    asked.answer = QMessageBox.StandardButton.Yes
    real = main_window_module.run_show_on_plot
    accepted = []

    def run(ws, version_id, dataset, unit, *, accept_out_of_scope=False, **kwargs):
        if not accept_out_of_scope:
            return real(ws, version_id, dataset, unit, **kwargs)  # the real check refuses
        accepted.append(version_id)
        verdict = real(ws, version_id, dataset, unit, **kwargs).applicability
        # the stand-in has no model to run: the drawn RUL stands for what the model would answer
        return main_window_module.ShowOnPlotResult(
            version_id, ("rul",), rul=RULResult(0.8, [UnitRUL(1, 12.0, 0.0, 109.0)]), applicability=verdict
        )

    monkeypatch.setattr(main_window_module, "run_show_on_plot", run)
    with qtbot.waitSignal(main_window.plot_results_shown, timeout=20000):
        main_window.show_version_on_plot(fd001_version.id)
    assert accepted == [fd001_version.id] and len(asked) == 1
    assert "RUL 12" in main_window.plot_area.rul_label.text()
    assert "OUT OF SCOPE" in main_window.plot_area.applicability_label.text()


def test_same_fleet_shows_applicable_without_asking(
    main_window, qtbot, open_and_wait, fd001_version, asked, monkeypatch
):
    from turbofan_desktop.services import inference

    open_and_wait(main_window, [SAMPLE_DIR / "test_FD001.txt"])
    # the stand-in has no model: one that serves no task lets the job run to its end
    monkeypatch.setattr(inference, "version_tasks", lambda ws, version_id: ())
    with qtbot.waitSignal(main_window.plot_results_shown, timeout=20000):
        main_window.show_version_on_plot(fd001_version.id)
    assert asked == []
    assert main_window.plot_area.verdict == "ok"
    assert (
        main_window.plot_area.applicability_label.text()
        == f"transformer/* v1 (#{fd001_version.id}): applicable"
    )
    assert "applicable" in main_window.statusBar().currentMessage()


def test_the_status_bar_says_which_version_answers_rul_for_the_file(main_window, open_and_wait, workspace):
    """Issue 17: FD001 and FD002 versions share one production slot per (plugin, target); the window
    says which one a file gets, and when none of its fleet is in production."""
    train = load_dataset(workspace, SAMPLE_DIR / "train_FD001.txt")
    other = register_stub_version(
        workspace.registry, plugin="transformer", target="*"
    )  # t.txt, another fleet
    open_and_wait(main_window, [SAMPLE_DIR / "test_FD001.txt"])
    text = main_window.show_file_model(main_window.current_dataset(), again=True)
    assert text == f"RUL by {other.label} (newest; no production version is trained on this file's fleet)"
    own = register_stub_version(
        workspace.registry, plugin="transformer", target="*", lineage=train.lineage, validation_performed=True
    )
    workspace.registry.promote(own.id, "production")
    text = main_window.show_file_model(main_window.current_dataset(), again=True)
    assert text == f"RUL by {own.label}: production, trained on train_FD001.txt"
    assert main_window.model_label.text() == text


def test_the_issues_case_fd001_model_on_test_fd002_unit_3(
    main_window, qtbot, open_and_wait, fd001_version, asked, cmapss_dir
):
    """The issue's own case on the real files: an FD001-trained version shown on test_FD002 unit 3."""
    open_and_wait(main_window, [cmapss_dir / "test_FD002.txt"], timeout=60000)
    main_window.data_panel.select(0, [3])
    _show_and_wait(main_window, qtbot, fd001_version.id)
    assert len(asked) == 1 and "6 operating regimes" in asked[0][1]
    assert main_window.plot_area.verdict == "out_of_scope"
    assert "OUT OF SCOPE" in main_window.plot_area.applicability_label.text()
    assert main_window.plot_area.info_label.text().startswith("test_FD002.txt — unit 3")
    assert main_window.plot_area.regime_bar.isVisibleTo(main_window.plot_area)
    main_window.grab().save("/tmp/i17/fd002_unit3_out_of_scope_window.png")
