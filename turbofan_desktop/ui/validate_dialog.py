"""Validate selected versions (or all of them) on their held-out units or on a chosen file.

The work is ``services.validation.validate`` run as a job; the dialog shows one row per version
(metrics, the hash of the data they were computed on, or the one-sentence reason it failed) and a
summary line. The dialog may be closed while the job runs: the job goes on in the jobs panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.ui.jobs import JobHandle, JobManager, Progress, target_progress
from turbofan_desktop.ui.models_panel import key_metric_of

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.validation import ValidationOutcome, ValidationSummary

RESULT_COLUMNS = ("id", "plugin", "target", "result", "data hash")


def _metrics_text(outcome: ValidationOutcome) -> str:
    """The key metric first (the one the models panel shows), then the rest alphabetically."""
    metrics = dict(outcome.metrics or {})
    key = key_metric_of(metrics)
    names = sorted(metrics, key=lambda name: (key is None or name != key[0], name))
    return ", ".join(
        f"{name} = {metrics[name]:.4g}" if isinstance(metrics[name], float) else f"{name} = {metrics[name]}"
        for name in names
    )


class ValidateDialog(QDialog):
    """Choose the data, run the validation job, read the per-version results."""

    def __init__(
        self,
        workspace: Workspace,
        jobs: JobManager,
        version_ids: list[int] | None,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.workspace = workspace
        self.jobs = jobs
        self.version_ids = list(version_ids) if version_ids is not None else None
        self.job: JobHandle | None = None
        self.summary_result: ValidationSummary | None = None
        what = (
            "all trained versions"
            if self.version_ids is None
            else ", ".join(f"#{v}" for v in self.version_ids[:8])
            + (" …" if len(self.version_ids) > 8 else "")
        )
        self.setWindowTitle("Validate models")

        self.held_out = QRadioButton("Held-out units of each version's training data")
        self.held_out.setChecked(True)
        self.from_file = QRadioButton("A data file:")
        group = QButtonGroup(self)
        group.addButton(self.held_out)
        group.addButton(self.from_file)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("e.g. test_FD001.txt (its RUL file is paired automatically)")
        self.path_edit.textChanged.connect(
            lambda text: self.from_file.setChecked(bool(text)) if text else None
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.from_file)
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(browse)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.table = QTableWidget(0, len(RESULT_COLUMNS))
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in RESULT_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel(f"Validate {what}.")
        self.summary.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.run_button = self.buttons.addButton("Validate", QDialogButtonBox.ButtonRole.ActionRole)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = self.buttons.addButton("Cancel job", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Versions: {what}"))
        layout.addWidget(self.held_out)
        layout.addLayout(file_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.resize(760, 420)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Validation data", "", "Data files (*.txt *.csv *.parquet *.npy);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)
            self.from_file.setChecked(True)

    def data_path(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text) if self.from_file.isChecked() and text else None

    def start(self) -> JobHandle | None:
        """Submit the validation job; returns its handle."""
        from turbofan_desktop.services.validation import validate

        if self.job is not None and not self.job.done:
            return self.job
        if self.from_file.isChecked() and self.data_path() is None:
            self.summary.setText("Choose a data file, or validate on the held-out units.")
            return None
        self.table.setRowCount(0)
        self.summary.setText("Validating…")
        self.progress.setValue(0)
        self.progress.show()
        self.run_button.setEnabled(False)
        self.cancel_button.show()
        title = "Validate " + (
            "all versions" if self.version_ids is None else f"{len(self.version_ids)} version(s)"
        )
        workspace, version_ids, data_path = self.workspace, self.version_ids, self.data_path()
        self.job = self.jobs.submit(
            title,
            lambda progress, should_stop: validate(
                workspace,
                version_ids,
                data_path=data_path,
                progress=target_progress(progress),
                should_stop=should_stop,
            ),
        )
        self.job.progressed.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _on_progress(self, progress: Progress) -> None:
        self.progress.setValue(int(round(progress.fraction * 1000)))

    def _done(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.run_button.setEnabled(True)

    def _on_finished(self, summary: ValidationSummary) -> None:
        self._done()
        self.show_results(summary)

    def _on_failed(self, message: str) -> None:
        self._done()
        self.summary.setText(f"Validation failed: {message}")

    def _on_cancelled(self) -> None:
        self._done()
        result = self.job.job.result if self.job is not None else None
        if result is not None:
            self.show_results(result)
        self.summary.setText(self.summary.text() + " Cancelled.")

    def show_results(self, summary: ValidationSummary) -> None:
        """Fill the table from a ValidationSummary (one row per version)."""
        self.summary_result = summary
        results = list(summary.results or [])
        self.table.setRowCount(len(results))
        for row, outcome in enumerate(results):
            text = f"error: {outcome.error}" if outcome.error else _metrics_text(outcome)
            values = (outcome.id, outcome.plugin, outcome.target, text, (outcome.data_hash or "")[:16])
            for column, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if column == 3:
                    item.setToolTip(text)
                self.table.setItem(row, column, item)
        text = f"{summary.validated} validated, {summary.failed} failed of {len(results)} version(s)."
        if not results:
            text = "No trained version matched; nothing was validated."
        self.summary.setText(text)


__all__ = ["ValidateDialog"]
