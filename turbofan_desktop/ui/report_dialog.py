"""Export one model version's report (HTML or PDF) as a job, then offer to open it.

The report itself is ``services.reports.export_report`` (headless matplotlib); the dialog chooses the
format, the output path and optionally the data the plots are drawn on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.services.naming import version_name_of
from turbofan_desktop.ui.jobs import JobHandle, JobManager, Progress, event_progress

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

FORMATS = {"HTML (self-contained)": "html", "PDF": "pdf"}


def report_folder(last_used: Path | str | None) -> Path:
    """Where the dialog proposes to save: the folder last used for a report, else the user's
    documents (services.reports.default_report_folder) — never the program's sample folder."""
    from turbofan_desktop.services.reports import default_report_folder

    return default_report_folder(last_used)


class ReportDialog(QDialog):
    """Format, output path, optional data file; Export runs the job, Open shows the written file."""

    def __init__(
        self,
        workspace: Workspace,
        jobs: JobManager,
        version_id: int,
        parent: QWidget | None = None,
        default_dir: Path | str | None = None,
    ):
        """``default_dir`` is the folder last used for a report (None: the user's documents)."""
        super().__init__(parent)
        self.workspace = workspace
        self.jobs = jobs
        self.version_id = int(version_id)
        self.job: JobHandle | None = None
        self.written: Path | None = None
        self.version_name = version_name_of(workspace, self.version_id)
        self.setWindowTitle(f"Export report: {self.version_name}")
        self._default_dir = report_folder(default_dir)

        self.format = QComboBox()
        for text, fmt in FORMATS.items():
            self.format.addItem(text, fmt)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.path_edit = QLineEdit(str(self._default_dir / f"model-{self.version_id}-report.html"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("optional: plot on this file instead of the held-out units")
        data_browse = QPushButton("Browse…")
        data_browse.clicked.connect(self._browse_data)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(data_browse)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.start)
        self.open_button = self.buttons.addButton("Open", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.clicked.connect(self.open_written)
        self.open_button.setEnabled(False)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Save to", path_row)
        form.addRow("Data", data_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(620, 200)

    @property
    def fmt(self) -> str:
        return self.format.currentData()

    def set_format(self, fmt: str) -> None:
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))

    def _format_changed(self, *_: object) -> None:
        text = self.path_edit.text().strip()
        if text:
            self.path_edit.setText(str(Path(text).with_suffix("." + self.fmt)))

    def _browse(self) -> None:
        pattern = "HTML files (*.html)" if self.fmt == "html" else "PDF files (*.pdf)"
        path, _ = QFileDialog.getSaveFileName(self, "Save report", self.path_edit.text(), pattern)
        if path:
            self.path_edit.setText(str(Path(path).with_suffix("." + self.fmt)))

    def _browse_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Data for the report's plots", "", "All files (*)")
        if path:
            self.data_edit.setText(path)

    def out_path(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser().with_suffix("." + self.fmt) if text else None

    def start(self) -> JobHandle | None:
        """Submit the export job; returns its handle (None when no path is given)."""
        from turbofan_desktop.services.reports import export_report

        out = self.out_path()
        if out is None:
            self.status.setText("Choose where to save the report.")
            return None
        data = self.data_edit.text().strip() or None
        self.export_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"Writing {out}…")
        workspace, version_id, fmt = self.workspace, self.version_id, self.fmt
        data_path = Path(data) if data else None
        self.job = self.jobs.submit(
            f"Report of {self.version_name} ({self.fmt.upper()})",
            lambda progress, should_stop: export_report(
                workspace, version_id, fmt, out, data_path=data_path, progress=event_progress(progress)
            ),
        )
        self.job.progressed.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        return self.job

    def _on_progress(self, progress: Progress) -> None:
        self.progress.setValue(int(round(progress.fraction * 1000)))

    def _on_finished(self, written: Path | None) -> None:
        self.written = Path(written) if written else self.out_path()
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.open_button.setEnabled(True)
        self.status.setText(f"Report written to {self.written}.")

    def _on_failed(self, message: str) -> None:
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.status.setText(f"The report could not be written: {message}")

    def open_written(self) -> None:
        if self.written is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.written)))


__all__ = ["ReportDialog"]
