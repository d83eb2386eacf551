"""Helpers for the data/settings fault-injection tests (issue 20): run the CLI in-process and check
that a hostile input ended as it must: exit 2, one sentence on stderr naming what was wrong, no
traceback, and the registry exactly as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

from turbofan_desktop.cli import main

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "resources" / "sample"


def registry_state(home: Path) -> dict[str, str]:
    """sha256 of every file under ``home`` except the log: what "registry unchanged" compares."""
    state = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and "logs" not in path.relative_to(home).parts:
            state[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(capsys, home: Path, argv: list[str], *names: str) -> str:
    """Run ``argv``; assert exit 2, one ``error:`` sentence naming every one of ``names``, no traceback,
    the registry under ``home`` unchanged. Returns the sentence."""
    before = registry_state(home)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    assert registry_state(home) == before
    return lines[0]


def small_train_file(folder: Path, units: int = 6) -> Path:
    """The first ``units`` engines of the bundled train_FD001 sample."""
    kept = [
        line
        for line in (SAMPLE_DIR / "train_FD001.txt").read_text().splitlines()
        if line.split() and int(line.split()[0]) <= units
    ]
    path = folder / "train_small.txt"
    path.write_text("\n".join(kept) + "\n")
    return path
