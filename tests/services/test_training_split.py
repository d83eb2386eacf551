"""The unit split a training request gets by default: a RUL model keeps calibration engines apart."""

from __future__ import annotations

import pytest
from services_helpers import require_plugin

from turbofan_desktop.data.split import split_units
from turbofan_desktop.errors import ConfigError
from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_desktop.services.training import TrainRequest, training_split

UNITS = list(range(1, 101))


def spec(name: str):
    require_plugin(name)
    return get_plugin_manager().model(name)


def test_a_rul_model_keeps_half_its_held_out_engines_apart_from_early_stopping():
    split = training_split(spec("transformer"), UNITS, TrainRequest(plugin="transformer", seed=5))
    before = split_units(UNITS, val_fraction=0.2, seed=5)  # the split versions were trained with before
    assert split.train == before.train  # fitted on exactly the same engines
    assert len(split.val) == len(split.test) == 10
    assert set(split.val) | set(split.test) == set(before.val)
    assert (split.val_fraction, split.test_fraction) == pytest.approx((0.1, 0.1))


def test_an_anomaly_model_validates_on_all_its_held_out_engines():
    split = training_split(spec("telemanom"), UNITS, TrainRequest(plugin="telemanom", seed=5))
    assert split == split_units(UNITS, val_fraction=0.2, seed=5) and not split.test


@pytest.mark.parametrize(("test_fraction", "sizes"), [(0.0, (80, 20, 0)), (0.2, (60, 20, 20))])
def test_a_test_fraction_given_is_used_as_given(test_fraction, sizes):
    request = TrainRequest(plugin="transformer", test_fraction=test_fraction)
    split = training_split(spec("transformer"), UNITS, request)
    assert (len(split.train), len(split.val), len(split.test)) == sizes


def test_too_few_held_out_engines_to_carve_keep_them_all_for_validation():
    split = training_split(spec("transformer"), [1, 2, 3, 4], TrainRequest(plugin="transformer"))
    assert (len(split.train), len(split.val), len(split.test)) == (3, 1, 0)


def test_a_bad_test_fraction_is_one_sentence():
    with pytest.raises(ConfigError, match="test_fraction"):
        training_split(spec("transformer"), UNITS, TrainRequest(plugin="transformer", test_fraction=1.5))
