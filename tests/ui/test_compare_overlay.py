"""The comparison view with the window's open file (issue 17): scoring the compared versions on it runs
as a job (never on the GUI thread), and their predictions are overlaid on the selected unit, one
colour and one legend line per version."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.plugins.contract import (  # noqa: E402
    ForecastResult,
    RULResult,
    SensorForecast,
    UnitForecast,
    UnitRUL,
)
from turbofan_desktop.ui import main_window as main_window_module  # noqa: E402
from turbofan_desktop.ui.compare_view import open_comparison  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


@pytest.fixture
def compared(main_window, workspace, open_and_wait, qtbot):
    open_and_wait(main_window, [SAMPLE / "test_FD001.txt"])
    a = register_stub_version(workspace.registry, plugin="transformer", target="*")
    b = register_stub_version(workspace.registry, plugin="transformer", target="*")
    dialog = open_comparison(workspace, [a.id, b.id], main_window)
    qtbot.addWidget(dialog)
    main_window.attach_comparison(dialog)
    return dialog, a, b


def test_overlay_draws_each_versions_predictions_on_the_selected_unit(
    main_window, compared, monkeypatch, qtbot
):
    dialog, a, b = compared
    assert dialog.overlay_button.isVisibleTo(dialog) and dialog.overlay_button.text() == "Overlay on unit 1"
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.grab().save("/tmp/i17/compare_dialog_buttons.png")
    shown = main_window.current_sensors()
    last = float(main_window.current_dataset().unit_frame(1)["cycle"].iloc[-1])
    answers = {a.id: 30.0, b.id: 55.0}

    def run(ws, version_id, dataset, unit, *, accept_out_of_scope=False, **kwargs):
        assert accept_out_of_scope  # the legend carries each verdict
        ahead = np.arange(last + 1, last + 6)
        forecasts = {
            s: SensorForecast(s, ahead, np.full(5, 1.0), np.zeros(5), np.full(5, 2.0)) for s in shown
        }
        return main_window_module.ShowOnPlotResult(
            version_id,
            ("forecast", "rul"),
            forecast=ForecastResult(5, 0.8, {1: UnitForecast(1, forecasts)}),
            rul=RULResult(
                0.8, [UnitRUL(1, answers[version_id], answers[version_id] - 10, answers[version_id] + 10)]
            ),
            name=ws.registry.get(version_id).label,
        )

    monkeypatch.setattr(main_window_module, "run_show_on_plot", run)
    with qtbot.waitSignal(main_window.plot_results_shown, timeout=20000):
        dialog.overlay_button.click()
    names = main_window.plot_area.overlay_legend_names()
    assert names == [
        f"{a.label}: forecast, RUL 30 (20–40)",
        f"{b.label}: forecast, RUL 55 (45–65)",
    ]
    assert f"{a.label}: RUL 30 (20–40); {b.label}: RUL 55 (45–65)" in main_window.plot_area.rul_label.text()
    lines = main_window.plot_area.overlay_items("compare")
    assert len(lines) == 2 * len(shown) + 2 * len(shown)  # a median per sensor and a RUL line per plot, each
    main_window.grab().save("/tmp/i17/compare_overlay_window.png")


def test_scoring_on_the_open_file_runs_as_a_job(main_window, compared, monkeypatch, qtbot):
    from turbofan_desktop.services import compare

    dialog, a, b = compared
    assert dialog.score_button.text() == "Score on test_FD001.txt"
    real = compare.compare_versions
    calls = []

    def scored(ws, ids, *, data_path=None, rul_path=None, progress=None, should_stop=None):
        calls.append((threading.current_thread() is threading.main_thread(), Path(data_path), rul_path))
        return real(ws, ids)  # the registry-only comparison stands for the scored one

    monkeypatch.setattr(compare, "compare_versions", scored)
    handle = dialog.score_on_open_file()
    assert handle is not None and handle.job.title == "Compare 2 versions on test_FD001.txt"
    with qtbot.waitSignal(handle.finished, timeout=20000):
        pass
    ((on_gui_thread, path, rul_path),) = calls
    assert not on_gui_thread and path == SAMPLE / "test_FD001.txt"
    assert rul_path is not None and Path(rul_path).name == "RUL_FD001.txt"
    assert dialog.score_button.isEnabled()
