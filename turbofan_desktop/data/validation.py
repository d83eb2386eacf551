"""Checks every reader shares, each failing with one sentence that names the file, line and expectation.

Readers parse first (fast, vectorised) and only when something is wrong do they work out *where*:
``line_of_row(i)`` maps the i-th parsed row to the 1-based line a text editor shows, or is ``None``
for binary formats (Parquet, .npy), where messages name the 1-based data row instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.data.dataset import UNIT, Dataset
from turbofan_desktop.errors import DataFormatError, InsufficientDataError

LineOfRow = Callable[[int], "int | None"]

#: Bytes handed to ``sniff``; also enough to tell text from binary.
HEAD_BYTES = 64 * 1024


def check_source_file(path: Path, max_file_mb: float) -> int:
    """Refuse missing, unreadable, empty or oversized files *before* reading them; returns the size."""
    if not path.exists():
        raise DataFormatError(path, "the file does not exist", expected="a path to a data file")
    if path.is_dir():
        raise DataFormatError(path, "is a folder, not a file", expected="a data file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataFormatError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not os.access(path, os.R_OK):
        raise DataFormatError(path, "cannot be read (permission denied)")
    limit = max_file_mb * 1024 * 1024
    if size > limit:
        raise DataFormatError(
            path,
            f"the file is {size / 1024 / 1024:.1f} MB, larger than the {max_file_mb:g} MB limit",
            expected="a smaller file, or a higher 'max_file_mb' setting",
        )
    if size == 0:
        raise DataFormatError(path, "the file is empty", expected="a header or data rows")
    return size


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError as exc:
        raise DataFormatError(path, f"cannot be read ({exc.strerror or exc})") from None


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes; a multi-byte character cut off at the end of ``head`` is fine."""
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and len(head) >= HEAD_BYTES - 3
    return True


def first_text_line(head: bytes) -> str | None:
    """The first non-blank line of a text head (``None`` if there is none)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines():
        if line.strip():
            return line
    return None


def row_location(row: int, line_of_row: LineOfRow | None) -> tuple[int | None, str]:
    """(line for the error, prefix for the problem): the line when known, else 'row N: '."""
    line = line_of_row(row) if line_of_row is not None else None
    return (line, "") if line is not None else (None, f"row {row + 1}: ")


def error_at_first(
    bad: np.ndarray,
    path: Path | None,
    line_of_row: LineOfRow | None,
    problem: Callable[[int], str],
    *,
    column: str | None = None,
    expected: str | None = None,
) -> DataFormatError | None:
    """The error for the first row flagged in ``bad`` (None when no row is): its line when known,
    else 'row N', with ``problem(row)`` as the sentence. The caller raises it."""
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    line, prefix = row_location(row, line_of_row)
    return DataFormatError(path, f"{prefix}{problem(row)}", line=line, column=column, expected=expected)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def validate_time_axis(
    frame: pd.DataFrame, time_col: str, path: Path | None, line_of_row: LineOfRow | None
) -> None:
    """No (unit, time) twice and time strictly increasing within each unit, in file order."""
    if len(frame) < 2:
        return
    dup = frame.duplicated([UNIT, time_col], keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        unit, when = frame[UNIT].iloc[row], frame[time_col].iloc[row]
        same = (frame[UNIT] == unit).to_numpy() & (frame[time_col] == when).to_numpy()
        first = int(np.flatnonzero(same)[0])
        first_line, first_where = row_location(first, line_of_row)
        seen = f"line {first_line}" if first_line is not None else first_where.rstrip(": ")
        line, prefix = row_location(row, line_of_row)
        raise DataFormatError(
            path,
            f"{prefix}duplicate row for unit {_fmt(unit)}, {time_col} {_fmt(when)} (already on {seen})",
            line=line,
            expected=f"each ({UNIT}, {time_col}) pair once",
        )
    step = frame.groupby(UNIT, sort=False)[time_col].diff()
    back = (step < (pd.Timedelta(0) if pd.api.types.is_timedelta64_dtype(step) else 0)).to_numpy()
    error = error_at_first(
        back,
        path,
        line_of_row,
        lambda row: (
            f"{time_col} {_fmt(frame[time_col].iloc[row])} of unit {_fmt(frame[UNIT].iloc[row])} "
            f"comes after a later {time_col}"
        ),
        expected=f"{time_col} increasing within each unit",
    )
    if error:
        raise error


def check_integral(
    values: np.ndarray, path: Path | None, column: str, line_of_row: LineOfRow | None
) -> np.ndarray:
    """Float column that must hold whole numbers (unit ids, cycles) -> int64."""
    bad = ~np.isfinite(values) | (values != np.round(values))
    error = error_at_first(
        bad,
        path,
        line_of_row,
        lambda row: f"{column} is {values[row]!r}",
        column=column,
        expected="a whole number",
    )
    if error:
        raise error
    return values.astype(np.int64)


def check_no_infinity(
    frame: pd.DataFrame, columns: Iterable[str], path: Path | None, line_of_row: LineOfRow | None
) -> None:
    """Infinity is never a measurement; NaN in tables is a missing value and is reported elsewhere."""
    for name in columns:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        error = error_at_first(
            np.isinf(values),
            path,
            line_of_row,
            lambda row, values=values: f"value {values[row]} is not a finite number",
            column=name,
            expected="a finite number or an empty cell for a missing value",
        )
        if error:
            raise error


def require_window(dataset: Dataset, window: int, *, what: str = "model window") -> None:
    """Every unit must have at least ``window`` rows; otherwise name the short unit(s)."""
    lengths = dataset.unit_lengths()
    if lengths.empty:
        raise InsufficientDataError(
            f"{_name(dataset)} has no rows; the {what} needs at least {window} rows per unit."
        )
    short = lengths[lengths < window]
    if short.empty:
        return
    listed = ", ".join(f"{_fmt(u)} ({n} rows)" for u, n in short.head(5).items())
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    plural = "units" if len(short) > 1 else "unit"
    raise InsufficientDataError(
        f"{_name(dataset)}: {plural} {listed}{more} {'are' if len(short) > 1 else 'is'} shorter than "
        f"the {what} of {window} rows."
    )


def _name(dataset: Dataset) -> str:
    return str(dataset.source) if dataset.source else (dataset.name or "the dataset")
