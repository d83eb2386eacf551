"""Versions side by side: the metrics on the same data (best per row in bold green), then what differs
in config and lineage (one row per differing key).

The dialog only shows a :class:`~turbofan_desktop.services.compare.Comparison` (plain data). Comparing
without a data file reads the registry only, so :func:`open_comparison` does it on the UI thread;
scoring versions on a file loads models, so the caller runs ``services.compare.compare_versions`` as a
job and hands its result to :meth:`CompareDialog.show_comparison`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
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


class CompareDialog(QDialog):
    """Two or more versions: a header line each, then tabs Metrics / Config / Lineage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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


__all__ = ["CompareDialog", "open_comparison"]
