"""The fleet dock driven as a user would: assess (a job), sort, filter, change H and costs, click an engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.training import TrainRequest, preset_configs, train

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


def _first_units(source: Path, units: int) -> str:
    return (
        "\n".join(
            line for line in source.read_text().splitlines() if line.split() and int(line.split()[0]) <= units
        )
        + "\n"
    )


@pytest.fixture(scope="module")
def fleet_home(tmp_path_factory):
    """A registry with a tiny Transformer trained on 10 units of FD001, and 8 test units to assess."""
    pytest.importorskip("turbofan_transformer.model")
    folder = tmp_path_factory.mktemp("fleet_ui")
    (folder / "train_small.txt").write_text(_first_units(SAMPLE / "train_FD001.txt", 10))
    (folder / "test_FD001.txt").write_text(_first_units(SAMPLE / "test_FD001.txt", 8))
    (folder / "RUL_FD001.txt").write_text(
        "\n".join((SAMPLE / "RUL_FD001.txt").read_text().split()[:8]) + "\n"
    )
    home = folder / "registry"
    with Workspace.open(home) as ws:
        presets = preset_configs(ws, "tiny")
        summary = train(
            ws,
            TrainRequest(
                plugin="transformer", data_path=folder / "train_small.txt", config=presets["transformer"]
            ),
        )
        assert summary.failed == 0
        # two anomaly versions (training validates each on its held-out units)
        summary = train(
            ws,
            TrainRequest(
                plugin="telemanom",
                data_path=folder / "train_small.txt",
                targets=["s_2", "s_3"],
                config=presets["telemanom"],
            ),
        )
        assert summary.failed == 0
    return home, folder / "test_FD001.txt"


def anomaly_version(home: Path, sensor: str) -> tuple[int, str]:
    with Workspace.open(home) as ws:
        record = next(r for r in ws.registry.list_versions(plugin="telemanom") if r.target == sensor)
        return int(record.id), record.label


@pytest.fixture
def panel(qtbot, fleet_home):
    from turbofan_desktop.ui.fleet_panel import FleetPanel
    from turbofan_desktop.ui.jobs import JobManager

    home, test_file = fleet_home
    ws = Workspace.open(home)
    jobs = JobManager()
    dataset = load_dataset(ws, test_file)
    widget = FleetPanel(ws, jobs, lambda: [dataset])
    qtbot.addWidget(widget)
    widget.resize(1100, 500)
    widget.show()
    yield widget, dataset
    assert jobs.shutdown(10000)
    ws.close()


def assess(qtbot, widget) -> None:
    with qtbot.waitSignal(widget.assessed, timeout=60000):
        qtbot.mouseClick(widget.assess_button, Qt.MouseButton.LeftButton)


def column_values(widget, column: int) -> list:
    from turbofan_desktop.ui.fleet_panel import SORT_ROLE

    return [widget.proxy.index(r, column).data(SORT_ROLE) for r in range(widget.proxy.rowCount())]


def test_nothing_open_says_so_and_starts_no_job(qtbot, fleet_home):
    from turbofan_desktop.ui.fleet_panel import FleetPanel

    with Workspace.open(fleet_home[0]) as ws:
        widget = FleetPanel(ws, None, lambda: [])
        qtbot.addWidget(widget)
        assert widget.assess() is None
        assert "Open data files first" in widget.summary.text()


def test_assess_sort_what_if_and_click_an_engine(qtbot, panel):
    from turbofan_desktop.ui.fleet_panel import C_PFAIL, C_RISK, C_RUL, C_UNIT

    widget, dataset = panel
    assert widget.version_combo.count() == 2  # the default and the one trained version
    assess(qtbot, widget)
    assert widget.proxy.rowCount() == 8
    assert "8 engines from transformer/*" in widget.summary.text()
    # risk first by default: the most urgent action on top
    urgency = [int(v // 10) for v in column_values(widget, C_RISK)]
    assert urgency == sorted(urgency, reverse=True)
    # sort by RUL, as a click on the header would
    widget.table.sortByColumn(C_RUL, Qt.SortOrder.AscendingOrder)
    ruls = column_values(widget, C_RUL)
    assert ruls == sorted(ruls)
    # what-if: a longer horizon raises every P(fail), the header follows, and no job runs
    before = widget.plan.p_fail.copy()
    jobs_before = len(widget.jobs.jobs())
    with qtbot.waitSignal(widget.plan_changed):
        widget.horizon.setValue(250)
    assert np.all(widget.plan.p_fail >= before) and widget.plan.p_fail.max() > before.max() - 1e-12
    # the chart shows every engine once, under the action the new plan gives it
    for action, n in widget.plan.counts().items():
        assert widget.chart.visible_points(action) == n
    assert widget.model.headerData(C_PFAIL, Qt.Orientation.Horizontal) == "P(fail ≤ 250)"
    assert len(widget.jobs.jobs()) == jobs_before
    # a failure as cheap as a visit is refused in words; the last plan stays
    kept = widget.plan
    widget.cost_failure.setValue(widget.cost_visit.value())
    assert widget.plan is kept and "must exceed" in widget.summary.text()
    widget.cost_failure.setValue(100000)
    assert (
        widget.plan.cost_failure == 100000
        and (widget.plan.action != "monitor").sum() >= (kept.action != "monitor").sum()
    )
    # sorted by risk, the order follows a what-if
    widget.table.sortByColumn(C_RISK, Qt.SortOrder.DescendingOrder)
    widget.horizon.setValue(60)
    keys = column_values(widget, C_RISK)
    assert keys == sorted(keys, reverse=True) and widget.proxy.rowCount() == 8
    # filter by action, then by unit
    widget.action_filter.setCurrentIndex(widget.action_filter.findData("monitor"))
    assert widget.proxy.rowCount() == int((widget.plan.action == "monitor").sum())
    widget.action_filter.setCurrentIndex(0)
    widget.filter_edit.setText("3")
    assert column_values(widget, C_UNIT) == [3.0]
    widget.filter_edit.clear()
    # click an engine's row: the panel asks the window to plot that unit of that file
    widget.table.sortByColumn(C_UNIT, Qt.SortOrder.AscendingOrder)
    index = widget.proxy.index(4, C_UNIT)
    with qtbot.waitSignal(widget.engine_activated) as signal:
        widget.table.clicked.emit(index)
    assert signal.args[0] is dataset and signal.args[1] == 5
    # and a click on its point in the chart does the same
    with qtbot.waitSignal(widget.engine_activated) as signal:
        widget.activate_engine(1)
    assert signal.args[1] == widget.assessment.engines[1].unit


def test_the_report_is_written_by_a_job(qtbot, panel, tmp_path):
    widget, _ = panel
    assert not widget.report_button.isEnabled()
    assess(qtbot, widget)
    widget.horizon.setValue(40)
    target = tmp_path / "fleet.html"
    with qtbot.waitSignal(widget.jobs.job_finished, timeout=60000):
        widget.export_report(str(target))
    text = target.read_text()
    assert "Horizon H</th><td" in text and "40 cycles" in text and text.count("test_FD001.txt unit ") == 8
    assert f"wrote {target}" in widget.summary.text()


def test_a_failed_assessment_is_one_sentence_and_the_panel_stays_usable(qtbot, panel, tmp_path):
    widget, _ = panel
    cut = tmp_path / "short.csv"
    cut.write_text("unit,cycle,s_2\n1,1,640\n1,2,641\n")
    with Workspace.open(tmp_path / "reg") as ws:
        other = load_dataset(ws, cut)
    widget.datasets = lambda: [other]
    widget.assess()
    qtbot.waitUntil(lambda: widget.assess_button.isEnabled(), timeout=60000)
    assert widget.summary.text().startswith("The fleet could not be assessed: ")
    assert "internal error" not in widget.summary.text()


def test_the_window_docks_the_panel_on_ctrl_4_and_plots_a_clicked_engine(qtbot, fleet_home, open_and_wait):
    from turbofan_desktop.ui.main_window import MainWindow

    home, test_file = fleet_home
    ws = Workspace.open(home)
    window = MainWindow(ws)
    try:
        window.show()
        qtbot.waitExposed(window)
        toggle = window.fleet_dock.toggleViewAction()
        assert toggle.shortcut().toString() == "Ctrl+4" and toggle in window.menus["view"].actions()
        open_and_wait(window, [test_file])
        panel = window.fleet_panel
        assess(qtbot, panel)
        assert panel.proxy.rowCount() == 8
        engine = next(i for i, e in enumerate(panel.assessment.engines) if e.unit == 6)
        panel.activate_engine(engine)
        assert window.data_panel.selection().units == (6,)
        assert window.plot_area.shown_units == [6]
    finally:
        window.close()
        assert window.jobs.running_count() == 0
        window.deleteLater()
        ws.close()


def test_anomaly_versions_default_to_the_newest_validated_and_can_be_chosen(qtbot, panel, fleet_home):
    from turbofan_desktop.ui.fleet_panel import CHOSEN, NO_ANOMALIES, PRODUCTION

    widget, dataset = panel
    home, _ = fleet_home
    s2, s2_label = anomaly_version(home, "s_2")
    s3, s3_label = anomaly_version(home, "s_3")
    # the default: per sensor the newest validated version, named on the button and in the summary
    assert widget.anomaly_button.text() == "Anomalies: newest validated"
    assert "Newest validated version per sensor" in widget.anomaly_button.toolTip()
    assert widget.anomaly_versions_to_use([dataset]) == [s2, s3]
    assess(qtbot, widget)
    assert widget.assessment.anomaly_versions == [s2, s3]
    assert f"Anomalies from {s2_label}, {s3_label}" in widget.summary.text()
    # nothing is in production
    widget.set_anomaly_choice(PRODUCTION)
    assert widget.anomaly_versions_to_use([dataset]) == []
    # the menu lists every usable version with its stage and validation; ticking one chooses it
    widget._fill_anomaly_menu()
    texts = [a.text() for a in widget.anomaly_menu.actions()]
    assert f"{s3_label} [none, validated]" in texts and f"{s2_label} [none, validated]" in texts
    tick = next(a for a in widget.anomaly_menu.actions() if a.text().startswith(s3_label))
    tick.trigger()
    assert widget.anomaly_mode == CHOSEN and widget.chosen_anomaly_versions == [s3]
    assert widget.anomaly_button.text() == "Anomalies: 1 chosen"
    assert f"#{s3}" in widget.anomaly_button.toolTip()
    assess(qtbot, widget)
    assert widget.assessment.anomaly_versions == [s3]
    assert f"Anomalies from {s3_label}" in widget.summary.text()
    assert {a["sensor"] for e in widget.assessment.engines for a in e.anomalies} <= {"s_3"}
    widget.set_anomaly_choice(NO_ANOMALIES)
    assess(qtbot, widget)
    assert widget.assessment.anomaly_versions == [] and "No anomaly version ran" in widget.summary.text()


def test_the_panel_shows_the_applicability_and_the_calibrated_tail(qtbot, panel):
    from turbofan_desktop.ui.fleet_panel import APPLICABILITY_TEXT, C_APPLIC, C_INTERVAL, COLUMNS

    widget, _ = panel
    assess(qtbot, widget)
    a = widget.assessment
    assert COLUMNS[C_APPLIC] == "Applicability"
    verdict = a.files[0].verdict
    assert verdict in ("ok", "caution")
    shown = {widget.proxy.index(r, C_APPLIC).data() for r in range(widget.proxy.rowCount())}
    assert shown == {APPLICABILITY_TEXT[verdict]}
    assert "P(fail) uses the " in widget.summary.text()
    assert a.calibration is not None and a.calibration.summary() in widget.summary.text()
    # the interval bar and text show the calibrated lower bound the plan uses
    row_engine = widget.model.engine_at(0)
    text = widget.proxy.index(0, C_INTERVAL).data()
    assert text == f"{a.quantiles[row_engine, 0]:.0f}–{a.engines[row_engine].upper:.0f}"


@pytest.fixture
def moved_panel(qtbot, fleet_home):
    """The panel on a file whose s_2 lies far outside the training range: out of the RUL version's scope."""
    from turbofan_desktop.ui.fleet_panel import FleetPanel
    from turbofan_desktop.ui.jobs import JobManager

    home, test_file = fleet_home
    ws = Workspace.open(home)
    jobs = JobManager()
    data = load_dataset(ws, test_file)
    frame = data.frame.copy()
    frame["s_2"] = frame["s_2"] + 40 * frame["s_2"].std()
    moved = data.with_frame(frame, {"step": "shift s_2"}, name="moved.txt", source=None)
    widget = FleetPanel(ws, jobs, lambda: [moved])
    qtbot.addWidget(widget)
    yield widget
    assert jobs.shutdown(10000)
    ws.close()


def test_out_of_scope_asks_and_assesses_on_yes(qtbot, moved_panel, questions_answered_yes):
    from turbofan_desktop.ui.fleet_panel import C_APPLIC

    widget = moved_panel
    assess(qtbot, widget)  # refused, asked (answered Yes), assessed again with the verdict accepted
    assert len(questions_answered_yes) == 1 and "out of scope on" in questions_answered_yes[0]
    assert widget.proxy.rowCount() == 8
    assert all(e.applicability == "out_of_scope" for e in widget.assessment.engines)
    assert widget.proxy.index(0, C_APPLIC).data() == "OUT OF SCOPE"


def test_out_of_scope_declined_assesses_nothing(qtbot, moved_panel, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    asked = []

    def no(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(no))
    widget = moved_panel
    widget.assess()
    qtbot.waitUntil(lambda: "Not assessed" in widget.summary.text(), timeout=60000)
    assert len(asked) == 1 and widget.assessment is None and widget.proxy.rowCount() == 0
    assert "out of scope on" in widget.summary.text() and widget.assess_button.isEnabled()


def test_the_alarm_column_follows_the_rule_set_in_the_panel(qtbot, panel, tmp_path):
    from turbofan_desktop.services.fleet_alarms import DEFAULT_RULE, AlarmRule
    from turbofan_desktop.ui.fleet_panel import C_ALARM

    widget, _ = panel
    assert (
        widget.alarm_rule == DEFAULT_RULE
        and "(default, chosen on held-out engines)" in widget.alarm_text.text()
    )
    assert "held-out" in widget.alarm_text.toolTip()
    assess(qtbot, widget)  # the tiny versions watch s_2 and s_3: the default rule's sensors see nothing
    assert widget.proxy.rowCount() == 8
    assert all(widget.proxy.index(r, C_ALARM).data() == "" for r in range(8))
    # any range of s_2 or s_3 in the window, held one cycle: an alarm wherever the assessment found one
    widget.alarm_sensors.setText("s_2, s_3")
    widget.alarm_sensors.editingFinished.emit()
    widget.alarm_score.setValue(0.0)
    assert widget.alarm_rule == AlarmRule(("s_2", "s_3"), 0.0, 1, 1)
    assert "1 of 2 of s_2, s_3" in widget.alarm_text.text() and "default" not in widget.alarm_text.text()
    with_ranges = {e.unit for e in widget.assessment.engines if e.anomalies}
    assert with_ranges  # the tiny versions do flag ranges in the last 50 cycles of some engines
    alarmed = {widget.proxy.index(r, 0).data(): widget.proxy.index(r, C_ALARM).data() for r in range(8)}
    assert {u for u, text in alarmed.items() if text.startswith("ALARM (cycle ")} == {
        str(u) for u in with_ranges
    }
    assert f"{len(with_ranges)} engine(s) alarmed" in widget.summary.text()
    # the report names the panel's rule once and gives each alarmed engine its alarm cycle
    target = tmp_path / "fleet.html"
    with qtbot.waitSignal(widget.jobs.job_finished, timeout=60000):
        widget.export_report(str(target))
    text = target.read_text()
    assert text.count("Alarm rule") == 1 and "1 of 2 of s_2, s_3 with score &gt;= 0" in text
    assert text.count("; alarm at cycle ") == len(with_ranges)
    # a score no range reaches: no alarm; the column sorts without error
    widget.alarm_score.setValue(1e5)
    assert all(widget.proxy.index(r, C_ALARM).data() == "" for r in range(8))
    widget.table.sortByColumn(C_ALARM, Qt.SortOrder.DescendingOrder)
    # a rule that makes no sense is refused in one sentence; the last rule stays
    widget.alarm_sensors.setText(" , ")
    widget.alarm_sensors.editingFinished.emit()
    assert "Alarm rule not changed" in widget.alarm_text.text() and widget.alarm_rule.sensors == (
        "s_2",
        "s_3",
    )
    widget.set_alarm_rule(DEFAULT_RULE)
    assert widget.alarm_sensors.text() == "s_7, s_11, s_12" and widget.alarm_rule == DEFAULT_RULE
    widget.alarm_sensors.setText("s_2, s_3")
    widget.alarm_sensors.editingFinished.emit()
    widget.alarm_score.setValue(0.0)
    assert widget.alarm_rule == AlarmRule(("s_2", "s_3"), 0.0, 1, 1)
