"""The registry browser: versions, filters, details (lineage, config, KPI history) and stage actions.

Reads go through ``services.models`` on the UI thread (a list of 10,000 rows takes milliseconds); work that
takes seconds — exporting a report — runs as a job. Nothing is deleted without a confirmation, and a
production version needs a second, explicit one (the registry's ``force``).
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.errors import TurbofanError
from turbofan_desktop.services import models, naming
from turbofan_desktop.ui.compare_view import CompareDialog, open_comparison
from turbofan_desktop.ui.dialogs import ask_yes_no, show_error
from turbofan_desktop.ui.drift_badges import DriftBadge
from turbofan_desktop.ui.jobs import JobHandle, JobManager, event_progress
from turbofan_desktop.ui.registry_watch import POLL_INTERVAL_S, RegistryWatcher
from turbofan_desktop.ui.views import select_rows

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import MetricPoint, VersionRecord

STAGES = ("none", "staging", "production", "archived")
PROMOTE_STAGES = ("staging", "production", "none")
LIST_LIMIT = 2000
ALL = "(all)"
COLUMNS = (
    "id",
    "plugin",
    "target",
    "version",
    "stage",
    "status",
    "key metric",
    "validated",
    "created",
    "by",
    "trained on",
    "drift",
)
# The key-metric rule lives in services.naming (reports and the CLI use it too).
key_metric = naming.key_metric
key_metric_of = naming.key_metric_of


def _format_number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _short_time(created: str | None) -> str:
    return (created or "").replace("T", " ")[:19]


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(
        f"<tr><td><b>{html.escape(str(k))}</b></td><td>{html.escape(_format_number(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table cellspacing='2' cellpadding='2'>{cells}</table>"


def details_html(record: VersionRecord, history: list[MetricPoint] | None = None) -> str:
    """The details pane: identity, metrics, validation, lineage, config and KPI history."""
    parts = [f"<h3>{html.escape(record.label)}</h3>"]
    parts.append(
        _table(
            [
                ("stage", record.stage),
                ("status", record.status),
                ("created", _short_time(record.created)),
                ("registered by", record.made_by),
                ("training time", f"{record.training_seconds:.1f} s"),
                ("epochs", len(record.history or [])),
                ("artifact sha256", (record.artifact_sha256 or "—")[:16]),
            ]
        )
    )
    if record.metrics:
        parts.append("<h4>Metrics at training</h4>" + _table(sorted(record.metrics.items())))
    if record.validation_performed and record.validation_metrics:
        parts.append("<h4>Validation</h4>" + _table(sorted(record.validation_metrics.items())))
        parts.append(f"<p>on data {html.escape((record.validation_data_hash or '')[:16])}</p>")
    else:
        parts.append("<p><i>Not validated: validate before promoting to production.</i></p>")
    lineage = record.lineage or {}
    if lineage:
        keys = ("data_hash", "source", "format", "units", "rows", "time_start", "time_end", "preprocessing")
        rows = [(k, lineage[k]) for k in keys if k in lineage and lineage[k] not in (None, "", [], ())]
        parts.append("<h4>Data lineage</h4>" + _table(rows))
    if record.config:
        config = html.escape(json.dumps(record.config, indent=1, sort_keys=True, default=str))
        parts.append(f"<h4>Config</h4><pre>{config}</pre>")
    if history:
        lines = "".join(
            f"<tr><td>{html.escape(_short_time(h.created))}</td><td>{html.escape(str(h.kind))}</td>"
            f"<td>{html.escape(', '.join(f'{k}={_format_number(v)}' for k, v in (h.metrics or {}).items()))}"
            "</td></tr>"
            for h in history
        )
        parts.append(f"<h4>KPI history</h4><table cellpadding='2'>{lines}</table>")
    return "".join(parts)


class ModelsPanel(QWidget):
    """Table of registry versions with filters, a details pane and the stage actions."""

    show_on_plot_requested = Signal(int)
    validate_requested = Signal(list)  # version ids; the main window opens a ValidateDialog for them
    versions_changed = Signal()  # after promote / archive / delete / cleanup
    compare_opened = Signal(object)  # a CompareDialog: the window lets it score the open file and overlay

    def __init__(self, workspace: Workspace, jobs: JobManager, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = workspace
        self.jobs = jobs
        self.records: list[VersionRecord] = []
        self._filling = False  # True while the filters are refilled: their changes are not the user's
        self._report_dir: Path | None = None
        self.last_error: str | None = None
        self.drift_badges: dict[int, DriftBadge] = {}  # version id -> badge for the file last checked
        self.watcher: RegistryWatcher | None = None  # see watch_registry()

        self.plugin_filter = QComboBox()
        self.target_filter = QComboBox()
        self.stage_filter = QComboBox()
        self.stage_filter.addItems([ALL, *STAGES])
        for combo in (self.plugin_filter, self.target_filter):
            combo.addItem(ALL)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for combo in (self.plugin_filter, self.target_filter, self.stage_filter):
            combo.currentIndexChanged.connect(self._filters_changed)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda *_: self.refresh())
        filters = QHBoxLayout()
        for label, combo in (
            ("Plugin", self.plugin_filter),
            ("Target", self.target_filter),
            ("Stage", self.stage_filter),
        ):
            filters.addWidget(QLabel(label))
            filters.addWidget(combo)
        filters.addStretch(1)
        filters.addWidget(refresh)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("key metric"), QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda *_: self.show_on_plot())

        self.details = QTextBrowser()
        self.details.setOpenExternalLinks(False)

        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for key, text, slot in (
            ("promote", "Promote…", self.promote),
            ("archive", "Archive", self.archive),
            ("delete", "Delete…", self.delete),
            ("validate", "Validate…", self.validate),
            ("report", "Open report", self.open_report),
            ("plot", "Show on plot", self.show_on_plot),
            ("cleanup", "Cleanup old versions…", self.cleanup),
        ):
            button = QPushButton(text)
            button.setObjectName(f"models_{key}")
            button.clicked.connect(slot)
            self.buttons[key] = button
            actions.addWidget(button)
        actions.addStretch(1)

        self.count_label = QLabel()
        # on the count's line, not among the actions: the panel keeps its narrow minimum width
        compare = QPushButton("Compare selected…")
        compare.setObjectName("models_compare")
        compare.setToolTip(
            "Select two or more versions: metrics on the same data, config and lineage differences"
        )
        compare.clicked.connect(self.compare)
        self.buttons["compare"] = compare
        reproduce = QPushButton("Reproduce…")
        reproduce.setObjectName("models_reproduce")
        reproduce.setToolTip(
            "Train the selected version again from its recorded config, seed, split and stored data, "
            "and compare data hashes, metrics and weights"
        )
        reproduce.clicked.connect(self.reproduce)
        self.buttons["reproduce"] = reproduce
        count_row = QHBoxLayout()
        count_row.addWidget(self.count_label, 1)
        count_row.addWidget(reproduce)
        count_row.addWidget(compare)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(splitter, 1)
        layout.addLayout(actions)
        layout.addLayout(count_row)

        jobs.job_finished.connect(self._any_job_finished)
        self.refresh()

    # -- reading ------------------------------------------------------------------------------
    def _filter_value(self, combo: QComboBox) -> str | None:
        text = combo.currentText()
        return None if text in ("", ALL) else text

    def _filters_changed(self, *_: object) -> None:
        if not self._filling:
            self.refresh()

    def _refill(self, combo: QComboBox, values: list[str]) -> None:
        current = combo.currentText()
        combo.clear()
        combo.addItems([ALL, *values])
        index = combo.findText(current)
        combo.setCurrentIndex(max(index, 0))

    # -- changes made elsewhere ----------------------------------------------------------------
    def watch_registry(self, interval_s: float = POLL_INTERVAL_S) -> RegistryWatcher:
        """Refresh (keeping the selection) whenever another program or colleague changes the
        registry: a marker polled every ``interval_s`` seconds on a thread of its own."""
        if self.watcher is None:
            self.watcher = RegistryWatcher(self.workspace, interval_s, self)
            self.watcher.changed.connect(self._changed_elsewhere, Qt.ConnectionType.QueuedConnection)
        if self.watcher.is_running() and self.watcher.interval_s != float(interval_s):
            self.watcher.stop()  # so the new interval applies at once
        self.watcher.interval_s = float(interval_s)
        self.watcher.start()
        return self.watcher

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def _changed_elsewhere(self) -> None:
        scroll = self.table.verticalScrollBar().value()
        try:
            self.refresh(quiet=True)
        except Exception as exc:  # noqa: BLE001 - a server that went away: say so, poll again later
            self.count_label.setText(f"Could not refresh: {exc}")
            return
        self.table.verticalScrollBar().setValue(scroll)

    # -- reading (continued) ----------------------------------------------------------------------
    def refresh(self, *, quiet: bool = False) -> None:
        """Re-read the registry with the current filters, keeping the selection. ``quiet`` (a refresh
        nobody asked for): a failure shows in the count line instead of a dialog."""
        selected = set(self.selected_ids())
        try:
            if self.watcher is not None:  # read first: a change during the reads below shows as new
                self.watcher.note(models.change_marker(self.workspace))
            everything = models.list_versions(self.workspace, limit=LIST_LIMIT)
            self.records = models.list_versions(
                self.workspace,
                plugin=self._filter_value(self.plugin_filter),
                target=self._filter_value(self.target_filter),
                stage=self._filter_value(self.stage_filter),
                limit=LIST_LIMIT,
            )
        except TurbofanError as exc:
            if quiet:
                self.count_label.setText(f"Could not refresh: {exc}")
            else:
                self._error(exc)
            return
        self._filling = True
        try:
            self._refill(self.plugin_filter, sorted({r.plugin for r in everything}))
            self._refill(self.target_filter, sorted({r.target for r in everything}))
        finally:
            self._filling = False
        self._fill_table(selected)
        total = models.count_versions(self.workspace)
        shown = f"{len(self.records)} of {total} versions"
        if len(self.records) >= LIST_LIMIT:
            shown += f" (newest {LIST_LIMIT} shown)"
        self.count_label.setText(shown)
        self._selection_changed()

    def _fill_table(self, selected: set[int]) -> None:
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(self.records))
        found: dict = {}  # data hash -> stored lineage: one lookup per data, not per row
        for row, record in enumerate(self.records):
            figure = naming.key_figure(self.workspace, record, found=found)
            metric = f"{figure['name']} = {figure['value']:.4g} on {figure['data'].text}" if figure else ""
            values = (
                record.id,
                record.plugin,
                record.target,
                record.version,
                record.stage,
                record.status,
                metric,
                "yes" if record.validation_performed else "no",
                _short_time(record.created),
                record.made_by,
                naming.trained_on(record).text,
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if column == 0:
                    item.setData(256, int(record.id))  # Qt.UserRole
                elif column in (COLUMNS.index("key metric"), COLUMNS.index("trained on")):
                    item.setToolTip(str(value))
                self.table.setItem(row, column, item)
            self._show_drift_badge(row, record.id)
        select_rows(self.table, [row for row, record in enumerate(self.records) if record.id in selected])
        self.table.blockSignals(False)

    def set_drift_badges(self, badges: dict[int, DriftBadge]) -> None:
        """Show the drift check of the file selected in the data panel: a badge per checked version
        (others blank)."""
        badges = {int(k): v for k, v in badges.items()}
        if badges == self.drift_badges:
            return  # called on every selection in the data panel: keep that cheap
        self.drift_badges = badges
        for row, record in enumerate(self.records):
            self._show_drift_badge(row, record.id)

    def _show_drift_badge(self, row: int, version_id: int) -> None:
        badge = self.drift_badges.get(int(version_id))
        item = QTableWidgetItem(badge.text if badge is not None else "")
        if badge is not None:
            item.setToolTip(badge.tooltip)
            if badge.drifted:
                item.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
                item.setForeground(QBrush(QColor(200, 60, 40)))
        self.table.setItem(row, COLUMNS.index("drift"), item)

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.records[r].id for r in rows if r < len(self.records)]

    def selected_record(self) -> VersionRecord | None:
        ids = self.selected_ids()
        if not ids:
            return None
        return next((r for r in self.records if r.id == ids[0]), None)

    def select_version(self, version_id: int) -> bool:
        """Select (and scroll to) a version, clearing filters that hide it; False when it is gone."""
        if not any(r.id == version_id for r in self.records):
            self._filling = True
            for combo in (self.plugin_filter, self.target_filter, self.stage_filter):
                combo.setCurrentIndex(0)
            self._filling = False
            self.refresh()
        for row, record in enumerate(self.records):
            if record.id == version_id:
                select_rows(self.table, [row])
                self.table.scrollToItem(self.table.item(row, 0))
                self._selection_changed()  # also when the row was selected already (no signal then)
                return True
        return False

    def _selection_changed(self) -> None:
        record = self.selected_record()
        several = len(self.selected_ids()) > 1
        for key, button in self.buttons.items():
            if key == "cleanup":
                button.setEnabled(bool(self.records))
            elif key in ("validate", "delete"):
                button.setEnabled(record is not None)
            elif key == "compare":
                button.setEnabled(several)
            else:
                button.setEnabled(record is not None and not several)
        if record is None:
            self.details.setHtml("<p><i>Select a version to see its lineage, config and metrics.</i></p>")
            return
        try:
            history = models.show_version(self.workspace, record.id).metric_history
        except TurbofanError:
            history = None
        self.details.setHtml(details_html(record, history) + self._health_html(record.id))

    def _health_html(self, version_id: int) -> str:
        """Badges under the details: the newest drift check and the KPI warning."""
        try:
            from turbofan_desktop.services.monitoring import version_health

            health = version_health(self.workspace, version_id)
        except Exception:  # noqa: BLE001 - a badge must never break the details view
            return ""
        parts = []
        drift = health.get("drift")
        if drift is not None:
            drifted = drift["drifted"]
            colour, text = (
                ("#c83c28", f"DRIFT in {', '.join(drifted)}") if drifted else ("#46a05a", "no drift")
            )
            when = html.escape(str(drift.get("created") or "")[:16])
            parts.append(
                f'<p><b style="color:{colour}">{html.escape(text)}</b> (last drift check {when})</p>'
            )
        if health.get("kpi_warning"):
            parts.append(f'<p><b style="color:#c83c28">{html.escape(health["kpi_warning"])}</b></p>')
        return "".join(parts)

    # -- actions ------------------------------------------------------------------------------
    def _error(self, exc: BaseException | str) -> None:
        self.last_error = str(exc)
        show_error(self, exc, str(self.workspace.settings.log_file))

    def _confirm(self, title: str, text: str) -> bool:
        return ask_yes_no(self, title, text)

    def _changed(self) -> None:
        self.refresh()
        self.versions_changed.emit()

    def promote(self, stage: str | None = None) -> bool:
        """Move the selected version to a stage (asked when not given). Returns True when it moved."""
        record = self.selected_record()
        if record is None:
            return False
        if not isinstance(stage, str):
            choices = [s for s in PROMOTE_STAGES if s != record.stage]
            stage, ok = QInputDialog.getItem(
                self, "Promote", f"Move {record.label} to stage:", choices, 0, False
            )
            if not ok:
                return False
        try:
            models.promote(self.workspace, record.id, stage)
        except TurbofanError as exc:
            self._error(exc)
            return False
        self._changed()
        return True

    def archive(self) -> bool:
        return self.promote("archived")

    def delete(self) -> list[int]:
        """Delete the selected versions after confirmation; production ones need a second, explicit one."""
        records = [r for r in self.records if r.id in set(self.selected_ids())]
        if not records:
            return []
        names = "\n".join(f"  {r.label} [{r.stage}]" for r in records)
        if not self._confirm(
            "Delete versions", f"Delete {len(records)} version(s) and their artifacts?\n{names}"
        ):
            return []
        production = [r for r in records if r.stage == "production"]
        force = False
        if production:
            listed = "\n".join(f"  {r.label}" for r in production)
            force = self._confirm(
                "Delete production version",
                f"These versions are in production and in use:\n{listed}\n"
                "Delete them anyway? Nothing will serve their targets until another version is promoted.",
            )
        deleted = []
        for record in records:
            if record.stage == "production" and not force:
                continue
            try:  # the service also drops the workspace's loaded model of the version
                models.delete_version(self.workspace, record.id, force=force and record.stage == "production")
            except TurbofanError as exc:
                self._error(exc)
                continue
            deleted.append(record.id)
        self._changed()
        return deleted

    def cleanup(self) -> list[int]:
        """Keep the newest N versions per (plugin, target) after confirming the list of what goes."""
        keep, ok = QInputDialog.getInt(
            self, "Cleanup old versions", "Versions to keep per plugin and target:", 3, 0, 1000
        )
        if not ok:
            return []
        try:
            doomed = models.cleanup(self.workspace, keep=keep, dry_run=True).versions
        except TurbofanError as exc:
            self._error(exc)
            return []
        if not doomed:
            QMessageBox.information(self, "Cleanup old versions", f"Nothing to delete when keeping {keep}.")
            return []
        listed = "\n".join(f"  {r.label}" for r in doomed[:30])
        if len(doomed) > 30:
            listed += f"\n  … and {len(doomed) - 30} more"
        text = (
            f"Delete {len(doomed)} version(s) and their artifacts, keeping the newest {keep} per plugin and "
            f"target (production and staging versions are kept)?\n{listed}"
        )
        if not self._confirm("Cleanup old versions", text):
            return []
        try:
            deleted = models.cleanup(self.workspace, keep=keep).ids
        except TurbofanError as exc:
            self._error(exc)
            return []
        self._changed()
        return deleted

    def validate(self) -> None:
        """Ask the window to validate the selected versions (it owns the dialog's life cycle)."""
        ids = self.selected_ids()
        if ids:
            self.validate_requested.emit(ids)

    def compare(self) -> CompareDialog | None:
        """The selected versions side by side (metrics on data all were validated on, differences)."""
        ids = self.selected_ids()
        if len(ids) < 2:
            return None
        try:
            dialog = open_comparison(self.workspace, ids, self)
        except TurbofanError as exc:
            self._error(str(exc))
            return None
        self.compare_dialog = dialog  # kept: a non-modal window
        self.compare_opened.emit(dialog)
        dialog.show()
        return dialog

    def show_on_plot(self) -> None:
        record = self.selected_record()
        if record is not None:
            self.show_on_plot_requested.emit(int(record.id))

    def open_report(self) -> JobHandle | None:
        """Export the selected version's HTML report in a job and open it when done; returns the job."""
        from turbofan_desktop.services.reports import export_report

        record = self.selected_record()
        if record is None:
            return None
        if self._report_dir is None:
            self._report_dir = Path(tempfile.mkdtemp(prefix="turbofan-reports-"))
        out = self._report_dir / f"model-{record.id}.html"
        workspace, version_id = self.workspace, record.id
        handle = self.jobs.submit(
            f"Report {record.label}",
            lambda progress, should_stop: export_report(
                workspace, version_id, "html", out, progress=event_progress(progress)
            ),
        )
        handle.finished.connect(lambda written: self._open_url(Path(written) if written else out))
        handle.failed.connect(self._error)
        return handle

    def reproduce(self) -> JobHandle | None:
        """Re-train the selected version in a job (nothing is registered) and show the comparison."""
        from turbofan_desktop.services.reproduce import report_lines, reproduce

        record = self.selected_record()
        if record is None:
            return None
        workspace, version_id, label = self.workspace, record.id, record.label
        handle = self.jobs.submit(
            f"Reproduce {label}",
            lambda progress, should_stop: reproduce(
                workspace, version_id, progress=event_progress(progress), should_stop=should_stop
            ),
        )
        handle.finished.connect(
            lambda report: QMessageBox.information(
                self, f"Reproduce {label}", "\n".join(report_lines(report))
            )
        )
        handle.failed.connect(self._error)
        return handle

    @staticmethod
    def _open_url(path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _any_job_finished(self, job_id: int, result: object) -> None:
        self.refresh()  # a training or validation job may have changed the registry


__all__ = ["ModelsPanel", "details_html", "key_metric", "key_metric_of"]
