"""glibc's allocator thresholds in a worker process that trains torch models.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the system quickly. Any
``MALLOC_*`` threshold set that way also switches off glibc's *dynamic* mmap threshold: every
allocation of 128 KiB or more is then a fresh ``mmap`` and its ``free`` a ``munmap``, so each tensor
of a training step is page-faulted in again. Measured on one Telemanom model (FD001 sensor s_2,
2 epochs, 1 torch thread) in a Dask worker with Dask's defaults: 1.18 million minor page faults,
2.2 s of system time and 7.7 CPU seconds, against 0.07 million, 0.3 s and 5.6 s once this module
has run (docs/cluster.md, "Worker settings"; ``benchmarks/batch_scaling.py`` prints the CPU
seconds per model of a whole batch).

:func:`roomy_thresholds` sets the thresholds to the ceiling glibc's dynamic ones can grow to
(mmap threshold 32 MiB on 64-bit, trim threshold twice that), so a training loop reuses the memory
of its freed tensors. It acts only where a threshold was fixed by the environment
and the mmap threshold itself was not chosen, and only with glibc (``mallopt``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's ceiling for the dynamic mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX), and the trim
# threshold it pairs with it (twice the mmap threshold)
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
# environment variables that fix a glibc threshold and so turn the dynamic mmap threshold off
FIXING_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

_done = [False]


def needs_roomy_thresholds(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether this process's allocator runs with a fixed threshold (Dask's nanny sets one) while
    nobody chose the mmap threshold: the case :func:`roomy_thresholds` corrects."""
    if not platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in environ:
        return False
    return any(name in environ for name in FIXING_VARIABLES)


def roomy_thresholds(environ: Mapping[str, str] = os.environ) -> bool:
    """Set glibc's mmap and trim thresholds to 32 and 64 MiB where :func:`needs_roomy_thresholds`;
    returns whether they are set (once per process; without glibc nothing changes)."""
    if _done[0]:
        return True
    if not needs_roomy_thresholds(environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    done = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and done
    if done:
        log.info(
            "allocator thresholds raised for training (mmap %d, trim %d bytes)",
            MMAP_THRESHOLD_BYTES,
            TRIM_THRESHOLD_BYTES,
        )
    _done[0] = done
    return done


__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "needs_roomy_thresholds", "roomy_thresholds"]
