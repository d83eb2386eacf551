"""The plugin manager: hooks documented and exercised, third-party plugins, failures contained."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from turbofan_desktop.cli import main
from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import PluginError
from turbofan_desktop.plugins import hookimpl, hookspecs
from turbofan_desktop.plugins.contract import (
    DetectionResult,
    ModelSpec,
    ReaderSpec,
    ReportSection,
    build_config,
)
from turbofan_desktop.plugins.manager import DEFAULT_PLUGINS, get_plugin_manager

HOOK_NAMES = sorted(
    name
    for name, value in vars(hookspecs).items()
    if callable(value) and hasattr(value, "turbofan_desktop_spec")
)

# A third-party model plugin written the way an outside author would: a config dataclass, a spec whose
# factory is a "module:attr" string, and a numpy model that predicts the training mean.
MEAN_PLUGIN = """
from dataclasses import dataclass
import json
from pathlib import Path

import numpy as np

from turbofan_desktop.plugins import hookimpl
from turbofan_desktop.plugins.contract import (
    AnomalyRange, DetectionResult, FitResult, ModelSpec, ProgressEvent, UnitDetection, setting,
)

__version__ = "0.3.1"


@dataclass(frozen=True)
class MeanConfig:
    z: float = setting(3.0, "Flag values further than z standard deviations from the mean.", minimum=0.0)


class MeanModel:
    def __init__(self, config, target):
        self.config, self.target = config, target
        self.mean = self.std = None

    def fit(self, train, val, *, progress=lambda e: None, should_stop=lambda: False):
        values = train.frame[self.target].to_numpy(float)
        self.mean, self.std = float(values.mean()), float(values.std() or 1.0)
        progress(ProgressEvent("fit", 1.0, epoch=1, epochs=1, train_loss=0.0))
        return FitResult(history=[{"epoch": 1, "train_loss": 0.0}], epochs_run=1, best_epoch=1)

    def evaluate(self, data, **_):
        values = data.frame[self.target].to_numpy(float)
        return {"prediction_mse": float(np.mean((values - self.mean) ** 2))}

    def detect(self, data, *, units=None, **_):
        found = {}
        for unit, frame in data.iter_units():
            values = frame[self.target].to_numpy(float)
            errors = np.abs(values - self.mean) / self.std
            flagged = np.flatnonzero(errors > self.config.z)
            ranges = [AnomalyRange(frame[data.time_col].iloc[i], frame[data.time_col].iloc[i], float(errors[i]), i, i)
                      for i in flagged]
            found[unit] = UnitDetection(unit, frame[data.time_col].to_numpy(), values,
                                        np.full_like(values, self.mean), errors, errors,
                                        np.full_like(values, self.config.z), ranges)
        return DetectionResult(self.target, found)

    def save(self, directory):
        Path(directory, "mean.json").write_text(json.dumps({"mean": self.mean, "std": self.std}))

    @classmethod
    def load(cls, directory, *, config, target):
        model = cls(config, target)
        stats = json.loads(Path(directory, "mean.json").read_text())
        model.mean, model.std = stats["mean"], stats["std"]
        return model


@hookimpl
def register_models():
    return [ModelSpec(name="mean_predictor", tasks=("anomaly",), config_class=MeanConfig,
                      factory="mean_plugin:MeanModel", description="Training mean as the prediction.")]
"""


@pytest.fixture
def fresh_manager():
    """Rebuild the cached registry before and after a test so plugins never leak between tests."""
    yield lambda **kw: get_plugin_manager(refresh=True, **kw)
    get_plugin_manager(refresh=True)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path where a test writes plugin modules (and dist-info metadata)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m in {"mean_plugin", "broken_plugin", "typo_plugin"}]:
        del sys.modules[name]


def _write(folder: Path, name: str, source: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def _install_entry_point(folder: Path, dist: str, version: str, entry: str, module: str) -> None:
    """Fake a pip-installed distribution: a dist-info folder whose entry point names the module."""
    info = folder / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[turbofan_desktop.plugins]\n{entry} = {module}\n")


def _tiny_dataset(seed: int = 0, spike: bool = False) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for unit in (1, 2):
        values = rng.normal(0.0, 1.0, 60)
        if spike:
            values[40] = 25.0
        for cycle, value in enumerate(values, start=1):
            rows.append({"unit": unit, "cycle": cycle, "s2": value})
    return Dataset(frame=pd.DataFrame(rows), time_col="cycle", sensors=["s2"], settings=[], format="test")


# -- hooks: documented and tested ------------------------------------------------------------------
def test_every_hookspec_is_documented():
    assert HOOK_NAMES == ["register_models", "register_readers", "register_report_sections"]
    for name in HOOK_NAMES:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 40, f"hookspec {name} needs a docstring for plugin authors"


def test_every_hookspec_has_a_test():
    missing = [name for name in HOOK_NAMES if f"test_hook_{name}" not in globals()]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_hook_register_models(fresh_manager):
    registry = fresh_manager()
    models = registry.models()
    assert models["telemanom"].plugin == "telemanom"
    assert models["telemanom"].tasks == ("anomaly",)
    assert registry.model("telemanom").factory == "turbofan_telemanom.model:TelemanomModel"
    with pytest.raises(PluginError, match="known models: .*telemanom"):
        registry.model("no-such-model")


def test_hook_register_readers(fresh_manager):
    class CsvSemicolon:
        @hookimpl
        def register_readers(self):
            return [
                ReaderSpec("low", (".x",), lambda p, h: True, lambda p: None, priority=1),
                ReaderSpec("semicolon", (".ssv",), lambda p, h: b";" in h, lambda p: None, priority=5),
            ]

    registry = fresh_manager()
    registry.register(CsvSemicolon(), name="ssv")
    assert [r.name for r in registry.readers()][:2] == ["semicolon", "low"]  # by descending priority


def test_hook_register_report_sections(fresh_manager):
    class Extra:
        @hookimpl
        def register_report_sections(self):
            return [ReportSection("Extra", lambda version: f"<p>{version['plugin']}</p>")]

    registry = fresh_manager()
    registry.register(Extra(), name="extra")
    (section,) = [s for s in registry.report_sections() if s.title == "Extra"]
    assert section.render({"plugin": "telemanom"}) == "<p>telemanom</p>"


# -- built-ins and third parties -------------------------------------------------------------------
def test_builtins_load_through_the_entry_point_path(fresh_manager):
    rows = {row["name"]: row for row in fresh_manager().plugins()}
    for module in DEFAULT_PLUGINS:
        name = module.removeprefix("turbofan_")
        assert rows[name]["module"] == module
        assert rows[name]["source"] == "builtin"
    assert rows["telemanom"]["error"] is None
    assert rows["telemanom"]["tasks"] == ["anomaly"]
    assert rows["telemanom"]["version"]  # the distribution's version
    assert len(rows) == len({row["module"] for row in rows.values()})  # each module once


def test_third_party_entry_point_plugin_is_listed_and_trains(plugin_dir, fresh_manager, capsys, tmp_path):
    _write(plugin_dir, "mean_plugin", MEAN_PLUGIN)
    _install_entry_point(plugin_dir, "mean-plugin", "0.3.1", "mean", "mean_plugin")
    registry = fresh_manager()

    assert main(["plugins", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["mean"]["version"] == "0.3.1"
    assert listed["mean"]["source"] == "entry point"
    assert listed["mean"]["error"] is None
    (model_row,) = listed["mean"]["models"]
    assert model_row["name"] == "mean_predictor" and model_row["tasks"] == ["anomaly"]
    assert model_row["config"][0]["name"] == "z" and model_row["config"][0]["default"] == 3.0

    spec = registry.model("mean_predictor")
    assert spec.plugin == "mean"
    model = spec.build(build_config(spec.config_class, {"z": "4"}), "s2")
    result = model.fit(_tiny_dataset(), None)
    assert result.epochs_run == 1
    detection = model.detect(_tiny_dataset(spike=True))
    assert isinstance(detection, DetectionResult)
    assert [r.start for r in detection.units[1].anomalies] == [41]  # cycle of the planted spike
    model.save(tmp_path)
    again = type(model).load(tmp_path, config=model.config, target="s2")
    assert again.mean == pytest.approx(model.mean)


def test_plugin_that_raises_on_import_is_listed_and_app_lives(plugin_dir, fresh_manager, capsys):
    _write(plugin_dir, "broken_plugin", "raise RuntimeError('the vendor library is missing')\n")
    registry = fresh_manager(extra_plugins=("broken_plugin",))
    rows = {row["name"]: row for row in registry.plugins()}
    assert "the vendor library is missing" in rows["broken_plugin"]["error"]
    assert rows["broken_plugin"]["models"] == []
    assert "telemanom" in registry.models()  # the others still work

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "broken_plugin" in out and "FAILED" in out and "telemanom" in out


def test_hook_that_raises_is_recorded(fresh_manager):
    class Faulty:
        @hookimpl
        def register_models(self):
            raise ValueError("bad spec table")

    class WrongType:
        @hookimpl
        def register_models(self):
            return ["not a spec"]

    registry = fresh_manager()
    registry.register(Faulty(), name="faulty")
    registry.register(WrongType(), name="wrong")
    rows = {row["name"]: row for row in registry.plugins()}
    assert "bad spec table" in rows["faulty"]["error"]
    assert "instead of ModelSpec" in rows["wrong"]["error"]
    assert "telemanom" in registry.models()


def test_misspelled_hookimpl_is_caught(plugin_dir, fresh_manager):
    _write(
        plugin_dir,
        "typo_plugin",
        """
        from turbofan_desktop.plugins import hookimpl

        @hookimpl
        def register_model():  # missing the final s
            return []
        """,
    )
    registry = fresh_manager(extra_plugins=("typo_plugin",))
    rows = {row["name"]: row for row in registry.plugins()}
    assert "register_model" in rows["typo_plugin"]["error"]
    assert registry.pm.get_plugin("typo_plugin") is None  # unregistered, the others kept
    registry.pm.check_pending()  # nothing pending any more
    assert "telemanom" in registry.models()


def test_duplicate_model_name_is_refused(fresh_manager):
    class Copycat:
        @hookimpl
        def register_models(self):
            spec = ModelSpec("telemanom", ("anomaly",), object, "x:y")
            return [spec]

    registry = fresh_manager()
    registry.register(Copycat(), name="copycat")
    assert registry.models()["telemanom"].plugin == "telemanom"
    row = next(r for r in registry.plugins() if r["name"] == "copycat")
    assert "already provided" in row["error"]


def test_manager_is_cached_until_refreshed(fresh_manager):
    first = fresh_manager()
    assert get_plugin_manager() is first
    assert get_plugin_manager(refresh=True) is not first


def test_listing_models_does_not_import_torch():
    code = (
        "import sys\n"
        "from turbofan_desktop.plugins.manager import get_plugin_manager\n"
        "r = get_plugin_manager()\n"
        "assert 'telemanom' in r.models(), r.plugins()\n"
        "[spec.schema() for spec in r.models().values()]\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_built_in_models_declare_their_presets_and_the_task_protocols():
    """Presets live in each plugin's spec (the self-test's "tiny", the screenshot's "demo") and build
    valid configs; a preset name the app does not know is refused when the spec is made."""
    from turbofan_desktop.plugins.contract import PRESETS, TASK_PROTOCOLS, ModelSpec, build_config

    for name in ("telemanom", "transformer"):
        spec = get_plugin_manager().model(name)
        for preset in PRESETS:
            assert spec.preset(preset), (name, preset)
            build_config(spec.config_class, spec.preset(preset))
        model_class = spec.load_factory()
        for task in spec.tasks:
            method = next(iter(m for m in vars(TASK_PROTOCOLS[task]) if not m.startswith("_")))
            assert callable(getattr(model_class, method, None)), (name, task, method)
    with pytest.raises(PluginError, match="unknown preset"):
        ModelSpec("x", ("anomaly",), dict, "x:y", presets={"huge": {}})
