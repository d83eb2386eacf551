"""The allocator fix for worker processes started with a fixed MALLOC_TRIM_THRESHOLD_ (Dask's nanny)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from turbofan_desktop.services.executors.malloc import needs_roomy_thresholds

# Allocates and writes a 2 MiB array 200 times and prints the minor page faults it took; with
# "fix" it first calls roomy_thresholds (and prints what that returned).
ALLOCATE = """
import json, resource, sys
import numpy as np
fixed = None
if sys.argv[1] == "fix":
    from turbofan_desktop.services.executors.malloc import roomy_thresholds
    fixed = roomy_thresholds()
np.ones(1 << 18).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    np.ones(1 << 18).sum()
print(json.dumps({"fixed": fixed, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def test_only_a_fixed_threshold_without_a_chosen_mmap_threshold_needs_the_fix():
    assert needs_roomy_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}, "linux")
    assert needs_roomy_thresholds({"MALLOC_TOP_PAD_": "0"}, "linux")
    assert not needs_roomy_thresholds({}, "linux")
    assert not needs_roomy_thresholds(
        {"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "1"}, "linux"
    )
    assert not needs_roomy_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}, "darwin")


def _faults(mode: str) -> dict:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    done = subprocess.run(
        [sys.executable, "-c", ALLOCATE, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_worker_with_dasks_trim_threshold_stops_faulting_in_every_large_array_again():
    plain, fixed = _faults("plain"), _faults("fix")
    assert fixed["fixed"] is True
    # 200 arrays of 512 pages: each one mapped afresh without the fix, the freed memory reused with it
    assert plain["faults"] > 200 * 400, plain
    assert fixed["faults"] < plain["faults"] / 10, (plain, fixed)
