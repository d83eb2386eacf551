"""Crash safety: a writer SIGKILLed at random points never leaves damage that repair cannot fix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from turbofan_desktop.registry import Registry, artifact_sha256

HERE = Path(__file__).resolve().parent
KILLS = 20
REPAIRABLE = {"orphan_artifact", "incomplete_artifact", "stale_marker", "stuck_run", "stuck_version"}

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _run_and_kill(location: str, seed: int, delay: float) -> list[str]:
    writer = subprocess.Popen(
        [sys.executable, str(HERE / "registry_writer.py"), location, str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = writer.stdout.readline().strip()
        assert first == "ready", first + writer.stderr.read()
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        out, err = writer.communicate(timeout=30)  # also reaps it: a zombie would look alive
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL, err
    # Only whole lines count: the kill may land while the child writes its last one.
    return out.splitlines() if out.endswith("\n") else out.splitlines()[:-1]


def test_sigkilled_writers_leave_only_repairable_problems(registry_location, isolated_home):
    rng = random.Random(20240611)
    committed: dict[int, str] = {}
    uncertain: set[int] = set()
    for attempt in range(KILLS):
        for line in _run_and_kill(registry_location, seed=attempt, delay=rng.uniform(0.0, 0.3)):
            word, *rest = line.split()
            if word == "committed":
                committed[int(rest[0])] = rest[1]
            elif word in ("deleting", "deleted"):
                uncertain.add(int(rest[0]))
    assert committed, "no writer got as far as committing a version"

    with Registry.open(registry_location, cache_root=isolated_home / "cache") as registry:
        report = registry.check()
        kinds = {p["kind"] for p in report.problems}
        assert kinds <= REPAIRABLE, report.problems
        assert all(p["repairable"] for p in report.problems)
        assert "stuck_run" in kinds  # almost every kill lands inside a run

        repaired = registry.check(repair=True)
        assert repaired.ok and len(repaired.repaired) == len(report.problems)
        assert registry.check().problems == []
        assert registry.list_runs(status="running") == []

        # every version whose commit was reported is still there with an intact artifact
        for version_id, sha in committed.items():
            if version_id in uncertain:
                continue
            record = registry.get(version_id)
            assert record.artifact_sha256 == sha
            assert artifact_sha256(registry.artifact_dir(version_id)) == sha
        for record in registry.list_versions(limit=10_000):
            registry.artifact_dir(record.id)  # and so is every other row's
        production = [r for r in registry.list_versions(stage="production", limit=10_000)]
        assert len({(r.plugin, r.target) for r in production}) == len(production)

        quarantined = (
            list(registry.artifacts.quarantine.iterdir()) if registry.artifacts.quarantine.exists() else []
        )
        orphans = sum(p["kind"] in ("orphan_artifact", "incomplete_artifact") for p in report.problems)
        assert len(quarantined) == orphans
