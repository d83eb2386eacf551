"""The workspace named by ``--registry`` (or TURBOFAN_HOME) for the registry commands, and their tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from turbofan_desktop.cli._jobs import open_workspace

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace


def open_registry_workspace(args: argparse.Namespace) -> Workspace:
    """An explicit ``--registry DIR`` must exist (a typo must not create an empty registry)."""
    return open_workspace(args, create=False)


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
