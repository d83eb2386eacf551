"""ConfigForm (generated from the real plugin config schemas) and the TrainDialog's TrainRequest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox  # noqa: E402

from turbofan_desktop.errors import ConfigError  # noqa: E402
from turbofan_desktop.plugins.contract import ModelSpec, setting  # noqa: E402
from turbofan_desktop.ui.config_form import ConfigForm  # noqa: E402


@pytest.fixture(scope="module")
def specs():
    from turbofan_desktop.plugins.manager import get_plugin_manager

    models = get_plugin_manager().models()
    if "telemanom" not in models or "transformer" not in models:
        pytest.skip(f"built-in plugins not registered (have {sorted(models)})")
    return models


def test_editors_follow_the_schema_types(qtbot, specs):
    form = ConfigForm(specs["telemanom"])
    qtbot.addWidget(form)
    assert isinstance(form.editor("epochs"), QSpinBox)
    assert form.editor("epochs").maximum() == 1000 and form.editor("epochs").minimum() == 1
    assert isinstance(form.editor("dropout"), QDoubleSpinBox)
    assert isinstance(form.editor("min_delta"), QLineEdit)  # 3e-4: a spin box would round it away
    assert isinstance(form.editor("auto_scale"), QCheckBox)
    assert isinstance(form.editor("features"), QComboBox)
    assert isinstance(form.editor("lstm_units"), QLineEdit)
    assert form.editor("lstm_units").text() == "80, 80"
    assert "Maximum training epochs." in form.editor("epochs").toolTip()
    # advanced settings live in the collapsed section
    assert form.advanced is not None and not form.advanced.isExpanded()
    assert form.advanced.isAncestorOf(form.editor("lstm_units"))
    assert not form.advanced.isAncestorOf(form.editor("epochs"))


def test_defaults_give_no_values_and_changes_round_trip(qtbot, specs):
    form = ConfigForm(specs["telemanom"])
    qtbot.addWidget(form)
    assert form.values() == {}
    wanted = {
        "epochs": 2,
        "lstm_units": (16, 8),
        "min_delta": 1e-5,
        "dropout": 0.25,
        "features": "target",
        "auto_scale": False,
    }
    form.set_values(wanted)
    assert form.values() == wanted
    # a second form filled from the first one's values reads the same (config dialog <-> registry)
    again = ConfigForm(specs["telemanom"])
    qtbot.addWidget(again)
    again.set_values(form.values())
    assert again.values() == wanted
    form.reset()
    assert form.values() == {}


def test_typed_text_is_converted_and_bad_values_are_rejected_inline(qtbot, specs):
    form = ConfigForm(specs["telemanom"])
    qtbot.addWidget(form)
    form.editor("lstm_units").setText("32, 16")
    form.editor("min_delta").setText("2e-4")
    assert form.values() == {"lstm_units": (32, 16), "min_delta": 2e-4}
    form.editor("min_delta").setText("-1")  # the validator lets a sign through; the range does not
    with pytest.raises(ConfigError, match="min_delta"):
        form.values()
    assert form.error_label.isVisibleTo(form) and "min_delta" in form.error_label.text()
    form.editor("min_delta").setText("3e-4")
    form.editor("lstm_units").setText("8, 8, 8, 8, 8, 8, 8")  # cross-field rule in the config's validate()
    assert "at most 6" in form.error()
    form.editor("lstm_units").setText("8")
    assert form.error() is None and not form.error_label.isVisibleTo(form)


def test_transformer_schema_round_trip(qtbot, specs):
    form = ConfigForm(specs["transformer"])
    qtbot.addWidget(form)
    assert form.values() == {}
    form.set_values({"epochs": 1, "d_model": 16, "heads": 2, "sensors": ["s_2", "s_3"], "lr": 0.005})
    assert form.values() == {"epochs": 1, "d_model": 16, "heads": 2, "sensors": ["s_2", "s_3"], "lr": 0.005}


@dataclass(frozen=True)
class _Handmade:
    rate: float = setting(3e-4, "tiny", minimum=0.0)
    mode: str = setting("a", "choice", choices=("a", "b"))
    name: str = setting("x", "free text", advanced=True)
    limit: int | None = setting(None, "optional")


def test_a_hand_made_config_with_optional_and_text_fields(qtbot):
    spec = ModelSpec("handmade", ("anomaly",), _Handmade, "nowhere:Nothing")
    form = ConfigForm(spec)
    qtbot.addWidget(form)
    assert form.values() == {}
    form.editor("limit").setText("7")
    form.editor("mode").setCurrentIndex(1)
    form.editor("name").setText("y")
    assert form.values() == {"limit": 7, "mode": "b", "name": "y"}
    form.editor("limit").setText("seven")
    with pytest.raises(ConfigError, match="limit"):
        form.values()


# -- the dialog -----------------------------------------------------------------------------------
@pytest.fixture
def workspace():
    from turbofan_desktop.services import Workspace

    ws = Workspace.open()
    yield ws
    ws.close()


@pytest.fixture
def dataset(workspace, sample_dir):
    from turbofan_desktop.services.data import load_dataset

    return load_dataset(workspace, sample_dir / "train_FD001.txt")


def test_train_selected_builds_the_request(qtbot, workspace, dataset, specs):
    pytest.importorskip("turbofan_desktop.services.training")
    from turbofan_desktop.ui.train_dialog import TrainDialog

    dialog = TrainDialog(workspace, dataset, ["s_2", "s_1"], all_sensors=False)
    qtbot.addWidget(dialog)
    dialog.set_plugin("telemanom")
    assert dialog.checked_targets() == ["s_2"]  # s_1 is constant in FD001: not offered
    assert "s_1" in dialog.targets_note.text()
    dialog.form.set_values({"epochs": 2, "lstm_units": (8,)})
    dialog.seed.setValue(7)
    dialog.val_fraction.setValue(0.25)
    request = dialog.request()
    assert request.plugin == "telemanom"
    assert request.targets == ["s_2"]
    assert request.dataset is dataset and request.data_path == dataset.source
    assert request.config == {"epochs": 2, "lstm_units": (8,)}
    assert request.seed == 7 and request.val_fraction == 0.25
    assert dialog.job_title() == "Train telemanom: s_2"


def test_train_all_preselects_every_informative_sensor(qtbot, workspace, dataset, specs):
    pytest.importorskip("turbofan_desktop.services.training")
    from turbofan_desktop.ui.train_dialog import TrainDialog

    dialog = TrainDialog(workspace, dataset, [], all_sensors=True)
    qtbot.addWidget(dialog)
    dialog.set_plugin("telemanom")
    assert dialog.checked_targets() == dataset.informative_sensors
    dialog._check_all(False)
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    with pytest.raises(ConfigError):
        dialog.request()
    dialog.set_targets(["s_3", "s_4"])
    assert dialog.request().targets == ["s_3", "s_4"]


def test_a_model_for_all_sensors_trains_target_star(qtbot, workspace, dataset, specs):
    pytest.importorskip("turbofan_desktop.services.training")
    from turbofan_desktop.ui.train_dialog import TrainDialog

    dialog = TrainDialog(workspace, dataset, ["s_2"])
    qtbot.addWidget(dialog)
    dialog.set_plugin("transformer")
    assert dialog.checked_targets() == ["*"]
    request = dialog.request()
    assert request.plugin == "transformer" and request.targets == ["*"]


def test_invalid_settings_keep_the_dialog_open(qtbot, workspace, dataset, specs):
    from turbofan_desktop.ui.train_dialog import TrainDialog

    dialog = TrainDialog(workspace, dataset, ["s_2"])
    qtbot.addWidget(dialog)
    dialog.set_plugin("telemanom")
    dialog.form.editor("min_delta").setText("-5")
    dialog.accept()
    assert dialog.result() == 0  # not accepted
    assert "min_delta" in dialog.form.error_label.text()
    dialog.form.editor("min_delta").setText("0.001")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
