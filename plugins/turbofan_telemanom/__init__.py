"""Built-in Telemanom plugin: LSTM prediction errors + nonparametric dynamic thresholds.

Only the spec and its config live here, so listing models never imports torch; the model class in
:mod:`turbofan_telemanom.model` is imported when a model is built.
"""

from __future__ import annotations

from turbofan_desktop.plugins import hookimpl
from turbofan_desktop.plugins.contract import ModelSpec
from turbofan_telemanom.config import TelemanomConfig

__version__ = "1.0"

SPEC = ModelSpec(
    name="telemanom",
    tasks=("anomaly",),
    config_class=TelemanomConfig,
    factory="turbofan_telemanom.model:TelemanomModel",
    description="LSTM next-step predictor per sensor with nonparametric dynamic error thresholds "
    "(Hundman et al., KDD 2018).",
    version=__version__,
    per_target=True,
    takes_threads=True,
    presets={
        # seconds on one core: the self-test and the tests
        "tiny": {"epochs": 1, "l_s": 10, "lstm_units": "8", "batch_size": 64, "patience": 1},
        # enough to draw anomalies in a --demo-train screenshot
        "demo": {"l_s": 20, "n_predictions": 1, "lstm_units": (16, 16), "epochs": 3, "batch_size": 128},
    },
)


@hookimpl
def register_models():
    return [SPEC]


__all__ = ["SPEC", "TelemanomConfig", "register_models"]
