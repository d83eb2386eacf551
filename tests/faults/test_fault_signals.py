"""Class 8 of issue 20: SIGTERM and SIGHUP during CLI training cancel like Ctrl-C.

The run must end "cancelled" (not left "running" by a dead process), nothing half-registered may
remain, and the exit code is the one Ctrl-C gives (130).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fault_helpers import REPO, TINY_TELEMANOM, run_main, table

SIGNALS = [name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def _wait_for_running_run(db, process, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if db.exists():
            try:
                if table(db, "SELECT id FROM training_runs WHERE status = 'running'"):
                    return
            except Exception:  # noqa: BLE001 - the schema may still be being created
                pass
        time.sleep(0.05)
    raise AssertionError("training never started")


@pytest.mark.parametrize("name", SIGNALS)
def test_signal_cancels_training(name, capsys, tmp_path, fault_data):
    home = tmp_path / "registry"
    long_training = [*TINY_TELEMANOM, "--set", "epochs=1000", "--set", "patience=1000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "turbofan_desktop", "train", str(fault_data["train"]), "--model", "telemanom"]
        + ["--sensor", "s_2", *long_training, "--registry", str(home), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        _wait_for_running_run(home / "registry.db", process)
        time.sleep(0.3)  # inside fit
        process.send_signal(getattr(signal, name))
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "training was cancelled" in err
    assert table(home / "registry.db", "SELECT status, message FROM training_runs") == [
        ("cancelled", "cancelled by the user")
    ]
    assert table(home / "registry.db", "SELECT COUNT(*) FROM model_versions") == [(0,)]
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(home))
    assert code == 0 and "The registry is consistent." in out, out + err
