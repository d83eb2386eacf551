"""The training dialog as a user meets it (issue 17, point 6): why Train did nothing is visible beside
the button, the wheel scrolls the form instead of changing values, a test file is warned about, the
choices are remembered, and every setting has one field with a readable label."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel  # noqa: E402

from turbofan_desktop.services.data import load_dataset  # noqa: E402
from turbofan_desktop.ui.settings import UiSettings  # noqa: E402
from turbofan_desktop.ui.train_dialog import TrainDialog  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


@pytest.fixture
def train_data(workspace):
    return load_dataset(workspace, SAMPLE / "train_FD001.txt")


@pytest.fixture
def ui_settings(tmp_path):
    return UiSettings(tmp_path / "ui.ini")


def _dialog(qtbot, workspace, dataset, plugin="transformer", **kwargs):
    dialog = TrainDialog(workspace, dataset, ["s_2"], **kwargs)
    qtbot.addWidget(dialog)
    if plugin not in dialog.specs:
        pytest.skip(f"the {plugin} plugin is not registered")
    dialog.set_plugin(plugin)
    return dialog


def test_invalid_setting_shows_its_reason_beside_train(qtbot, workspace, train_data):
    dialog = _dialog(qtbot, workspace, train_data)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.form.set_values({"d_model": 32, "heads": 40})
    dialog.accept()
    assert dialog.result() == 0
    assert dialog.problem.isVisible()
    assert "'heads' is 40" in dialog.problem.text() and "d_model 32" in dialog.problem.text()
    heads = dialog.form.editor("heads")
    assert dialog.focusWidget() is heads  # focus goes to it (once the window is active)
    assert not heads.visibleRegion().isEmpty()  # scrolled into view
    dialog.grab().save("/tmp/i17/train_invalid.png")
    dialog.form.set_values({"heads": 4})  # any edit hides the old reason
    assert not dialog.problem.isVisible()


def _wheel(widget, steps=1):
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(QPoint(int(centre.x()), int(centre.y())))),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_changes_a_value_only_in_a_focused_field(qtbot, workspace, train_data):
    dialog = _dialog(qtbot, workspace, train_data)
    dialog.show()
    qtbot.waitExposed(dialog)
    epochs, stop_on = dialog.form.editor("epochs"), dialog.form.editor("heads")
    before = epochs.value()
    _wheel(epochs, 3)
    _wheel(dialog.plugin_combo, -1)
    assert epochs.value() == before and dialog.spec.name == "transformer"
    epochs.setFocus()
    qtbot.waitUntil(epochs.hasFocus)
    _wheel(epochs, 1)
    assert epochs.value() == before + 1
    assert stop_on.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel never gives focus


def test_a_test_file_is_warned_about(qtbot, workspace, train_data):
    test_data = load_dataset(workspace, SAMPLE / "test_FD001.txt")
    warned = _dialog(qtbot, workspace, test_data)
    assert not warned.test_warning.isHidden()
    assert "test_FD001.txt is a test file" in warned.test_warning.text()
    warned.show()
    qtbot.waitExposed(warned)
    warned.grab().save("/tmp/i17/train_test_file.png")
    assert _dialog(qtbot, workspace, train_data).test_warning.isHidden()


def test_choices_are_remembered(qtbot, workspace, train_data, ui_settings):
    first = _dialog(qtbot, workspace, train_data, ui_settings=ui_settings)
    first.form.set_values({"epochs": 3, "d_model": 48})
    first.seed.setValue(11)
    first.val_fraction.setValue(0.3)
    first.accept()
    assert first.result() == first.DialogCode.Accepted
    again = TrainDialog(workspace, train_data, ["s_2"], ui_settings=UiSettings(ui_settings.path))
    qtbot.addWidget(again)
    assert again.spec.name == "transformer"
    assert again.form.changed_values() == {"epochs": 3, "d_model": 48}
    assert again.seed.value() == 11 and again.val_fraction.value() == pytest.approx(0.3)
    assert again.request().seed == 11


def test_one_field_per_setting_with_readable_labels(qtbot, workspace, train_data):
    dialog = _dialog(qtbot, workspace, train_data)
    assert "seed" not in dialog.form.field_names() and "val_fraction" not in dialog.form.field_names()
    labels = {label.objectName(): label.text() for label in dialog.form.findChildren(QLabel)}
    assert labels["label_lr"] == "Learning rate"
    assert labels["label_batch_size"] == "Batch size"
    assert labels["label_rul_cap"] == "RUL cap"
    assert labels["label_heads"] == "Attention heads"
    assert all("_" not in text for name, text in labels.items() if name.startswith("label_"))
    assert "Setting: lr" in dialog.form.editor("lr").toolTip()  # the key stays findable
    dialog.seed.setValue(5)
    assert dialog.request().seed == 5  # the run's seed is the model's seed (services.training)
