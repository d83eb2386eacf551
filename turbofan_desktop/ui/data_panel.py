"""The data panel: loaded files -> units (engines) -> sensors, with per-sensor flags and the data hash.

Sensor rows under a unit are created when the unit is first expanded or selected, so a file with
hundreds of units fills the tree in milliseconds. Selecting units and/or sensors emits
:attr:`DataPanel.selection_changed`; the window then plots the selection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.ui.loading import LoadedData

ROLE = Qt.ItemDataRole.UserRole
DEFAULT_SENSOR_COUNT = 4  # sensors plotted for a unit until the user picks others


@dataclass(frozen=True)
class Selection:
    """What is selected: one dataset (index into the panel's list), its units and sensors."""

    dataset_index: int | None
    units: tuple[Any, ...]
    sensors: tuple[str, ...]


class DataPanel(QWidget):
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setObjectName("dataTree")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Data", "Details"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 170)
        self.tree.itemExpanded.connect(self._fill_sensors)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.hash_label = QLabel("")
        self.hash_label.setObjectName("dataHash")
        self.hash_label.setWordWrap(True)
        self.hash_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hash_label)
        self._data: list[LoadedData] = []
        self._sensor_choice: dict[int, tuple[str, ...]] = {}
        self._last_selection = Selection(None, (), ())

    # -- content ------------------------------------------------------------------------------------
    @property
    def loaded(self) -> list[LoadedData]:
        return list(self._data)

    def add_dataset(self, loaded: LoadedData) -> int:
        """Add one loaded file (replacing an earlier load of the same path); returns its index."""
        path = str(loaded.request.path)
        for index, existing in enumerate(self._data):
            if str(existing.request.path) == path:
                self._data[index] = loaded
                self._rebuild_file_item(index)
                return index
        self._data.append(loaded)
        index = len(self._data) - 1
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
        loaded = self._data[index]
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
        loaded = self._data[index]
        for sensor in loaded.dataset.sensors:
            flags = loaded.sensor_flags.get(sensor, [])
            child = QTreeWidgetItem([sensor, ", ".join(flags)])
            child.setData(0, ROLE, ("sensor", index, unit, sensor))
            if "constant" in flags:
                child.setForeground(0, Qt.GlobalColor.gray)
            item.addChild(child)

    # -- selection ----------------------------------------------------------------------------------
    def unit_item(self, dataset_index: int, unit: Any) -> QTreeWidgetItem | None:
        top = self.tree.topLevelItem(dataset_index)
        if top is None:
            return None
        for row in range(top.childCount()):
            child = top.child(row)
            if str(child.data(0, ROLE)[2]) == str(unit):
                return child
        return None

    def sensor_item(self, dataset_index: int, unit: Any, sensor: str) -> QTreeWidgetItem | None:
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
        self, dataset_index: int, units: list[Any] | None = None, sensors: list[str] | None = None
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

    def _compute_selection(self) -> Selection:
        current = self.tree.currentItem()
        selected = self.tree.selectedItems() or ([current] if current is not None else [])
        if not selected:
            if self._data:
                return Selection(len(self._data) - 1, (), self._sensor_choice.get(len(self._data) - 1, ()))
            return Selection(None, (), ())
        anchor = current if current in selected else selected[0]
        dataset_index = anchor.data(0, ROLE)[1]
        units: list[Any] = []
        sensors: list[str] = []
        for item in selected:
            data = item.data(0, ROLE)
            if data[1] != dataset_index:
                continue
            if data[0] in ("unit", "sensor") and not any(str(u) == str(data[2]) for u in units):
                units.append(data[2])
            if data[0] == "sensor" and data[3] not in sensors:
                sensors.append(data[3])
        if sensors:
            self._sensor_choice[dataset_index] = tuple(sensors)
        if not units:
            first = self.tree.topLevelItem(dataset_index).child(0)
            units = [first.data(0, ROLE)[2]] if first is not None else []
        return Selection(dataset_index, tuple(units), self._sensor_choice.get(dataset_index, ()))

    def _selection_changed(self) -> None:
        self._last_selection = self._compute_selection()
        index = self._last_selection.dataset_index
        if index is not None:
            loaded = self._data[index]
            dataset = loaded.dataset
            constant = ", ".join(dataset.constant_sensors) or "none"
            self.hash_label.setText(
                f"<b>{loaded.request.path.name}</b> ({dataset.format})<br>"
                f"data hash <code>{loaded.data_hash[:16]}…</code><br>constant sensors: {constant}"
            )
            self.hash_label.setToolTip(loaded.data_hash)
        self.selection_changed.emit()
