"""Lineage hashes, unit-wise splits and per-unit feature engineering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cmapss_factory import SAMPLE_DIR, cmapss_lines

from turbofan_desktop.data import Dataset, add_features, read_dataset, split_units
from turbofan_desktop.data.split import UnitSplit, carve_test_units
from turbofan_desktop.errors import ConfigError, InsufficientDataError


@pytest.fixture(scope="module")
def fd001():
    return read_dataset(SAMPLE_DIR / "train_FD001.txt")


# -- lineage ----------------------------------------------------------------------------------------
def _reformat(line: str) -> str:
    """Same numbers, other text: tabs, padding, trailing zeros, no trailing spaces."""
    tokens = line.split()
    return "\t".join(t if "." not in t else t + "00" for t in tokens[:3]) + "   " + "  ".join(tokens[3:])


def test_same_values_reformatted_give_the_same_hash(write_text):
    lines = cmapss_lines(3, 6)
    original = read_dataset(write_text("a.txt", lines))
    reformatted = read_dataset(write_text("b.txt", ["", *map(_reformat, lines), ""], newline="\r\n"))
    assert original.file_sha256 != reformatted.file_sha256
    assert original.data_hash == reformatted.data_hash
    assert original.lineage.data_hash == reformatted.lineage.data_hash


def test_one_changed_value_changes_the_hash(write_text):
    lines = cmapss_lines(3, 6)
    changed = list(lines)
    tokens = changed[7].split()
    tokens[12] = f"{float(tokens[12]) + 0.01:.4f}"
    changed[7] = " ".join(tokens)
    assert (
        read_dataset(write_text("a.txt", lines)).data_hash
        != read_dataset(write_text("b.txt", changed)).data_hash
    )


def test_lineage_describes_the_data(fd001):
    lineage = fd001.lineage
    record = lineage.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert (lineage.units, lineage.rows) == (100, 20631)
    assert (lineage.time_kind, lineage.time_start, lineage.time_end) == ("cycle", 1, 362)
    assert lineage.format == "cmapss" and lineage.source.endswith("train_FD001.txt")
    assert lineage.file_sha256 == fd001.file_sha256 and len(lineage.data_hash) == 64
    assert lineage.preprocessing == ()


# -- splits -----------------------------------------------------------------------------------------
def test_split_is_disjoint_complete_and_seeded(fd001):
    split = split_units(fd001, val_fraction=0.2, test_fraction=0.1, seed=7)
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(fd001.units)
    assert (len(train), len(val), len(test)) == (70, 20, 10)
    assert split == split_units(fd001, val_fraction=0.2, test_fraction=0.1, seed=7)
    assert split.val != split_units(fd001, val_fraction=0.2, test_fraction=0.1, seed=8).val
    assert UnitSplit.from_dict(json.loads(json.dumps(split.to_dict()))) == split


def test_applied_split_shares_no_rows_and_records_itself(fd001):
    split = split_units(fd001, val_fraction=0.25, seed=1)
    train, val, test = split.apply(fd001)
    assert set(train.units).isdisjoint(val.units)
    assert train.n_rows + val.n_rows == fd001.n_rows and test.n_rows == 0
    assert train.preprocessing[-1]["note"].startswith("train split")
    assert train.data_hash != fd001.data_hash


@pytest.mark.parametrize(
    ("units", "val", "test", "sizes"),
    [([1], 0.2, 0.0, (1, 0, 0)), ([1, 2], 0.2, 0.0, (1, 1, 0)), ([1, 2, 3], 0.2, 0.2, (1, 1, 1))],
)
def test_split_with_one_to_three_units(units, val, test, sizes):
    split = split_units(units, val_fraction=val, test_fraction=test, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == sizes


def test_carving_calibration_units_out_of_validation_keeps_the_training_units(fd001):
    split = split_units(fd001, val_fraction=0.2, seed=3)
    carved = carve_test_units(split, share=0.5)
    assert carved.train == split.train  # the model fits on exactly the same engines
    assert len(carved.val) == len(carved.test) == 10
    assert set(carved.val) | set(carved.test) == set(split.val) and not set(carved.val) & set(carved.test)
    assert (carved.val_fraction, carved.test_fraction) == pytest.approx((0.1, 0.1))
    assert carved == carve_test_units(split, share=0.5)  # seeded
    assert carved.test != carve_test_units(split_units(fd001, val_fraction=0.2, seed=4), share=0.5).test
    assert UnitSplit.from_dict(json.loads(json.dumps(carved.to_dict()))) == carved


@pytest.mark.parametrize(("units", "sizes"), [([1, 2], (1, 1, 0)), (list(range(1, 11)), (8, 1, 1))])
def test_carving_needs_two_validation_units_to_leave_one_for_early_stopping(units, sizes):
    carved = carve_test_units(split_units(units, val_fraction=0.2, seed=0), share=0.5)
    assert (len(carved.train), len(carved.val), len(carved.test)) == sizes


def test_carving_refuses_a_split_that_already_has_test_units_or_a_bad_share(fd001):
    with pytest.raises(ConfigError):
        carve_test_units(split_units(fd001, val_fraction=0.2, test_fraction=0.1, seed=0), share=0.5)
    with pytest.raises(ConfigError):
        carve_test_units(split_units(fd001, val_fraction=0.2, seed=0), share=1.0)


def test_split_rejects_bad_fractions_and_no_units():
    with pytest.raises(ConfigError):
        split_units([1, 2], val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError):
        split_units([1, 2], val_fraction=-0.1)
    with pytest.raises(InsufficientDataError):
        split_units([])


# -- features ---------------------------------------------------------------------------------------
def _two_units() -> Dataset:
    frame = pd.DataFrame(
        {"unit": [1, 1, 1, 2, 2], "cycle": [1, 2, 3, 1, 2], "x": [1.0, 2.0, 4.0, 100.0, 110.0]}
    )
    return Dataset(frame=frame, time_col="cycle", sensors=["x"], settings=[], format="test")


def test_features_stay_inside_each_unit():
    ds = _two_units()
    out = add_features(ds, rolling=(2,), lags=(1,), diffs=True)
    frame = out.frame
    assert frame["x_mean2"].tolist() == [1.0, 1.5, 3.0, 100.0, 105.0]
    assert frame["x_std2"].tolist() == [0.0, 0.5, 1.0, 0.0, 5.0]
    assert frame["x_lag1"].tolist() == [1.0, 1.0, 2.0, 100.0, 100.0]  # unit 2 never sees unit 1
    assert frame["x_diff"].tolist() == [0.0, 1.0, 2.0, 0.0, 10.0]
    assert not frame.isna().to_numpy().any()
    assert out.sensors == ["x", "x_mean2", "x_std2", "x_lag1", "x_diff"]
    step = out.lineage.preprocessing[-1]
    assert step["step"] == "features" and step["rolling"] == [2] and step["diffs"] is True
    assert out.data_hash != ds.data_hash and ds.sensors == ["x"]


def test_features_on_real_data_skip_constant_sensors(fd001):
    out = add_features(fd001.subset([1, 2]), rolling=(5,))
    assert "s_2_mean5" in out.sensors and "s_1_mean5" not in out.sensors
    assert np.isfinite(out.frame[out.sensors].to_numpy()).all()


def test_features_reject_bad_windows():
    with pytest.raises(ConfigError):
        add_features(_two_units(), rolling=(0,))
    with pytest.raises(ConfigError):
        add_features(_two_units(), lags=(1.5,))
