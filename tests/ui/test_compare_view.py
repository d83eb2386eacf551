"""The comparison view (issue 17): two versions' metrics on the same data, config and lineage differences."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.data.dataset import DataLineage  # noqa: E402


def _lineage(name: str, rows: int) -> DataLineage:
    return DataLineage(
        data_hash=f"hash-{name}", source=f"/data/{name}", file_sha256=f"{name}-sha-0123456789", format="cmapss",
        units=80, rows=rows, time_kind="cycle", time_start=1, time_end=362,
    )  # fmt: skip


def test_compare_dialog_shows_metrics_on_common_data_and_differences(qtbot, workspace, tmp_path):
    from turbofan_desktop.ui.compare_view import open_comparison

    registry = workspace.registry
    a = register_stub_version(registry, plugin="transformer", target="*", lineage=_lineage("train_FD001.txt", 16362),
                              config={"d_model": 32, "heads": 4})  # fmt: skip
    b = register_stub_version(registry, plugin="transformer", target="*", lineage=_lineage("train_FD002.txt", 43000),
                              config={"d_model": 64, "heads": 4})  # fmt: skip
    # both scored on one test file, and each on its own held-out units (never put side by side)
    registry.record_validation(a.id, metrics={"rul_rmse": 14.3, "rul_coverage80": 0.81}, data_hash="test")
    registry.record_validation(b.id, metrics={"rul_rmse": 61.2, "rul_coverage80": 0.35}, data_hash="test")
    registry.record_validation(b.id, metrics={"rul_rmse": 6.8}, data_hash="own-held-out")
    dialog = open_comparison(workspace, [a.id, b.id])
    qtbot.addWidget(dialog)
    names = [registry.get(v).label for v in (a.id, b.id)]
    assert dialog.metrics.columnCount() == 3
    assert [dialog.metrics.horizontalHeaderItem(c).text() for c in (1, 2)] == names
    # metrics of the common data only (the held-out 6.8 would flatter b), best in bold
    assert dialog.best_cells() == {"rul_coverage80": [], "rul_rmse": [names[0]]}
    assert dialog.metrics.item(1, 2).text() == "61.2"
    assert "data test" in dialog.data_label.text()
    config = {dialog.config.item(r, 0).text() for r in range(dialog.config.rowCount())}
    assert config == {"d_model"}  # heads is the same: not listed
    lineage = {dialog.lineage.item(r, 0).text() for r in range(dialog.lineage.rowCount())}
    assert {"trained on", "training rows"} <= lineage
    assert "train_FD001.txt" in dialog.header.text() and "train_FD002.txt" in dialog.header.text()
    dialog.resize(900, 420)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.grab().save(str(tmp_path / "compare.png"))
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_compare_dialog_says_when_there_is_no_common_data(qtbot, workspace):
    from turbofan_desktop.ui.compare_view import open_comparison

    a = register_stub_version(workspace.registry, plugin="transformer", target="*")
    b = register_stub_version(workspace.registry, plugin="transformer", target="*")
    workspace.registry.record_validation(a.id, metrics={"rul_rmse": 14.3}, data_hash="x")
    dialog = open_comparison(workspace, [a.id, b.id])
    qtbot.addWidget(dialog)
    assert dialog.metrics.rowCount() == 0 and "never validated on the same data" in dialog.data_label.text()


def test_models_panel_shows_trained_on_and_compares_the_selection(qtbot, workspace, tmp_path):
    from turbofan_desktop.ui.jobs import JobManager
    from turbofan_desktop.ui.models_panel import COLUMNS, ModelsPanel

    registry = workspace.registry
    a = register_stub_version(registry, plugin="transformer", target="*", lineage=_lineage("train_FD001.txt", 16362),
                              config={"d_model": 32})  # fmt: skip
    b = register_stub_version(registry, plugin="transformer", target="*", lineage=_lineage("train_FD002.txt", 43000),
                              config={"d_model": 64})  # fmt: skip
    registry.record_dataset(_lineage("test_FD001.txt", 13096))  # the file both were validated on
    for version, rmse in ((a, 14.3), (b, 61.2)):
        registry.record_validation(version.id, metrics={"rul_rmse": rmse}, data_hash="hash-test_FD001.txt")
    jobs = JobManager(workspace.settings.log_file)
    panel = ModelsPanel(workspace, jobs)
    qtbot.addWidget(panel)
    rows = {int(panel.table.item(r, 0).text()): r for r in range(panel.table.rowCount())}
    trained = panel.table.item(rows[a.id], COLUMNS.index("trained on")).text()
    assert trained == "train_FD001.txt (train_FD)"
    metric = panel.table.item(rows[b.id], COLUMNS.index("key metric")).text()
    assert metric == "rul_rmse = 61.2 on test_FD001.txt (test_FD0)"
    assert not panel.buttons["compare"].isEnabled()
    from turbofan_desktop.ui.views import select_rows

    select_rows(panel.table, [rows[a.id], rows[b.id]])
    assert panel.buttons["compare"].isEnabled()
    dialog = panel.compare()
    qtbot.addWidget(dialog)
    assert dialog.metrics.columnCount() == 3 and dialog.best_cells() == {
        "rul_rmse": [registry.get(a.id).label]
    }
    panel.resize(1100, 300)
    panel.show()
    qtbot.waitExposed(panel)
    panel.grab().save(str(tmp_path / "models_panel.png"))
    assert jobs.shutdown(10000)
