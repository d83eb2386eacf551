"""Class 9 of issue 20: a kill between a version's commit and its run's completion.

``registry check --repair`` must make the run agree with its committed version ("succeeded"), not
mark it failed; a run killed before any commit is still marked failed.
"""

from __future__ import annotations

import os
import signal

import pytest
from fault_helpers import TINY_TELEMANOM, cli, run_main, table

pytestmark = pytest.mark.skipif(os.name == "nt", reason="needs SIGKILL")

# Trains through the real CLI, then SIGKILLs itself where the run would be finished as ``when``.
KILLED_TRAINING = """
import os, signal, sys
from turbofan_desktop.registry import store
when = sys.argv[1]
original = store.Registry.finish_run
def finish_run(self, run_id, *, status, **kwargs):
    if status == when:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, run_id, status=status, **kwargs)
store.Registry.finish_run = finish_run
original_start = store.Registry.start_run
def start_run(self, **kwargs):
    run_id = original_start(self, **kwargs)
    if when == "started":
        os.kill(os.getpid(), signal.SIGKILL)
    return run_id
store.Registry.start_run = start_run
from turbofan_desktop.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _killed_training(home, data, when: str) -> None:
    code, out, err = cli(
        "-c",
        KILLED_TRAINING,
        when,
        "train",
        str(data),
        "--model",
        "telemanom",
        "--sensor",
        "s_2",
        *TINY_TELEMANOM,
        "--registry",
        str(home),
        module=False,
    )
    assert code == -signal.SIGKILL, out + err


def test_repair_marks_a_run_with_a_committed_version_succeeded(capsys, tmp_path, fault_data):
    home = tmp_path / "registry"
    _killed_training(home, fault_data["train"], "succeeded")
    db = home / "registry.db"
    assert table(db, "SELECT status FROM training_runs") == [("running",)]
    assert table(db, "SELECT id, status, run_id FROM model_versions") == [(1, "trained", 1)]

    code, out, err = run_main(capsys, "registry", "check", "--registry", str(home))
    assert code == 1 and "Traceback" not in err, out + err
    assert "model version v1 (id 1) was committed, so it succeeded" in out

    code, out, err = run_main(capsys, "registry", "check", "--repair", "--registry", str(home))
    assert code == 0 and "marked succeeded" in out, out + err
    assert table(db, "SELECT status FROM training_runs") == [("succeeded",)]
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(home))
    assert code == 0 and "The registry is consistent." in out, out + err
    code, out, err = run_main(capsys, "models", "show", "1", "--registry", str(home))
    assert code == 0 and "trained" in out, out + err


def test_repair_marks_a_run_without_a_version_failed(capsys, tmp_path, fault_data):
    home = tmp_path / "registry"
    _killed_training(home, fault_data["train"], "started")
    code, out, err = run_main(capsys, "registry", "check", "--repair", "--registry", str(home))
    assert code == 0 and "marked failed" in out, out + err
    assert table(home / "registry.db", "SELECT status FROM training_runs") == [("failed",)]
    assert table(home / "registry.db", "SELECT COUNT(*) FROM model_versions") == [(0,)]
