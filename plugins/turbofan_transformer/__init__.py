"""Built-in Transformer plugin: multi-horizon sensor forecasts and remaining useful life.

Registered through the ``turbofan_desktop.plugins`` entry point like any third-party plugin. This
module stays light: torch is imported only by :mod:`turbofan_transformer.model`, when a model is built.
"""

from __future__ import annotations

from turbofan_desktop.plugins import hookimpl
from turbofan_desktop.plugins.contract import ModelSpec
from turbofan_transformer.config import TransformerConfig

__all__ = ["TransformerConfig", "register_models"]


@hookimpl
def register_models():
    """One model type that serves both the forecast and the RUL task for all its sensors."""
    return [
        ModelSpec(
            name="transformer",
            tasks=("forecast", "rul"),
            config_class=TransformerConfig,
            factory="turbofan_transformer.ensemble:TransformerEnsemble",
            description=(
                "Transformer encoder over sensor windows: quantile forecasts of every sensor and "
                "remaining useful life with an 80 % interval."
            ),
            version="1",
            per_target=False,
            takes_threads=True,
            presets={
                # seconds on one core: the self-test and the tests; two members side by side in threads
                # so that the frozen app's threads get exercised too
                "tiny": {
                    "epochs": 1,
                    "window": 10,
                    "d_model": 8,
                    "heads": 2,
                    "layers": 1,
                    "batch_size": 64,
                    "max_windows_per_unit": 20,
                    "min_history": 5,
                    "ensemble": 2,
                },
                # enough to draw a forecast in a --demo-train screenshot
                "demo": {
                    "window": 20,
                    "d_model": 16,
                    "heads": 2,
                    "layers": 1,
                    "horizon": 15,
                    "epochs": 3,
                    "max_windows_per_unit": 40,
                },
            },
        )
    ]
