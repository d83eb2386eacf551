"""Typed settings of the Transformer forecast + RUL model.

Defaults were chosen on held-out *training* units of FD001 (never on a test RUL file); the GUI and
``--set key=value`` read the ranges and help texts from the field metadata. The RUL-related defaults
(every window each epoch, squared error on the median, early stopping on validation RUL RMSE) lowered
the RMSE on validation units cut 5-150 cycles before failure from 16.4 to 15.0 (seed 0); see
benchmarks/rul_cmapss.py (``val_cut_rmse``). Feeding the sensors also relative to each unit's first 20
cycles (``baseline_cycles``) then lowered it from 15.0 to 10.4 (seed 0); 20 was the only value tried.
With those features the window went from 45 back to 30 cycles: over 12 paired member seeds on FD001 it
lowered that validation RMSE by 0.39 +- 0.16 (lower on 9 of 12) and over 9 on FD003 by 0.28 +- 0.29,
the largest gain of 13 variants (window 30/60, epochs 12/20, d_model 64, 3 layers, dropout 0.2,
rul_mse_weight 0.5/5, rul_cap 130, lr 5e-4, patience 10, stopping on the loss); see
benchmarks/transformer_sweep.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.contract import SEED_MAX, setting


@dataclass
class TransformerConfig:
    """Settings of one Transformer model (one model serves every selected sensor and the RUL)."""

    window: int = setting(
        30,
        "Cycles of history the encoder sees per prediction; shorter units are left-padded and masked.",
        minimum=2,
        maximum=512,
    )
    d_model: int = setting(32, "Width of the Transformer encoder.", minimum=4, maximum=1024)
    heads: int = setting(4, "Attention heads; must divide d_model.", minimum=1, maximum=64)
    layers: int = setting(2, "Encoder layers.", minimum=1, maximum=12)
    dropout: float = setting(
        0.1,
        "Dropout on the encoder's residual and feed-forward paths and in the heads.",
        minimum=0.0,
        maximum=0.9,
    )
    horizon: int = setting(20, "Forecast horizon in cycles (time steps).", minimum=1, maximum=500)
    quantiles: tuple = setting(
        (0.1, 0.5, 0.9),
        "Lower, median and upper quantile; lower and upper bound the prediction interval.",
        advanced=True,
    )
    epochs: int = setting(40, "Maximum training epochs.", minimum=1, maximum=1000)
    lr: float = setting(1e-3, "Adam learning rate.", minimum=1e-6, maximum=1.0)
    batch_size: int = setting(256, "Windows per training batch.", minimum=1, maximum=8192)
    seed: int = setting(
        0, "Random seed (unit split, window sampling, weights, dropout).", minimum=0, maximum=SEED_MAX
    )
    ensemble: int = setting(
        3,
        "Models trained with different seeds whose RUL and forecasts are averaged; member i uses seed + "
        "1000 x i (and, when no validation units are given, holds out its own). More members give a "
        "steadier RUL at the cost of training time (members train side by side, sharing the cores).",
        minimum=1,
        maximum=20,
    )
    patience: int = setting(
        6, "Early stopping: epochs without validation improvement before stopping.", minimum=1
    )
    rul_cap: float = setting(
        125.0, "Piecewise-linear RUL target: min(remaining cycles, rul_cap).", minimum=1.0, maximum=10000.0
    )
    sensors: list = setting([], "Sensors to use; empty = every informative (non-constant) sensor.")
    val_fraction: float = setting(
        0.2, "Share of training units held out for validation when none is given.", minimum=0.0, maximum=0.9
    )
    max_windows_per_unit: int = setting(
        0, "Cap on training windows per unit (evenly spaced); 0 = all.", minimum=0, advanced=True
    )
    windows_per_epoch: int = setting(
        0,
        "Training windows drawn at random (without replacement) each epoch; 0 = every window each epoch.",
        minimum=0,
        advanced=True,
    )
    stride: int = setting(1, "Step between training windows of a unit.", minimum=1, advanced=True)
    min_history: int = setting(
        5,
        "Shortest history (rows) a training window may have; shorter windows are left-padded.",
        minimum=1,
        advanced=True,
    )
    forecast_weight: float = setting(
        0.2, "Weight of the forecast loss against the RUL loss.", minimum=0.0, maximum=100.0, advanced=True
    )
    rul_mse_weight: float = setting(
        2.0,
        "Weight of a squared-error term on the median RUL (target scaled by rul_cap) added to the pinball "
        "loss; RMSE is what RUL is judged by, and the squared error punishes large misses harder.",
        minimum=0.0,
        maximum=100.0,
        advanced=True,
    )
    stop_on: str = setting(
        "rul_rmse",
        "What early stopping (and the restored best weights) watches on the validation units: the joint "
        "loss, or the RUL RMSE alone.",
        choices=("loss", "rul_rmse"),
        advanced=True,
    )
    use_age: bool = setting(
        True, "Feed the row's position in its unit (engine age) as an input.", advanced=True
    )
    baseline_cycles: int = setting(
        20,
        "Also feed each sensor relative to the mean of its unit's first N rows (0 = off): engines start "
        "with different wear, and the change since the start shows degradation that the absolute level "
        "hides. Units shorter than N use all their rows.",
        minimum=0,
        maximum=1000,
        advanced=True,
    )
    calibrate: bool = setting(
        True, "Conformal calibration of the intervals on the validation units.", advanced=True
    )
    calibrate_rul_within: float = setting(
        1.2,
        "Calibrate the RUL interval on the validation windows with at most this multiple of rul_cap "
        "cycles left (0 = every window): far from failure every target is the cap and easy to hit, and "
        "those windows would make the interval too narrow where the RUL matters.",
        minimum=0.0,
        maximum=100.0,
        advanced=True,
    )
    calibrate_rul_bands: int = setting(
        3,
        "Calibrate the RUL interval separately for predictions in this many equal bands of 0..rul_cap "
        "(1 = one offset for all): errors grow with the RUL, and one offset makes intervals too wide near "
        "failure and too narrow mid-life. A band with fewer than 50 validation windows uses the overall "
        "offset.",
        minimum=1,
        maximum=20,
        advanced=True,
    )
    uncapped_upper: bool = setting(
        True,
        "Calibrate the upper bound against the true, uncapped cycles left of the validation windows (else "
        "against the capped target), so intervals whose median is near rul_cap reach over it and cover "
        "engines with more life left than the cap.",
        advanced=True,
    )
    weight_decay: float = setting(1e-4, "AdamW weight decay.", minimum=0.0, maximum=1.0, advanced=True)
    eval_stride: int = setting(
        5, "Step between forecast origins when evaluating run-to-failure units.", minimum=1, advanced=True
    )

    def validate(self) -> None:
        """Cross-field rules that single-field ranges cannot express; raises ConfigError."""
        if self.d_model % self.heads:
            raise ConfigError(
                f"Setting 'heads' is {self.heads}, which does not divide d_model {self.d_model}; "
                "choose heads so that d_model / heads is a whole number."
            )
        quantiles = tuple(float(q) for q in self.quantiles)
        if len(quantiles) != 3 or not 0.0 < quantiles[0] < quantiles[1] < quantiles[2] < 1.0:
            raise ConfigError(
                f"Setting 'quantiles' is {self.quantiles!r}; expected three increasing numbers between "
                "0 and 1 (lower, median, upper), e.g. 0.1,0.5,0.9."
            )
        if abs(quantiles[1] - 0.5) > 1e-9:
            raise ConfigError(f"Setting 'quantiles' has middle value {quantiles[1]}; the middle must be 0.5.")
        self.quantiles = quantiles
        if self.min_history > self.window:
            raise ConfigError(
                f"Setting 'min_history' is {self.min_history}, longer than the window {self.window}; "
                "it must be at most the window length."
            )
        if not all(isinstance(s, str) and s for s in self.sensors):
            raise ConfigError(f"Setting 'sensors' is {self.sensors!r}; expected a list of sensor names.")
        self.sensors = list(self.sensors)

    @property
    def interval(self) -> float:
        """Nominal coverage of the lower-upper interval (0.8 for 10-90 %)."""
        return round(float(self.quantiles[2]) - float(self.quantiles[0]), 6)
