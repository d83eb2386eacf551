"""Fixtures of the fault-injection tests: one tiny trained registry per session, copied per test."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from fault_helpers import TINY_TELEMANOM, small_fd001


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fault_data")
    return {"train": small_fd001(folder), "test": small_fd001(folder, units=6, name="test_FD001.txt")}


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory, fault_data) -> Path:
    """A registry with one tiny validated telemanom version (id 1) and its succeeded run."""
    from turbofan_desktop.cli import main

    home = tmp_path_factory.mktemp("fault_template") / "registry"
    code = main(
        ["train", str(fault_data["train"]), "--model", "telemanom", "--sensor", "s_2", *TINY_TELEMANOM]
        + ["--registry", str(home), "--json"]
    )
    assert code == 0
    # Everything in the database file itself: connections the training threads opened may still be
    # alive in this process, so their WAL would otherwise travel with every copy.
    with sqlite3.connect(home / "registry.db") as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    return home


@pytest.fixture
def trained_registry(trained_template, tmp_path) -> Path:
    """A private copy of the trained registry for one test to break."""
    copy = shutil.copytree(
        trained_template, tmp_path / "registry", ignore=shutil.ignore_patterns("*-wal", "*-shm")
    )
    return Path(copy)
