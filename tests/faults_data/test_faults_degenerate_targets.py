"""Issue 20, class 6: a training target that is missing on every row, or that holds one value on every
training row once missing values are filled, is refused before anything is trained or recorded (it
used to register a "validated" version with an error of exactly zero). Both built-in plugins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_faults_helpers import assert_refused, run_cli

from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.validation import require_learnable
from turbofan_desktop.errors import InsufficientDataError


@pytest.fixture
def table(tmp_path):
    """Six units of 40 cycles: s_1 varies; s_dead is always empty; s_flat is 5.0; s_gappy is 2.5
    with gaps (still one value once filled); s_late is empty except in the last unit."""
    rng = np.random.default_rng(0)
    units, cycles = np.repeat(np.arange(1, 7), 40), np.tile(np.arange(1, 41), 6)
    gappy = np.where(rng.random(240) < 0.3, np.nan, 2.5)
    late = np.where(units == 6, rng.normal(size=240), np.nan)
    frame = pd.DataFrame(
        {
            "unit": units,
            "cycle": cycles,
            "s_1": rng.normal(size=240) + cycles / 20,
            "s_dead": np.nan,
            "s_flat": 5.0,
            "s_gappy": gappy,
            "s_late": late,
        }
    )
    path = tmp_path / "degenerate.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def registry(isolated_home, capsys):
    code, _, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    return isolated_home


CASES = [
    ("telemanom", ["--sensor", "s_dead"], "s_dead", "missing on every row"),
    ("telemanom", ["--sensor", "s_flat"], "s_flat", "is 5 on every training row"),
    ("telemanom", ["--sensor", "s_gappy"], "s_gappy", "is 2.5 on every training row"),
    ("telemanom", ["--sensor", "s_1", "s_flat"], "s_flat", "nothing to learn"),
    ("transformer", ["--sensor", "s_dead"], "s_dead", "missing on every row"),
    ("transformer", ["--sensor", "s_1", "s_gappy"], "s_gappy", "nothing to learn"),
    ("transformer", ["--set", "sensors=s_flat"], "s_flat", "nothing to learn"),
]


@pytest.mark.parametrize(("plugin", "args", "sensor", "problem"), CASES)
def test_degenerate_target_is_refused_before_training(capsys, registry, table, plugin, args, sensor, problem):
    argv = ["train", str(table), "--model", plugin, *args, "--set", "epochs=1"]
    sentence = assert_refused(capsys, registry, argv, str(table), f"sensor {sensor}", problem)
    assert "np.float64" not in sentence


def test_missing_in_every_training_unit_names_the_training_units(table):
    dataset = read_dataset(table)
    train = dataset.subset([1, 2, 3, 4, 5], note="training units without unit 6")
    with pytest.raises(InsufficientDataError, match="missing on every row of the training units"):
        require_learnable(dataset, train, "s_late")


def test_a_varying_sensor_passes(table):
    dataset = read_dataset(table)
    require_learnable(dataset, dataset, "s_1")
    assert "s_dead" not in dataset.informative_sensors and "s_flat" not in dataset.informative_sensors
