"""Versions side by side: the metrics on the same data (best per row in bold green), then what differs
in config and lineage (one row per differing key).

The dialog only shows a :class:`~turbofan_desktop.services.compare.Comparison` (plain data). Comparing
without a data file reads the registry only, so :func:`open_comparison` does it on the UI thread;
scoring versions on a file loads models, so the caller runs ``services.compare.compare_versions`` as a
job and hands its result to :meth:`CompareDialog.show_comparison`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

BEST = QColor(20, 120, 40)
DIFFERENT = QColor(255, 243, 205)  # a pale amber behind cells that differ
VERDICT_COLOUR = {"ok": "rgb(20, 120, 40)", "caution": "rgb(160, 100, 0)", "out_of_scope": "rgb(200, 40, 30)"}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


@dataclass(frozen=True)
class OpenFile:
    """What the window has open: the file (and its paired RUL file) and the unit selected."""

    path: Path
    rul_path: Path | None
    unit: Any


class CompareDialog(QDialog):
    """Two or more versions: a header line each, then tabs Metrics / Config / Lineage.

    Once :meth:`attach` gives it the window's jobs and open file, two buttons appear: *Score on* the
    open file (``services.compare.compare_versions`` with ``data_path``, run as a job: it loads
    models) and *Overlay on unit N* (emits :attr:`overlay_requested` with the version ids; the
    window draws their predictions together)."""

    overlay_requested = Signal(list)  # version ids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.version_ids: list[int] = []
        self.workspace: Any = None
        self.jobs: Any = None
        self.open_file: Callable[[], OpenFile | None] = lambda: None
        self.job: Any = None
        self.score_button = QPushButton("Score on the open file")
        self.score_button.setObjectName("compareScoreButton")
        self.score_button.clicked.connect(self.score_on_open_file)
        self.overlay_button = QPushButton("Overlay on the plot")
        self.overlay_button.setObjectName("compareOverlayButton")
        self.overlay_button.clicked.connect(lambda: self.overlay_requested.emit(list(self.version_ids)))
        for button in (self.score_button, self.overlay_button):
            button.setVisible(False)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare versions")
        self.resize(900, 560)
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        self.metrics = self._table("metricsTable")
        self.config = self._table("configTable")
        self.lineage = self._table("lineageTable")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.metrics, "Metrics")
        self.tabs.addTab(self.config, "Config differences")
        self.tabs.addTab(self.lineage, "Lineage differences")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.score_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.overlay_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.data_label)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)

    @staticmethod
    def _table(name: str) -> QTableWidget:
        table = QTableWidget()
        table.setObjectName(name)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.setAlternatingRowColors(True)
        return table

    def show_comparison(self, comparison: Any) -> None:
        """Fill the dialog from a ``Comparison`` (or its ``to_dict()``)."""
        data = comparison.to_dict() if hasattr(comparison, "to_dict") else dict(comparison)
        versions = data["versions"]
        self.version_ids = [int(v["id"]) for v in versions]
        ids = [str(v["id"]) for v in versions]
        names = [v["name"] for v in versions]
        self.setWindowTitle("Compare " + ", ".join(names))
        lines = []
        for version in versions:
            line = f"<b>{version['name']}</b>: trained on {version['trained_on']['text']}, stage {version['stage']}"
            verdict = version.get("applicability")
            if verdict:
                colour = VERDICT_COLOUR.get(verdict["verdict"], "black")
                text = verdict["verdict"].replace("_", " ")
                line += f" — on this data: <span style='color:{colour}; font-weight:bold'>{text}</span>"
                if verdict["reasons"]:
                    line += f" ({verdict['reasons'][0]})"
            lines.append(line)
        self.header.setText("<br>".join(lines))
        if data["data"]:
            self.data_label.setText(
                f"Metrics computed on {data['data']['text']}; best per row in bold green."
            )
        else:
            self.data_label.setText(" ".join(data["notes"]) or "No metrics to compare.")
        rows = [
            ([row["metric"], *[_cell(row["values"].get(i)) for i in ids]], {str(b) for b in row["best"]})
            for row in data["metrics"]
        ]
        self._fill(self.metrics, ["metric", *names], rows, ids, highlight_best=True)
        for table, key in ((self.config, "config_differences"), (self.lineage, "lineage_differences")):
            diff_rows = [([d["key"], *[_cell(d["values"].get(i)) for i in ids]], set()) for d in data[key]]
            self._fill(table, ["", *names], diff_rows, ids, highlight_best=False)
        self.tabs.setTabText(1, f"Config differences ({len(data['config_differences'])})")
        self.tabs.setTabText(2, f"Lineage differences ({len(data['lineage_differences'])})")

    @staticmethod
    def _fill(
        table: QTableWidget,
        headers: list[str],
        rows: list[tuple[list[str], set[str]]],
        ids: list[str],
        *,
        highlight_best: bool,
    ) -> None:
        table.clear()
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.setRowCount(len(rows))
        bold = QFont()
        bold.setBold(True)
        for r, (cells, best) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c > 0 and highlight_best and ids[c - 1] in best:
                    item.setForeground(QBrush(BEST))
                    item.setFont(bold)
                elif c > 0 and not highlight_best:
                    item.setBackground(QBrush(DIFFERENT))
                table.setItem(r, c, item)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in range(1, len(headers)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)

    # -- the window's open file ---------------------------------------------------------------------
    def attach(self, workspace: Any, jobs: Any, open_file: Callable[[], OpenFile | None]) -> None:
        """Let the dialog score the window's open file (as a job of ``jobs``) and ask for the
        versions' predictions overlaid on its selected unit."""
        self.workspace, self.jobs, self.open_file = workspace, jobs, open_file
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        current = self.open_file()
        attached = self.jobs is not None
        for button in (self.score_button, self.overlay_button):
            button.setVisible(attached)
            button.setEnabled(current is not None)
        if current is not None:
            self.score_button.setText(f"Score on {current.path.name}")
            self.overlay_button.setText(f"Overlay on unit {current.unit}")

    def score_on_open_file(self) -> Any:
        """Validate every compared version on the open file in a job; the tables follow when done."""
        from turbofan_desktop.services.compare import compare_versions
        from turbofan_desktop.ui.jobs import event_progress

        current = self.open_file()
        if current is None or self.jobs is None:
            return None
        workspace, ids = self.workspace, list(self.version_ids)
        self.score_button.setEnabled(False)
        self.data_label.setText(f"Scoring {len(ids)} versions on {current.path.name}…")
        self.job = self.jobs.submit(
            f"Compare {len(ids)} versions on {current.path.name}",
            lambda progress, should_stop: compare_versions(
                workspace,
                ids,
                data_path=current.path,
                rul_path=current.rul_path,
                progress=event_progress(progress),
                should_stop=should_stop,
            ),
        )
        self.job.finished.connect(self._scored)
        self.job.failed.connect(self._score_failed)
        return self.job

    def _scored(self, comparison: Any) -> None:
        self.show_comparison(comparison)
        self.score_button.setEnabled(True)

    def _score_failed(self, message: str) -> None:
        self.data_label.setText(f"Scoring on the open file failed: {message}")
        self.score_button.setEnabled(True)

    def best_cells(self) -> dict[str, list[str]]:
        """For tests: per metric row, the header names of the columns shown as best."""
        out = {}
        for r in range(self.metrics.rowCount()):
            name = self.metrics.item(r, 0).text()
            out[name] = [
                self.metrics.horizontalHeaderItem(c).text()
                for c in range(1, self.metrics.columnCount())
                if self.metrics.item(r, c).font().bold()
            ]
        return out


def open_comparison(workspace: Any, version_ids: list[int], parent: QWidget | None = None) -> CompareDialog:
    """Compare without a data file (registry reads only: fine on the UI thread) and show it."""
    from turbofan_desktop.services.compare import compare_versions

    dialog = CompareDialog(parent)
    dialog.show_comparison(compare_versions(workspace, version_ids))
    return dialog


__all__ = ["CompareDialog", "OpenFile", "open_comparison"]
