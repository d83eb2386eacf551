"""The data panel: loaded files -> units (engines) -> sensors, with per-sensor flags and the data hash.

Sensor rows under a unit are created when the unit is first expanded or selected, so a file with
hundreds of units fills the tree in milliseconds. Selecting units and/or sensors emits
:attr:`DataPanel.selection_changed`; the window then plots the selection.

Drift badges (:meth:`DataPanel.set_drift`) come from the check run when the file opened: a drifted
sensor shows a warning and "DRIFT" in every unit, with PSI and KS p-value in the tooltip; a
double-click or the context menu on it emits :attr:`DataPanel.drift_requested`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QMenu,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.services.session import DriftCheck, LoadedData, Session, Unit
from turbofan_desktop.ui.drift_badges import DriftBadge

if TYPE_CHECKING:
    from turbofan_desktop.services.session import Dataset

ROLE = Qt.ItemDataRole.UserRole
DEFAULT_SENSOR_COUNT = 4  # sensors plotted for a unit until the user picks others
DRIFT_COLOUR = QColor(200, 60, 40)


@dataclass(frozen=True)
class Selection:
    """What is selected: one dataset (index into the panel's list), its units and sensors."""

    dataset_index: int | None
    units: tuple[Unit, ...]
    sensors: tuple[str, ...]


class DataPanel(QWidget):
    """The tree of the session's open files; the files and their drift checks live in ``session``."""

    selection_changed = Signal()
    drift_requested = Signal(int, str)  # dataset index, sensor: show that sensor's drift

    def __init__(self, session: Session | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session if session is not None else Session()
        self.tree = QTreeWidget()
        self.tree.setObjectName("dataTree")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Data", "Details"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 170)
        self.tree.itemExpanded.connect(self._fill_sensors)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self.hash_label = QLabel("")
        self.hash_label.setObjectName("dataHash")
        self.hash_label.setWordWrap(True)
        self.hash_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hash_label)
        self._sensor_choice: dict[int, tuple[str, ...]] = {}
        self._last_selection = Selection(None, (), ())
        self._drift: dict[int, dict[str, DriftBadge]] = {}

    # -- content ------------------------------------------------------------------------------------
    @property
    def loaded(self) -> list[LoadedData]:
        return self.session.files

    def add_dataset(self, loaded: LoadedData) -> int:
        """Add one loaded file (replacing an earlier load of the same path); returns its index."""
        index, replaced = self.session.add_file(loaded)
        if replaced:
            self._drift.pop(index, None)  # the badges were for the replaced data
            self._rebuild_file_item(index)
            return index
        self.tree.addTopLevelItem(self._file_item(index))
        dataset = loaded.dataset
        self._sensor_choice[index] = tuple(
            (dataset.informative_sensors or dataset.sensors)[:DEFAULT_SENSOR_COUNT]
        )
        return index

    def _rebuild_file_item(self, index: int) -> None:
        self.tree.takeTopLevelItem(index)
        self.tree.insertTopLevelItem(index, self._file_item(index))

    def _file_item(self, index: int) -> QTreeWidgetItem:
        loaded = self.session.file(index)
        dataset = loaded.dataset
        name = loaded.request.path.name
        if loaded.request.rul_path is not None or dataset.rul is not None:
            rul_name = loaded.request.rul_path.name if loaded.request.rul_path else "RUL"
            name += f" + {rul_name}"
        item = QTreeWidgetItem([name, f"{len(dataset.units)} units, {dataset.n_rows} rows"])
        item.setData(0, ROLE, ("file", index))
        item.setToolTip(0, f"{loaded.request.path}\ndata hash {loaded.data_hash}")
        lengths = dataset.unit_lengths()
        rul = dataset.rul
        for unit, length in lengths.items():
            details = f"{int(length)} {'cycles' if dataset.time_kind == 'cycle' else 'rows'}"
            if rul is not None and unit in rul.index:
                details += f", RUL {rul[unit]:g}"
            child = QTreeWidgetItem([f"unit {unit}", details])
            child.setData(0, ROLE, ("unit", index, unit))
            child.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            item.addChild(child)
        return item

    def _fill_sensors(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, ROLE)
        if not data or data[0] != "unit" or item.childCount():
            return
        _, index, unit = data
        loaded = self.session.file(index)
        for sensor in loaded.dataset.sensors:
            flags = loaded.sensor_flags.get(sensor, [])
            child = QTreeWidgetItem([sensor, ", ".join(flags)])
            child.setData(0, ROLE, ("sensor", index, unit, sensor))
            if "constant" in flags:
                child.setForeground(0, Qt.GlobalColor.gray)
            item.addChild(child)
            self._show_sensor_badge(child)

    # -- drift badges -------------------------------------------------------------------------------
    def set_drift(self, dataset_index: int, badges: dict[str, DriftBadge], checks: list[DriftCheck]) -> None:
        """Show the drift check of one file: badges per sensor, ``checks`` kept (in the session) for
        the drift view."""
        if not self.session.set_file_drift(dataset_index, checks):
            return
        self._drift[dataset_index] = dict(badges)
        top = self.tree.topLevelItem(dataset_index)
        if top is None:
            return
        self._show_file_badge(top, dataset_index)
        for row in range(top.childCount()):
            unit_item = top.child(row)
            for sensor_row in range(unit_item.childCount()):
                self._show_sensor_badge(unit_item.child(sensor_row))

    def drift_badge(self, dataset_index: int, sensor: str) -> DriftBadge | None:
        return self._drift.get(dataset_index, {}).get(sensor)

    def drift_checks(self, dataset_index: int) -> list[DriftCheck]:
        """The drift checks behind the badges of a file."""
        return self.session.file_drift(dataset_index)

    def drifted_sensors(self, dataset_index: int) -> list[str]:
        return [name for name, badge in self._drift.get(dataset_index, {}).items() if badge.drifted]

    def _show_file_badge(self, item: QTreeWidgetItem, index: int) -> None:
        drifted = self.drifted_sensors(index)
        loaded = self.session.file(index)
        tip = f"{loaded.request.path}\ndata hash {loaded.data_hash}"
        if drifted:
            item.setIcon(1, self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
            tip += f"\ndrift in {', '.join(drifted)}"
        else:
            item.setIcon(1, QIcon())
            tip += "\nno drift against the registered versions" if index in self._drift else ""
        item.setToolTip(0, tip)
        item.setToolTip(1, tip)

    def _show_sensor_badge(self, item: QTreeWidgetItem) -> None:
        _, index, _unit, sensor = item.data(0, ROLE)
        badge = self.drift_badge(index, sensor)
        flags = list(self.session.file(index).sensor_flags.get(sensor, []))
        if badge is None:
            item.setText(1, ", ".join(flags))
            return
        if badge.drifted:
            flags.append(badge.text)
            item.setIcon(1, self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
            item.setForeground(1, QBrush(DRIFT_COLOUR))
        item.setText(1, ", ".join(flags))
        item.setToolTip(0, badge.tooltip)
        item.setToolTip(1, badge.tooltip)

    def _sensor_of(self, item: QTreeWidgetItem | None) -> tuple[int, str] | None:
        data = item.data(0, ROLE) if item is not None else None
        if not data or data[0] != "sensor" or self.drift_badge(data[1], data[3]) is None:
            return None
        return data[1], data[3]

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        found = self._sensor_of(item)
        if found is not None and self.drift_badge(*found).drifted:
            self.drift_requested.emit(*found)

    def _context_menu(self, point: QPoint) -> None:
        found = self._sensor_of(self.tree.itemAt(point))
        if found is None:
            return
        menu = QMenu(self)
        action = menu.addAction(f"Show drift of {found[1]}…")
        action.triggered.connect(lambda _checked=False: self.drift_requested.emit(*found))
        menu.exec(self.tree.viewport().mapToGlobal(point))

    # -- selection ----------------------------------------------------------------------------------
    def unit_item(self, dataset_index: int, unit: Unit) -> QTreeWidgetItem | None:
        top = self.tree.topLevelItem(dataset_index)
        if top is None:
            return None
        for row in range(top.childCount()):
            child = top.child(row)
            if str(child.data(0, ROLE)[2]) == str(unit):
                return child
        return None

    def sensor_item(self, dataset_index: int, unit: Unit, sensor: str) -> QTreeWidgetItem | None:
        unit_item = self.unit_item(dataset_index, unit)
        if unit_item is None:
            return None
        self._fill_sensors(unit_item)
        for row in range(unit_item.childCount()):
            child = unit_item.child(row)
            if child.data(0, ROLE)[3] == sensor:
                return child
        return None

    def select(
        self, dataset_index: int, units: list[Unit] | None = None, sensors: list[str] | None = None
    ) -> None:
        """Select units (default: the first) and optionally sensors of one dataset, as a user would."""
        top = self.tree.topLevelItem(dataset_index)
        if top is None:
            return
        if units is None:
            units = [top.child(0).data(0, ROLE)[2]] if top.childCount() else []
        items = []
        for unit in units:
            if sensors:
                items += [self.sensor_item(dataset_index, unit, s) for s in sensors]
            else:
                items.append(self.unit_item(dataset_index, unit))
        items = [i for i in items if i is not None]
        self.tree.blockSignals(True)
        self.tree.clearSelection()
        for item in items:
            item.setSelected(True)
        if items:
            self.tree.setCurrentItem(items[0], 0, self.tree.selectionModel().SelectionFlag.NoUpdate)
            if items[0].parent() is not None and items[0].parent().parent() is not None:
                items[0].parent().setExpanded(True)
        self.tree.blockSignals(False)
        self._selection_changed()

    def selection(self) -> Selection:
        return self._last_selection

    def current_loaded(self) -> LoadedData | None:
        """The selected file, else the last opened one (None when nothing is open)."""
        index = self.selection().dataset_index
        files = self.session.files
        if index is None:
            return files[-1] if files else None
        return files[index]

    def current_dataset(self) -> Dataset | None:
        loaded = self.current_loaded()
        return loaded.dataset if loaded is not None else None

    def current_unit(self) -> Unit | None:
        """The first selected unit, else the first unit of the current dataset."""
        units = self.selection().units
        if units:
            return units[0]
        dataset = self.current_dataset()
        return dataset.units[0] if dataset is not None and dataset.units else None

    def _compute_selection(self) -> Selection:
        current = self.tree.currentItem()
        selected = self.tree.selectedItems() or ([current] if current is not None else [])
        if not selected:
            last = len(self.session.files) - 1
            if last >= 0:
                return Selection(last, (), self._sensor_choice.get(last, ()))
            return Selection(None, (), ())
        anchor = current if current in selected else selected[0]
        anchor_data = anchor.data(0, ROLE)
        if not anchor_data or not 0 <= anchor_data[1] < len(self.session.files):
            return Selection(None, (), ())  # an item being replaced (a file reloaded) or not a data item
        dataset_index = anchor_data[1]
        units: list[Unit] = []
        sensors: list[str] = []
        for item in selected:
            data = item.data(0, ROLE)
            if not data or data[1] != dataset_index:
                continue
            if data[0] in ("unit", "sensor") and not any(str(u) == str(data[2]) for u in units):
                units.append(data[2])
            if data[0] == "sensor" and data[3] not in sensors:
                sensors.append(data[3])
        if sensors:
            self._sensor_choice[dataset_index] = tuple(sensors)
        if not units:
            # while a reloaded file's item is swapped, the tree may lack it for a moment
            top = self.tree.topLevelItem(dataset_index)
            first = top.child(0) if top is not None else None
            units = [first.data(0, ROLE)[2]] if first is not None else []
        return Selection(dataset_index, tuple(units), self._sensor_choice.get(dataset_index, ()))

    def _selection_changed(self) -> None:
        self._last_selection = self._compute_selection()
        index = self._last_selection.dataset_index
        if index is not None:
            loaded = self.session.file(index)
            dataset = loaded.dataset
            constant = ", ".join(dataset.constant_sensors) or "none"
            self.hash_label.setText(
                f"<b>{loaded.request.path.name}</b> ({dataset.format})<br>"
                f"data hash <code>{loaded.data_hash[:16]}…</code><br>constant sensors: {constant}"
            )
            self.hash_label.setToolTip(loaded.data_hash)
        self.selection_changed.emit()
