"""``turbofan-desktop --self-test``: the headless end-to-end check of an installation."""

from __future__ import annotations

import io

from services_helpers import require_plugin

from turbofan_desktop.cli import main
from turbofan_desktop.services.data import bundled_sample_dir
from turbofan_desktop.services.selftest import run_self_test


def test_bundled_sample_is_found():
    assert (bundled_sample_dir() / "train_FD001.txt").is_file()


def test_self_test_trains_validates_and_reports_with_each_builtin_plugin(isolated_home):
    require_plugin("telemanom")
    require_plugin("transformer")
    out = io.StringIO()
    assert run_self_test(out) == 0
    text = out.getvalue()
    assert "telemanom: trained" in text and "transformer: trained" in text and "self-test passed" in text
    # it worked in a throw-away registry: the user's TURBOFAN_HOME holds no registry afterwards
    assert not (isolated_home / "registry.db").exists()


def test_self_test_from_the_command_line(capsys):
    require_plugin("telemanom")
    require_plugin("transformer")
    assert main(["--self-test"]) == 0
    assert "self-test passed" in capsys.readouterr().out
