"""Selecting rows of item views from code.

``QAbstractItemView.selectRow`` reads the keyboard modifiers held at that moment: with Ctrl held it
toggles the row (a row already selected is deselected), with Shift it extends the selection, and in
extended-selection mode each call clears the rows selected before. Code that selects on the user's
behalf (after a refresh, from another panel) wants none of that.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QAbstractItemView

_ROWS = QItemSelectionModel.SelectionFlag.Rows


def select_rows(view: QAbstractItemView, rows: Iterable[int]) -> None:
    """Select exactly ``rows`` (whole rows) whatever keys are held; the first becomes current."""
    model, selection = view.model(), view.selectionModel()
    selection.clearSelection()
    for position, row in enumerate(rows):
        index = model.index(row, 0)
        if position == 0:
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.Select | _ROWS)
        else:
            selection.select(index, QItemSelectionModel.SelectionFlag.Select | _ROWS)
