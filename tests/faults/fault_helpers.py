"""Shared pieces of the fault-injection tests (issue 20): a tiny trained registry, the CLI in a
subprocess, and the checks every fault must pass (exit code, one sentence, no traceback)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from turbofan_desktop.plugins.manager import get_plugin_manager

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "resources" / "sample"
# the plugin's own "tiny" preset, as the other tests train
TINY_TELEMANOM = [
    arg
    for key, value in get_plugin_manager().model("telemanom").preset("tiny").items()
    for arg in ("--set", f"{key}={value}")
]


def small_fd001(folder: Path, units: int = 10, name: str = "train_FD001.txt") -> Path:
    """The first ``units`` engines of a bundled FD001 file."""
    kept = [
        line
        for line in (SAMPLE_DIR / name).read_text().splitlines()
        if line.split() and int(line.split()[0]) <= units
    ]
    path = folder / f"small_{name}"
    path.write_text("\n".join(kept) + "\n")
    return path


def cli(
    *argv: str,
    env: dict | None = None,
    timeout: float = 180,
    prefix: list[str] | None = None,
    module: bool = True,
):
    """``turbofan-desktop ARGV`` in a fresh interpreter (``python ARGV`` with ``module=False``), run
    behind ``prefix`` (say ``setpriv ...``): (exit code, stdout, stderr)."""
    launcher = [sys.executable, "-m", "turbofan_desktop"] if module else [sys.executable]
    done = subprocess.run(
        [*(prefix or []), *launcher, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=str(REPO),
    )
    return done.returncode, done.stdout, done.stderr


def assert_one_sentence(stderr: str, *, naming: str) -> str:
    """stderr holds no traceback and one ``error:`` sentence that names ``naming``; returns it."""
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert naming in errors[0], errors[0]
    return errors[0]


def table(db: Path, sql: str) -> list[tuple]:
    """Rows of a query on a registry database, read without the application."""
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def copy_registry(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    """``turbofan-desktop ARGV`` in this process (cheaper than a subprocess): (exit code, out, err)."""
    from turbofan_desktop.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage_page(db: Path, page: int, *, seed: int = 20, start: int = 0, length: int | None = None) -> None:
    """Overwrite page ``page`` (1-based) of a SQLite file with seeded random bytes.

    The WAL is merged into the file first: a newer copy of the page in the WAL would hide the damage,
    and a later checkpoint would overwrite it (the file must be damaged exactly as the test says)."""
    import random

    with sqlite3.connect(db) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, f"{db} is in use; cannot merge its WAL before damaging it"
    size = table(db, "PRAGMA page_size")[0][0]
    rng = random.Random(seed)
    count = size - start if length is None else length
    with open(db, "r+b") as handle:
        handle.seek((page - 1) * size + start)
        handle.write(bytes(rng.randrange(256) for _ in range(count)))


def root_page(db: Path, name: str) -> int:
    return table(db, f"SELECT rootpage FROM sqlite_master WHERE name = '{name}'")[0][0]
