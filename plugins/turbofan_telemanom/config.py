"""Telemanom settings: every default of the authors' run, configurable, plus the turbofan scaling rule.

This module is imported by the plugin manager, so it must stay light (no torch).

Defaults are the values Hundman et al. ran on SMAP/MSL telemetry (see ``shared/telemanom_spec.md``).
C-MAPSS units live only 128-362 cycles, so ``l_s = 250`` cannot fit; on run-to-failure cycle data the
settings still at their paper default are replaced by :func:`turbofan_defaults` (``auto_scale``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import SEED_MAX, setting

FEATURE_CHOICES = ("all", "target", "target_settings")
SCALING_CHOICES = ("auto", "none", "standard")
VALIDATION_PICKS = ("random", "newest")
THRESHOLD_CHOICES = ("nonparametric", "pot")


@dataclass(frozen=True)
class TelemanomConfig:
    """LSTM predictor + nonparametric dynamic threshold (Hundman et al., KDD 2018)."""

    # -- the predictor ----------------------------------------------------------------------------
    l_s: int = setting(250, "Input window length in time steps.", minimum=2, maximum=5000)
    n_predictions: int = setting(
        10, "Steps predicted ahead; only the 1-step prediction is scored.", minimum=1, maximum=100
    )
    lstm_units: tuple[int, ...] = setting(
        (80, 80), "Units of each stacked LSTM layer (comma separated).", advanced=True
    )
    dropout: float = setting(0.3, "Dropout after each LSTM layer.", minimum=0.0, maximum=0.9, advanced=True)
    lr: float = setting(1e-3, "Adam learning rate.", minimum=1e-6, maximum=1.0, advanced=True)
    batch_size: int = setting(64, "Training batch size (windows, shuffled).", minimum=1, maximum=4096)
    epochs: int = setting(35, "Maximum training epochs.", minimum=1, maximum=1000)
    patience: int = setting(
        10, "Early stopping: epochs without an improvement of min_delta before stopping.", minimum=1
    )
    min_delta: float = setting(
        3e-4, "Early stopping: smallest drop of validation loss that counts as improvement.", minimum=0.0
    )
    validation_split: float = setting(
        0.2,
        "Share of the training windows held out for early stopping (when no validation data is given).",
        minimum=0.0,
        maximum=0.9,
    )
    validation_pick: str = setting(
        "random",
        "Which windows validation_split holds out: 'random' (the authors shuffle the windows before "
        "Keras takes the last share) or 'newest' (the end of each unit's series).",
        choices=VALIDATION_PICKS,
        advanced=True,
    )
    features: str = setting(
        "all",
        "Model inputs: 'all' informative sensors + settings (the paper: every feature), 'target' only, "
        "or 'target_settings'.",
        choices=FEATURE_CHOICES,
    )
    scaling: str = setting(
        "auto",
        "Input scaling: 'standard' (z-score on the training rows), 'none', or 'auto' = none when every "
        "training value lies within +-10 (already normalised, like the NASA telemetry), else standard.",
        choices=SCALING_CHOICES,
        advanced=True,
    )
    seed: int = setting(
        0, "Random seed (torch and numpy) for reproducible training.", minimum=0, maximum=SEED_MAX
    )

    # -- errors and the dynamic threshold ---------------------------------------------------------
    predict_batch_size: int = setting(
        70, "Errors per threshold step: windows advance by this many values.", minimum=1, advanced=True
    )
    window_size: int = setting(
        30, "Threshold window length in prediction batches (30 x 70 = 2100 errors).", minimum=1, advanced=True
    )
    smoothing_perc: float = setting(
        0.05,
        "EWMA span as a share of the threshold window: span = predict_batch_size*window_size*smoothing_perc.",
        minimum=0.0,
        maximum=1.0,
        advanced=True,
    )
    error_buffer: int = setting(
        100, "Points added either side of each flagged error.", minimum=0, advanced=True
    )
    p: float = setting(
        0.13, "Pruning: minimum relative drop between sequence maxima.", minimum=0.0, maximum=1.0
    )
    z_min: float = setting(2.5, "Smallest threshold candidate, in standard deviations.", minimum=0.0)
    z_max: float = setting(
        12.0, "Largest candidate and the fallback threshold (mu + z_max sigma).", minimum=0.0
    )
    z_step: float = setting(0.5, "Step between threshold candidates.", minimum=0.01, advanced=True)
    ignore_first: int = setting(
        -1,
        "Errors at the start of a series that are never flagged (need history); -1 = the authors' rule: "
        "2*l_s for series of 2500+ errors, l_s for 1800+, else 0.",
        minimum=-1,
        advanced=True,
    )
    threshold_method: str = setting(
        "nonparametric",
        "Threshold method: 'nonparametric' (Hundman et al. 2018) or 'pot' (SPOT, Siffer et al. 2017: a "
        "generalized Pareto tail of the smoothed errors, risk 1e-3; ranges carry probabilities).",
        choices=THRESHOLD_CHOICES,
        advanced=True,
    )
    exclude_labelled: bool = setting(
        False,
        "Use the user's anomaly labels (for this target, on the same data file, from any version) in "
        "the nonparametric threshold: errors in ranges labelled true or missed anomaly are left out of "
        "each window's mean, spread and threshold search, so a known large anomaly does not hide smaller "
        "ones; ranges labelled false alarm are never flagged again. No effect on the 'pot' threshold.",
        advanced=True,
    )

    # -- run-to-failure (turbofan) data -----------------------------------------------------------
    healthy_fraction: float = setting(
        0.5,
        "On run-to-failure data, the share of each training unit's life (from its start) used for "
        "training: the predictor learns healthy behaviour.",
        minimum=0.05,
        maximum=1.0,
    )
    auto_scale: bool = setting(
        True,
        "On cycle-indexed run-to-failure data, replace settings still at their paper default by values "
        "scaled to the unit lengths (l_s = shortest unit/4 within 10-50, windows of 100 errors).",
    )

    def __post_init__(self) -> None:
        units = tuple(int(round(float(u))) for u in self.lstm_units)
        object.__setattr__(self, "lstm_units", units)

    @property
    def smoothing_window(self) -> int:
        """EWMA span: int(batch * window * perc), 105 with the paper's values; at least 1."""
        return max(1, int(self.predict_batch_size * self.window_size * self.smoothing_perc))

    def z_candidates(self) -> list[float]:
        """z_min, z_min + z_step, ... up to and including z_max."""
        values, z = [], self.z_min
        while z <= self.z_max + 1e-9:
            values.append(round(z, 10))
            z += self.z_step
        return values

    def validate(self) -> None:
        """Cross-field rules (single-field ranges are checked by build_config)."""
        if not self.lstm_units or any(u < 1 for u in self.lstm_units):
            raise ConfigError("Setting 'lstm_units' needs at least one layer, each with at least 1 unit.")
        if len(self.lstm_units) > 6:
            raise ConfigError("Setting 'lstm_units' allows at most 6 stacked layers.")
        if self.z_min > self.z_max:
            raise ConfigError(f"Setting 'z_min' ({self.z_min}) must not exceed 'z_max' ({self.z_max}).")
        if self.n_predictions > self.l_s * 4:
            raise ConfigError(
                f"Setting 'n_predictions' ({self.n_predictions}) is far longer than the input window "
                f"'l_s' ({self.l_s}); use at most 4 * l_s."
            )


def paper_defaults() -> dict[str, Any]:
    return {
        f.name: f.default for f in dataclasses.fields(TelemanomConfig) if f.default is not dataclasses.MISSING
    }


def turbofan_defaults(shortest_unit: int) -> dict[str, Any]:
    """Settings scaled to C-MAPSS-like units (128-362 cycles).

    Rule: ``l_s`` = a quarter of the shortest training unit, clipped to 10-50 (32 on FD001);
    threshold windows of 10 x 10 = 100 errors advancing 10 (about one unit's scored life), so the
    EWMA span is int(100 * 0.05) = 5 and the error buffer 5 (the paper's 100/2100, rounded).
    """
    return {
        "l_s": int(min(50, max(10, shortest_unit // 4))),
        "predict_batch_size": 10,
        "window_size": 10,
        "error_buffer": 5,
    }


def scaled_for(config: TelemanomConfig, shortest_unit: int) -> TelemanomConfig:
    """``config`` with every setting still at its paper default replaced by the turbofan value."""
    defaults = paper_defaults()
    changes = {
        name: value
        for name, value in turbofan_defaults(shortest_unit).items()
        if getattr(config, name) == defaults[name]
    }
    return dataclasses.replace(config, **changes) if changes else config
