"""The "Where models run" dialog: shows the settings, refuses a bad scheduler address with a
sentence, and saves what it shows into settings.toml (read back by load_settings)."""

from __future__ import annotations

from turbofan_desktop.config import Settings, load_settings
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
