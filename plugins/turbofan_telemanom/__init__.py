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
)


@hookimpl
def register_models():
    return [SPEC]


__all__ = ["SPEC", "TelemanomConfig", "register_models"]
