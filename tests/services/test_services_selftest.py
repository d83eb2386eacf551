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


def test_services_and_job_commands_import_without_torch_or_qt():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import turbofan_desktop.services, turbofan_desktop.services.training, turbofan_desktop.services.validation\n"
        "import turbofan_desktop.services.inference, turbofan_desktop.services.reports\n"
        "import turbofan_desktop.services.models, turbofan_desktop.services.selftest\n"
        "from turbofan_desktop.cli import build_parser\n"
        "build_parser()\n"
        "from turbofan_desktop.services import Workspace\n"
        "Workspace.open(sys.argv[1]).plugins.models()\n"
        "heavy = sorted(m for m in ('torch', 'PySide6', 'pyqtgraph') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        result = subprocess.run(
            [sys.executable, "-c", code, home], capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr


def test_workspace_model_cache_is_bounded_and_least_recently_used_goes_first(tmp_path):
    from turbofan_desktop.services import Workspace

    with Workspace.open(tmp_path / "reg") as ws:
        size = ws.MODEL_CACHE_SIZE
        for version_id in range(size):
            ws.cache_model(version_id, ("spec", f"model {version_id}", "sha"))
        assert ws.cached_model(0) is not None  # 0 is now the most recently used
        ws.cache_model(size, ("spec", "newest", "sha"))
        assert ws.cached_model(1) is None and ws.cached_model(0) is not None
        ws.forget_model(0)
        assert ws.cached_model(0) is None
