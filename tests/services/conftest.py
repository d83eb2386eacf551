"""Fixtures for the service tests: small FD001 files cut from the bundled sample.

Training is cheap once torch is warm (well under a second per tiny model), so the modules train what
they need; the files are written once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from services_helpers import SAMPLE_DIR, TEST_UNITS, TRAIN_UNITS, first_lines


@pytest.fixture(scope="session")
def fd001_small(tmp_path_factory) -> dict[str, Path]:
    """``train`` (10 units of train_FD001), ``test`` (6 units of test_FD001) with its paired ``rul``."""
    folder = tmp_path_factory.mktemp("fd001_small")
    train = folder / "train_small.txt"
    train.write_text(first_lines(SAMPLE_DIR / "train_FD001.txt", TRAIN_UNITS))
    test = folder / "test_FD001.txt"
    test.write_text(first_lines(SAMPLE_DIR / "test_FD001.txt", TEST_UNITS))
    rul = folder / "RUL_FD001.txt"
    rul.write_text("\n".join((SAMPLE_DIR / "RUL_FD001.txt").read_text().split()[:TEST_UNITS]) + "\n")
    return {"train": train, "test": test, "rul": rul}
