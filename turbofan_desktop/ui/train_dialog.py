"""The training dialog: plugin, targets, seed, validation share and the plugin's own settings.

"Train selected sensor…" and "Train all sensors…" are this one dialog with a different pre-selection.
It only builds a :class:`~turbofan_desktop.services.training.TrainRequest`; the caller hands it to
``services.training.train`` through the :class:`~turbofan_desktop.ui.jobs.JobManager`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from turbofan_desktop.errors import ConfigError, TurbofanError
from turbofan_desktop.plugins.contract import ALL_TARGETS, ModelSpec
from turbofan_desktop.ui.config_form import ComboBox, ConfigForm, DoubleSpinBox, SpinBox
from turbofan_desktop.ui.settings import UiSettings

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.session import Dataset
    from turbofan_desktop.services.training import TrainRequest


#: plugin settings the dialog asks for itself (one field each): the run's seed feeds a plugin's
#: ``seed``, and the validation share splits the units before the plugin sees them
RUN_SETTINGS = ("seed", "val_fraction")
WARNING_STYLE = "color: #8a5a00; background: #fdf0cd; padding: 4px;"
ERROR_STYLE = "color: #b00020; font-weight: bold;"


def is_test_file(dataset: Dataset) -> bool:
    """A C-MAPSS test file: paired with its true-RUL file, or named ``test_…`` (its units stop
    before failure, so a model trained on it learns from cut-off histories)."""
    name = dataset.source.name if dataset.source else dataset.name
    return dataset.rul is not None or str(name or "").lower().startswith("test")


def _trainable_targets(workspace: Workspace, spec: ModelSpec, dataset: Dataset) -> list[str]:
    """The service's list (informative sensors, or ``["*"]``); the dataset's own list if it refuses."""
    try:
        from turbofan_desktop.services.training import trainable_targets

        return list(trainable_targets(workspace, spec.name, dataset))
    except (ImportError, TurbofanError):
        if not spec.per_target:
            return [ALL_TARGETS]
        return list(dataset.informative_sensors)


class TrainDialog(QDialog):
    """Pick what to train; :meth:`request` returns the :class:`TrainRequest` once accepted."""

    def __init__(
        self,
        workspace: Workspace,
        dataset: Dataset,
        selected_sensors: Iterable[str] = (),
        parent: QWidget | None = None,
        all_sensors: bool = False,
        *,
        ui_settings: UiSettings | None = None,
    ):
        """``ui_settings`` remembers the choices between sessions (None: nothing is remembered)."""
        super().__init__(parent)
        self.ui_settings = ui_settings
        self._remembered: dict[str, Any] = ui_settings.train_choices() if ui_settings is not None else {}
        self.workspace = workspace
        self.dataset = dataset
        self.selected_sensors = list(selected_sensors)
        self.all_sensors = all_sensors
        self.setWindowTitle("Train all sensors" if all_sensors else "Train selected sensors")
        self.specs: dict[str, ModelSpec] = dict(workspace.plugins.models())
        self.form: ConfigForm | None = None

        self.plugin_combo = ComboBox()
        for name, spec in sorted(self.specs.items()):
            self.plugin_combo.addItem(f"{name} ({', '.join(spec.tasks)})", name)
        self.description = QLabel()
        self.description.setWordWrap(True)

        self.targets = QListWidget()
        self.targets.setObjectName("targets")
        self.targets.itemChanged.connect(self._update_ok)
        self.targets_note = QLabel()
        self.targets_note.setWordWrap(True)
        select_all = QPushButton("All")
        select_all.clicked.connect(lambda: self._check_all(True))
        select_none = QPushButton("None")
        select_none.clicked.connect(lambda: self._check_all(False))

        self.seed = SpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed of the run: the unit split, and the model's own seed.")
        self.val_fraction = DoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setValue(0.2)
        self.val_fraction.setToolTip(
            "Share of the units (engines) held out for validation; split by unit. A model that predicts "
            "RUL keeps half of them apart from early stopping as calibration engines (the fleet view "
            "calibrates its tail on them); it fits on the same units either way."
        )

        self.config_area = QScrollArea()
        self.config_area.setWidgetResizable(True)
        self.config_area.setMinimumHeight(220)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Train")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = QLabel()  # why Train did nothing: beside the button, never scrolled away
        self.problem.setObjectName("trainProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.hide()
        self.test_warning = QLabel()
        self.test_warning.setObjectName("testFileWarning")
        self.test_warning.setWordWrap(True)
        self.test_warning.setStyleSheet(WARNING_STYLE)
        self.test_warning.setVisible(is_test_file(dataset))
        if is_test_file(dataset):
            name = dataset.source.name if dataset.source else dataset.name
            self.test_warning.setText(
                f"{name} is a test file: its engines stop before failure, so a model trained on it "
                "learns from cut-off histories and its validation says little. Train on the matching "
                "train_ file, and use this one to validate."
            )

        top = QFormLayout()
        top.addRow("Model", self.plugin_combo)
        top.addRow("", self.description)
        target_box = QGroupBox("Targets")
        target_layout = QVBoxLayout(target_box)
        target_layout.addWidget(self.targets)
        target_layout.addWidget(self.targets_note)
        row = QHBoxLayout()
        row.addWidget(select_all)
        row.addWidget(select_none)
        row.addStretch(1)
        target_layout.addLayout(row)
        run = QFormLayout()
        run.addRow("Seed", self.seed)
        run.addRow("Validation share", self.val_fraction)
        settings_box = QGroupBox("Model settings")
        settings_layout = QVBoxLayout(settings_box)
        settings_layout.addWidget(self.config_area)

        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(target_box, 1)
        left.addLayout(run)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addWidget(settings_box, 2)
        layout = QVBoxLayout(self)
        source = dataset.name or str(dataset.source or "")
        if source:
            layout.addWidget(QLabel(f"Data: {source}"))
        layout.addWidget(self.test_warning)
        layout.addLayout(columns)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.resize(820, 560)

        self._restore_choices()
        self.plugin_combo.currentIndexChanged.connect(self._plugin_changed)
        self._plugin_changed()

    def _restore_choices(self) -> None:
        remembered = self._remembered
        index = self.plugin_combo.findData(remembered.get("plugin"))
        if index >= 0:
            self.plugin_combo.setCurrentIndex(index)
        with contextlib.suppress(TypeError, ValueError):
            self.seed.setValue(int(remembered.get("seed", self.seed.value())))
            self.val_fraction.setValue(float(remembered.get("val_fraction", self.val_fraction.value())))

    def _save_choices(self) -> None:
        if self.ui_settings is None or self.form is None:
            return
        configs = dict(self._remembered.get("config") or {})
        configs[self.spec.name] = self.form.changed_values()
        self._remembered = {
            "plugin": self.spec.name,
            "seed": self.seed.value(),
            "val_fraction": round(self.val_fraction.value(), 2),
            "config": configs,
        }
        self.ui_settings.save_train_choices(self._remembered)

    # -- plugin and targets ---------------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        return self.specs[self.plugin_combo.currentData()]

    def set_plugin(self, name: str) -> None:
        index = self.plugin_combo.findData(name)
        if index < 0:
            raise KeyError(name)
        self.plugin_combo.setCurrentIndex(index)

    def _plugin_changed(self, *_: object) -> None:
        if self.plugin_combo.count() == 0:
            self.description.setText("No model plugin is installed.")
            self._update_ok()
            return
        spec = self.spec
        self.description.setText(spec.description)
        self.form = ConfigForm(spec, hidden=RUN_SETTINGS)
        remembered = dict(self._remembered.get("config") or {}).get(spec.name)
        if isinstance(remembered, dict):
            self.form.set_values(remembered)
        self.form.changed.connect(self._update_ok)
        self.form.changed.connect(self.problem.hide)
        self.config_area.setWidget(self.form)
        self._fill_targets(spec)
        self._update_ok()

    def _fill_targets(self, spec: ModelSpec) -> None:
        self.targets.blockSignals(True)
        self.targets.clear()
        targets = _trainable_targets(self.workspace, spec, self.dataset)
        if not spec.per_target or targets == [ALL_TARGETS]:
            item = QListWidgetItem("* (one model for all sensors)")
            item.setData(Qt.ItemDataRole.UserRole, ALL_TARGETS)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked)
            self.targets.addItem(item)
            self.targets_note.setText(f"{spec.name} trains one model on every informative sensor.")
        else:
            chosen = set(targets) if self.all_sensors else set(self.selected_sensors)
            for sensor in targets:
                item = QListWidgetItem(sensor)
                item.setData(Qt.ItemDataRole.UserRole, sensor)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if sensor in chosen else Qt.CheckState.Unchecked)
                self.targets.addItem(item)
            skipped = [s for s in self.selected_sensors if s not in targets]
            note = f"{len(targets)} informative sensors; one model per checked sensor."
            if skipped:
                note += f" Not trainable (constant): {', '.join(skipped)}."
            self.targets_note.setText(note)
        self.targets.blockSignals(False)

    def _check_all(self, checked: bool) -> None:
        state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
        for index in range(self.targets.count()):
            item = self.targets.item(index)
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                item.setCheckState(state)

    def set_targets(self, targets: Iterable[str]) -> None:
        wanted = set(targets)
        for index in range(self.targets.count()):
            item = self.targets.item(index)
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                checked = item.data(Qt.ItemDataRole.UserRole) in wanted
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def checked_targets(self) -> list[str]:
        return [
            self.targets.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.targets.count())
            if self.targets.item(i).checkState() == Qt.CheckState.Checked
        ]

    def _update_ok(self, *_: object) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self.plugin_combo.count() > 0 and bool(self.checked_targets()))

    # -- result -------------------------------------------------------------------------------
    def accept(self) -> None:
        """Stay open while the settings are invalid: the reason shows beside the Train button and
        the setting it names is scrolled into view."""
        if self.form is None:
            return
        if not self.checked_targets():
            self.show_problem("Choose at least one sensor to train.")
            return
        try:
            self.form.values()
        except ConfigError as exc:
            self.show_problem(str(exc))
            return
        self.problem.hide()
        self._save_choices()
        super().accept()

    def show_problem(self, message: str) -> None:
        """Say why Train did nothing, and bring the setting the sentence names into view."""
        self.problem.setText(message)
        self.problem.show()
        if self.form is None:
            return
        self.form.error_label.hide()  # said once, where it cannot be scrolled away
        names = self.form.field_names()
        named = [n for n in names if f"'{n}'" in message] or [n for n in names if f" {n} " in f" {message} "]
        if not named:
            return
        if self.form.is_advanced(named[0]) and self.form.advanced is not None:
            self.form.advanced.expand(animate=False)
        editor = self.form.editor(named[0])
        self.config_area.ensureWidgetVisible(editor)
        editor.setFocus()

    def request(self) -> TrainRequest:
        """The :class:`TrainRequest` for the current choices; raises ConfigError for invalid settings."""
        from turbofan_desktop.services.training import TrainRequest

        if self.form is None:
            raise ConfigError("No model plugin is installed, so there is nothing to train.")
        config = self.form.values()
        targets = self.checked_targets()
        if not targets:
            raise ConfigError("Choose at least one sensor to train.")
        return TrainRequest(
            plugin=self.spec.name,
            data_path=self.dataset.source,
            dataset=self.dataset,
            rul_path=self.dataset.rul_source,
            targets=targets,
            config=config,
            seed=self.seed.value(),
            val_fraction=round(self.val_fraction.value(), 2),
        )

    def job_title(self) -> str:
        """A short title for the jobs panel, e.g. ``telemanom: sensor_2, sensor_3``."""
        targets = self.checked_targets()
        shown = ", ".join(targets[:3]) + (f" +{len(targets) - 3}" if len(targets) > 3 else "")
        return f"Train {self.spec.name}: {shown}"


__all__ = ["TrainDialog"]
