"""The "Where models run" dialog: shows the settings, refuses a bad scheduler address with a
sentence, and saves what it shows into settings.toml (read back by load_settings)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from turbofan_desktop.config import RULES, Settings, load_settings
from turbofan_desktop.ui.executor_dialog import ExecutorDialog


def test_the_dialog_saves_executor_workers_and_threads(qtbot, isolated_home, monkeypatch):
    for name in ("TURBOFAN_EXECUTOR", "TURBOFAN_TORCH_THREADS"):  # the environment would win
        monkeypatch.delenv(name, raising=False)
    dialog = ExecutorDialog(Settings(executor="local", workers=0, torch_threads=0))
    qtbot.addWidget(dialog)
    assert dialog.kind.currentData() == "local" and not dialog.address.isEnabled()
    dialog.show()
    dialog.grab().save("/tmp/issue18-exec-executor-dialog.png")

    dialog.kind.setCurrentIndex(dialog.kind.findData("tcp://"))
    dialog.address.setText("tcp://scheduler")  # no port
    dialog.accept()
    assert dialog.result() != ExecutorDialog.DialogCode.Accepted and dialog.saved_to is None
    assert "tcp://host:8786" in dialog.error.text() and dialog.error.isVisibleTo(dialog)

    dialog.kind.setCurrentIndex(dialog.kind.findData("local"))
    dialog.workers.setValue(2)
    dialog.threads.setValue(1)
    dialog.accept()
    assert dialog.saved_to is not None and dialog.saved_to.is_file()
    settings = load_settings()
    assert (settings.executor, settings.workers, settings.torch_threads) == ("local", 2, 1)


def test_a_dask_address_is_shown_and_kept(qtbot, isolated_home, monkeypatch):
    monkeypatch.delenv("TURBOFAN_EXECUTOR", raising=False)
    dialog = ExecutorDialog(Settings(executor="tcp://10.0.0.5:8786", workers=3))
    qtbot.addWidget(dialog)
    assert dialog.kind.currentData() == "tcp://" and dialog.address.text() == "tcp://10.0.0.5:8786"
    assert not dialog.workers.isEnabled()
    dialog.accept()
    assert load_settings().executor == "tcp://10.0.0.5:8786"


def test_the_dask_retries_are_shown_bounded_by_the_setting_and_saved(qtbot, isolated_home, monkeypatch):
    for name in ("TURBOFAN_EXECUTOR", "TURBOFAN_RETRIES"):  # the environment would win
        monkeypatch.delenv(name, raising=False)
    dialog = ExecutorDialog(Settings(executor="local", retries=2))
    qtbot.addWidget(dialog)
    assert dialog.retries.value() == 2 and not dialog.retries.isEnabled()  # only a Dask cluster retries
    rule = RULES["retries"]
    assert (dialog.retries.minimum(), dialog.retries.maximum()) == (rule.minimum, rule.maximum)

    dialog.kind.setCurrentIndex(dialog.kind.findData("tcp://"))
    assert dialog.retries.isEnabled()
    dialog.address.setText("tcp://10.0.0.5:8786")
    qtbot.keyClick(dialog.retries, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.retries, "99")  # more than the setting allows: the field keeps a valid value
    assert rule.minimum <= dialog.retries.value() <= rule.maximum
    dialog.retries.setValue(0)
    assert dialog.retries.text() == dialog.retries.specialValueText()  # "none (...)"
    dialog.retries.setValue(3)
    dialog.accept()
    assert dialog.saved_to is not None
    settings = load_settings()
    assert (settings.executor, settings.retries) == ("tcp://10.0.0.5:8786", 3)
