"""Fixtures for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_text(tmp_path):
    """write_text(name, lines) -> path of a file holding those lines."""

    def write(name: str, lines: list[str] | str, newline: str = "\n") -> Path:
        path = tmp_path / name
        text = lines if isinstance(lines, str) else newline.join(lines) + newline
        path.write_bytes(text.encode("utf-8"))
        return path

    return write
