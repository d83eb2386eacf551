"""Where models run: the ``executor``, ``workers``, ``torch_threads`` and ``retries`` settings in one
small dialog.

Saved into ``settings.toml`` (:func:`turbofan_desktop.config.save_settings`); the running app keeps
its worker processes, so the choice takes effect at the next start (the dialog says so).
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.config import DASK_SCHEMES, RULES, Settings, save_settings
from turbofan_desktop.errors import ConfigError
from turbofan_desktop.services.executors import auto_workers

# (combo text, setting value); a Dask cluster's value is the address typed below it
CHOICES = (
    ("Worker processes on this computer (recommended)", "local"),
    ("Inside the app's own process", "inprocess"),
    ("A Dask cluster", "tcp://"),
)


class ExecutorDialog(QDialog):
    """Edit where model jobs run; :meth:`accept` saves the settings or shows why it cannot."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Where models run")
        self.setObjectName("executorDialog")
        self.saved_to = None
        self.kind = QComboBox(objectName="executorKind")
        for text, value in CHOICES:
            self.kind.addItem(text, value)
        self.address = QLineEdit(objectName="schedulerAddress")
        self.address.setPlaceholderText("tcp://scheduler-host:8786")
        self.workers = QSpinBox(objectName="workerCount")
        self.workers.setRange(0, 256)
        self.workers.setSpecialValueText(f"automatic ({auto_workers()} on this computer)")
        self.threads = QSpinBox(objectName="threadsPerWorker")
        self.threads.setRange(0, 1024)
        self.threads.setSpecialValueText("automatic (the cores shared out)")
        self.retries = QSpinBox(objectName="daskRetries")
        low, high = RULES["retries"].minimum, RULES["retries"].maximum
        self.retries.setRange(int(low), int(high))
        self.retries.setSpecialValueText("none (a lost worker fails its job)")
        self.retries.setToolTip(
            "How often a job whose Dask worker was lost (killed, out of memory, machine gone) runs "
            "again on another worker (setting 'retries')."
        )
        self.error = QLabel(objectName="executorError")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Train and apply models in:", self.kind)
        form.addRow("Scheduler address:", self.address)
        form.addRow("Worker processes:", self.workers)
        form.addRow("Torch threads per worker:", self.threads)
        form.addRow("Retries after a lost Dask worker:", self.retries)
        note = QLabel(
            "Worker processes keep the window responsive and survive a model that crashes. "
            "Changes take effect the next time Turbofan Desktop starts."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

        self._show(settings)
        self.kind.currentIndexChanged.connect(self._enable_fields)
        self._enable_fields()

    def _show(self, settings: Settings) -> None:
        value = settings.executor
        index = 2 if value.startswith(DASK_SCHEMES) else max(0, self.kind.findData(value))
        self.kind.setCurrentIndex(index)
        self.address.setText(value if index == 2 else "")
        self.workers.setValue(int(settings.workers))
        self.threads.setValue(int(settings.torch_threads))
        self.retries.setValue(int(settings.retries))

    def _enable_fields(self) -> None:
        value = self.kind.currentData()
        self.address.setEnabled(value == "tcp://")
        self.workers.setEnabled(value == "local")
        self.retries.setEnabled(value == "tcp://")

    def chosen(self) -> dict[str, object]:
        """The settings as the dialog shows them."""
        value = self.kind.currentData()
        executor = self.address.text().strip() if value == "tcp://" else value
        return {
            "executor": executor,
            "workers": self.workers.value(),
            "torch_threads": self.threads.value(),
            "retries": self.retries.value(),
        }

    def accept(self) -> None:
        try:
            self.saved_to = save_settings(self.chosen())
        except ConfigError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        super().accept()


__all__ = ["ExecutorDialog"]
