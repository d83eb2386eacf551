"""A form generated from a plugin's typed config schema (:func:`contract.config_schema`).

The plugin declares each setting once (type, default, help, range, choices, advanced); this form, the
CLI's ``--set key=value`` and the registry all use the same names. Editors follow the type: ``int`` ->
spin box, ``float`` -> spin box (a line edit for tiny values such as ``3e-4``, which a spin box would
round away), ``bool`` -> check box, choices -> combo box, tuples/lists -> ``"a, b"`` line edit. The
help text is the tooltip; advanced settings sit in a collapsed section. :meth:`ConfigForm.values`
returns only the settings that differ from their defaults, after :func:`contract.build_config` has
accepted them — a :class:`~turbofan_desktop.errors.ConfigError` is shown inline and raised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator, QWheelEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import ModelSpec, build_config

INT_LIMIT = 2**31 - 1
TINY_FLOAT = 1e-2  # below this (non-zero) a spin box with a few decimals would lose the value
SPIN_DECIMALS = 4

#: one row of :func:`contract.config_schema`: name, type, default, help, minimum, maximum, choices, advanced
SchemaRow: TypeAlias = dict[str, Any]

#: labels for settings whose key alone reads poorly; the key itself stays in the tooltip
LABELS = {
    "l_s": "History length",
    "p": "Minimum error decrease",
    "d_model": "Model width",
    "heads": "Attention heads",
    "lr": "Learning rate",
    "z_min": "Smallest z",
    "z_max": "Largest z",
    "z_step": "z step",
    "smoothing_perc": "Smoothing share",
    "n_predictions": "Steps predicted",
    "min_delta": "Minimum improvement",
    "validation_split": "Early-stopping share",
    "use_age": "Use engine age",
    "ensemble": "Ensemble members",
    "stop_on": "Stop early on",
}
#: words of setting keys written out (the rest are capitalised as they are)
WORDS = {"rul": "RUL", "mse": "MSE", "perc": "share", "min": "minimum", "max": "maximum"}


def setting_label(row: SchemaRow) -> str:
    """What the form shows for a setting: the plugin's own ``label`` if it gives one, else a
    readable phrase made from the key (``batch_size`` -> ``Batch size``, ``rul_cap`` -> ``RUL cap``)."""
    if row.get("label"):
        return str(row["label"])
    name = str(row["name"])
    if name in LABELS:
        return LABELS[name]
    words = [WORDS.get(word, word) for word in name.split("_") if word]
    text = " ".join(words) or name
    return text[0].upper() + text[1:]


class _WheelOnlyWhenFocused:
    """Mixin for value editors inside a scrolled form: the mouse wheel scrolls the form unless the
    editor was clicked or tabbed into (a value must never change while the user scrolls past it)."""

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        if self.hasFocus():  # type: ignore[attr-defined]
            super().wheelEvent(event)  # type: ignore[misc]
        else:
            event.ignore()  # the scroll area behind gets it


class SpinBox(_WheelOnlyWhenFocused, QSpinBox):
    """A QSpinBox the wheel changes only while it has focus."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel does not give it focus


class DoubleSpinBox(_WheelOnlyWhenFocused, QDoubleSpinBox):
    """A QDoubleSpinBox the wheel changes only while it has focus."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


class ComboBox(_WheelOnlyWhenFocused, QComboBox):
    """A QComboBox the wheel changes only while it has focus."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


def _is_tiny(value: object) -> bool:
    return isinstance(value, int | float) and value != 0 and abs(value) < TINY_FLOAT


def _decimals_needed(*values: object) -> int | None:
    """Decimals a spin box needs to show every value exactly; None when more than 6 would be needed."""
    needed = 1
    for value in values:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            continue
        for decimals in range(1, 7):
            if abs(round(value, decimals) - value) < 1e-12:
                needed = max(needed, decimals)
                break
        else:
            return None
    return max(needed, 2)


def _format_sequence(value: Iterable[object] | None) -> str:
    return ", ".join(str(v) for v in value) if value is not None else ""


def _parse_item(text: str) -> int | float | str:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def _parse_sequence(text: str, kind: type[tuple] | type[list]) -> tuple | list:
    items = [item.strip() for item in text.split(",") if item.strip()]
    return kind(_parse_item(item) for item in items)


@dataclass
class _Field:
    """One setting: its schema row, its editor, and how to read/write the editor as a Python value."""

    row: SchemaRow
    editor: QWidget
    get: Callable[[], object]
    set: Callable[[Any], None]  # takes what the setting's type allows (the schema's default, say)

    @property
    def name(self) -> str:
        return self.row["name"]

    @property
    def default(self) -> object:
        return self.row["default"]


def _same(value: object, default: object) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return len(value) == len(default) and all(_same(a, b) for a, b in zip(value, default, strict=True))
    if isinstance(value, float) and isinstance(default, int | float) and not isinstance(default, bool):
        return math.isclose(value, default, rel_tol=1e-9, abs_tol=1e-15)
    return value == default


class ConfigForm(QWidget):
    """Editors for every setting of ``spec.config_class``; basic ones first, advanced ones collapsed."""

    changed = Signal()

    def __init__(self, spec: ModelSpec, parent: QWidget | None = None, *, hidden: Iterable[str] = ()):
        """``hidden`` settings get no editor (the dialog around the form asks for them itself, as
        the training dialog does for the seed and the validation share) and keep their defaults."""
        super().__init__(parent)
        self.spec = spec
        self.hidden = set(hidden)
        self._fields: dict[str, _Field] = {}
        self.error_label = QLabel()
        self.error_label.setObjectName("configError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        basic = QFormLayout()
        layout.addLayout(basic)
        rows = [row for row in spec.schema() if row["name"] not in self.hidden]
        advanced_rows = [row for row in rows if row["advanced"]]
        for row in rows:
            if not row["advanced"]:
                self._add(basic, row)
        self.advanced: QCollapsible | None = None
        if advanced_rows:
            self.advanced = QCollapsible("Advanced settings", self)
            inner = QWidget()
            advanced_form = QFormLayout(inner)
            for row in advanced_rows:
                self._add(advanced_form, row)
            self.advanced.addWidget(inner)
            self.advanced.collapse(animate=False)
            layout.addWidget(self.advanced)
        layout.addWidget(self.error_label)
        layout.addStretch(1)

    # -- building editors ------------------------------------------------------------------------
    def _add(self, form: QFormLayout, row: SchemaRow) -> None:
        field = self._make_field(row)
        tooltip = row["help"]
        if row["minimum"] is not None or row["maximum"] is not None:
            low = "" if row["minimum"] is None else row["minimum"]
            high = "" if row["maximum"] is None else row["maximum"]
            tooltip += f"\nRange: {low} … {high}"
        tooltip += f"\nDefault: {self._display(row['default'])}\nSetting: {row['name']}"
        field.editor.setToolTip(tooltip)
        field.editor.setObjectName(f"setting_{row['name']}")
        label = QLabel(setting_label(row))
        label.setObjectName(f"label_{row['name']}")
        label.setToolTip(tooltip)
        form.addRow(label, field.editor)
        field.set(row["default"])
        self._fields[row["name"]] = field

    @staticmethod
    def _display(value: object) -> str:
        if isinstance(value, list | tuple):
            return _format_sequence(value)
        return "none" if value is None else str(value)

    def _make_field(self, row: SchemaRow) -> _Field:
        kind, default = row["type"], row["default"]
        if row["choices"]:
            return self._combo(row)
        if kind == "bool":
            return self._check(row)
        if kind == "int" and default is not None:
            return self._int_spin(row)
        if kind == "float" and default is not None and self._float_fits_spin(row):
            return self._float_spin(row)
        if kind in ("tuple", "list"):
            return self._sequence_edit(row, tuple if kind == "tuple" else list)
        return self._line_edit(row)

    def _combo(self, row: SchemaRow) -> _Field:
        combo = ComboBox()
        for choice in row["choices"]:
            combo.addItem(str(choice), choice)
        combo.currentIndexChanged.connect(self._on_edit)

        def set_value(value: object) -> None:
            index = combo.findData(value)
            combo.setCurrentIndex(index if index >= 0 else 0)

        return _Field(row, combo, combo.currentData, set_value)

    def _check(self, row: SchemaRow) -> _Field:
        box = QCheckBox()
        box.toggled.connect(self._on_edit)
        return _Field(row, box, box.isChecked, lambda value: box.setChecked(bool(value)))

    def _int_spin(self, row: SchemaRow) -> _Field:
        spin = SpinBox()
        low = row["minimum"] if row["minimum"] is not None else -INT_LIMIT
        high = row["maximum"] if row["maximum"] is not None else INT_LIMIT
        spin.setRange(int(math.ceil(low)), int(math.floor(min(high, INT_LIMIT))))
        spin.valueChanged.connect(self._on_edit)
        return _Field(row, spin, spin.value, lambda value: spin.setValue(int(value)))

    @staticmethod
    def _float_fits_spin(row: SchemaRow) -> bool:
        values = [row["default"], row["minimum"], row["maximum"]]
        return not any(_is_tiny(v) for v in values) and _decimals_needed(*values) is not None

    def _float_spin(self, row: SchemaRow) -> _Field:
        spin = DoubleSpinBox()
        decimals = max(SPIN_DECIMALS, _decimals_needed(row["default"], row["minimum"], row["maximum"]) or 0)
        spin.setDecimals(decimals)
        low = row["minimum"] if row["minimum"] is not None else -1e12
        high = row["maximum"] if row["maximum"] is not None else 1e12
        spin.setRange(float(low), float(high))
        span = (row["maximum"] - row["minimum"]) if None not in (row["minimum"], row["maximum"]) else None
        spin.setSingleStep(0.01 if span is not None and span <= 1.0 else 0.1)
        spin.valueChanged.connect(self._on_edit)
        return _Field(row, spin, spin.value, lambda value: spin.setValue(float(value)))

    def _sequence_edit(self, row: SchemaRow, kind: type[tuple] | type[list]) -> _Field:
        edit = QLineEdit()
        edit.setPlaceholderText("comma separated, e.g. 80, 80")
        edit.textChanged.connect(self._on_edit)
        return _Field(
            row, edit, lambda: _parse_sequence(edit.text(), kind), lambda v: edit.setText(_format_sequence(v))
        )

    def _line_edit(self, row: SchemaRow) -> _Field:
        """Free text, tiny floats and settings whose default is None (empty text means None)."""
        edit = QLineEdit()
        kind = row["type"]
        if kind == "float":
            validator = QDoubleValidator(edit)
            validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
            edit.setValidator(validator)
        if row["default"] is None:
            edit.setPlaceholderText("none (leave empty for the default)")

        def get() -> object:
            text = edit.text().strip()
            if not text:
                return None if row["default"] is None else ""
            if kind == "dict":
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    return text
            if kind in ("int", "float"):
                return _parse_item(text)  # a non-number stays text: build_config names the setting
            return text

        def set_value(value: object) -> None:
            if value is None:
                edit.setText("")
            elif kind == "dict":
                edit.setText(json.dumps(value))
            elif isinstance(value, float):
                edit.setText(repr(value))
            else:
                edit.setText(str(value))

        edit.textChanged.connect(self._on_edit)
        return _Field(row, edit, get, set_value)

    # -- reading and writing ----------------------------------------------------------------------
    def _on_edit(self, *_: object) -> None:
        self.error_label.hide()
        self.changed.emit()

    def is_advanced(self, name: str) -> bool:
        return bool(self._fields[name].row["advanced"])

    def field_names(self) -> list[str]:
        return list(self._fields)

    def editor(self, name: str) -> QWidget:
        return self._fields[name].editor

    def raw_values(self) -> dict[str, object]:
        """Every editor's current value, unchecked."""
        return {name: field.get() for name, field in self._fields.items()}

    def changed_values(self) -> dict[str, object]:
        """Editors whose value differs from the setting's default, unchecked."""
        return {
            name: value
            for name, value in self.raw_values().items()
            if not _same(value, self._fields[name].default)
        }

    def values(self) -> dict[str, object]:
        """The settings that differ from their defaults, checked by the plugin's config class.

        Raises :class:`ConfigError` (and shows its sentence under the form) when they are invalid.
        Values come back as the config holds them (``"80, 40"`` -> ``(80, 40)``).
        """
        changed = self.changed_values()
        try:
            config = build_config(self.spec.config_class, changed)
        except ConfigError as exc:
            self.show_error(str(exc))
            raise
        except (TypeError, ValueError) as exc:  # a config __post_init__ that chokes on text
            message = f"The settings are not valid for {self.spec.name}: {exc}."
            self.show_error(message)
            raise ConfigError(message) from exc
        self.error_label.hide()
        return {name: getattr(config, name) for name in changed}  # a field by name, not a probe

    def error(self) -> str | None:
        """The sentence shown under the form, or None when the values are valid."""
        try:
            self.values()
        except ConfigError as exc:
            return str(exc)
        return None

    def set_values(self, values: Mapping[str, object]) -> None:
        """Fill editors from a config dict (e.g. a registered version's); unknown keys are ignored."""
        for name, value in values.items():
            if name in self._fields:
                self._fields[name].set(value)

    def reset(self) -> None:
        for field in self._fields.values():
            field.set(field.default)

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()


__all__ = ["ComboBox", "ConfigForm", "DoubleSpinBox", "SpinBox", "setting_label"]
