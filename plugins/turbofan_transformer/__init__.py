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
        )
    ]
