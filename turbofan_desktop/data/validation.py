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
    if not path.is_file():  # opening a FIFO would block; a device or socket is no data file either
        raise DataFormatError(
            path, "is not a regular file (it is a pipe, socket or device)", expected="a data file"
        )
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


#: Longest line a text data file may have. A data row is a few hundred bytes (C-MAPSS: about 200; a
#: CSV with 10,000 sensor columns about 150 KB); one "line" of 13 million numbers made the parser
#: take about 400 times the file's size in memory and abort the process.
MAX_LINE_BYTES = 1024 * 1024
#: Most columns a table may have: the parser and pandas pay about a kilobyte per column, whatever its
#: length, so a short file with very many columns could still take gigabytes.
MAX_COLUMNS = 10_000
# Bytes read at a time by check_line_lengths: memory stays at one block whatever the file holds.
_SCAN_BLOCK = 1024 * 1024


def check_line_lengths(path: Path, max_line_bytes: int | None = None) -> None:
    """Refuse a text file with a line longer than ``max_line_bytes`` (default :data:`MAX_LINE_BYTES`)
    before any parser sees it, naming the line; reads the file in fixed blocks, so memory stays at one
    block however long the line is. ``\n``, ``\r\n`` and a lone ``\r`` all end a line, as for the
    parser.

    With blocks no longer than the limit, a line that lies inside one block is shorter than the limit;
    only the stretch that runs over block boundaries needs counting.
    """
    limit = MAX_LINE_BYTES if max_line_bytes is None else int(max_line_bytes)
    block = max(1, min(limit, _SCAN_BLOCK))
    breaks = 0  # line breaks before the current block
    run = 0  # bytes of the current line seen so far, before the current block
    ended_cr = False  # the previous block ended with \r: a \n opening this one ends no second line
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(block):
                first = _first_break(chunk)
                if first >= 0 and run + first <= limit:
                    breaks += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
                    breaks -= 1 if ended_cr and chunk.startswith(b"\n") else 0
                    run = len(chunk) - max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) - 1
                    ended_cr = chunk.endswith(b"\r")
                    continue
                run += len(chunk) if first < 0 else first
                if run > limit:
                    raise DataFormatError(
                        path,
                        f"the line is longer than {_size_text(limit)} (no line break in its first "
                        f"{_size_text(run)})",
                        line=breaks + 1,
                        expected=f"one table row per line, each at most {_size_text(limit)}",
                    )
                ended_cr = False
    except OSError as exc:
        raise DataFormatError(path, f"cannot be read ({exc.strerror or exc})") from None


def _first_break(chunk: bytes) -> int:
    found = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
    return min(found) if found else -1


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


def check_column_count(path: Path, count: int, line: int | None = 1) -> None:
    """Refuse a table wider than :data:`MAX_COLUMNS` before it is parsed."""
    if count > MAX_COLUMNS:
        raise DataFormatError(
            path,
            f"has {count:,} columns, more than the {MAX_COLUMNS:,} a table may have",
            line=line,
            expected="a table with one column per sensor or setting",
        )


#: Most bytes the values of a binary table (Parquet, .npy) may take once decoded: compressed formats
#: can hold far more than their file size, and the readers make a few copies of the table.
MAX_DECODED_BYTES = 1024 * 1024 * 1024


def check_decoded_size(path: Path, size: int) -> None:
    """Refuse a binary file whose values would take more than :data:`MAX_DECODED_BYTES`, before
    they are decoded."""
    if size > MAX_DECODED_BYTES:
        raise DataFormatError(
            path,
            f"its values would take {_size_text(size)} in memory, more than the "
            f"{_size_text(MAX_DECODED_BYTES)} a table may take",
            expected="a smaller table (fewer rows or columns)",
        )


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
    times = frame[time_col].to_numpy()
    if bool(np.all(times[1:] > times[:-1])):
        return  # rising over the whole file: rising within every unit, no pair twice (no unit compared)
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
        lambda row: f"{column} is {float(values[row])!r}",  # 1.5, not np.float64(1.5)
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


# Spread (relative to the level) below which a column counts as one value: float noise, not signal.
_FLAT = 1e-9


def require_learnable(full: Dataset, train: Dataset, sensor: str) -> None:
    """A model target must carry information: refuse a sensor that is missing on every row, or that
    holds one value on every training row once missing values are filled (filling copies neighbouring
    values, so it cannot create a second one). Such a model would "validate" with an error of zero."""
    everywhere = full.frame[sensor].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(everywhere).any():
        raise InsufficientDataError(
            f"{dataset_label(full)}: sensor {sensor} has no values (it is missing on every row), so no model "
            "can learn it; choose another sensor."
        )
    values = train.frame[sensor].to_numpy(dtype=np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InsufficientDataError(
            f"{dataset_label(full)}: sensor {sensor} is missing on every row of the training units, so no model "
            "can learn it; choose another sensor or more data."
        )
    low, high = float(values.min()), float(values.max())
    if high - low <= _FLAT * max(1.0, abs(low)):
        raise InsufficientDataError(
            f"{dataset_label(full)}: sensor {sensor} is {_fmt(low)} on every training row (missing values "
            "filled), so there is nothing to learn and its error would be zero; choose a sensor that varies."
        )


def require_window(dataset: Dataset, window: int, *, what: str = "model window") -> None:
    """Every unit must have at least ``window`` rows; otherwise name the short unit(s)."""
    lengths = dataset.unit_lengths()
    if lengths.empty:
        raise InsufficientDataError(
            f"{dataset_label(dataset)} has no rows; the {what} needs at least {window} rows per unit."
        )
    short = lengths[lengths < window]
    if short.empty:
        return
    listed = ", ".join(f"{_fmt(u)} ({n} rows)" for u, n in short.head(5).items())
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    plural = "units" if len(short) > 1 else "unit"
    raise InsufficientDataError(
        f"{dataset_label(dataset)}: {plural} {listed}{more} {'are' if len(short) > 1 else 'is'} shorter than "
        f"the {what} of {window} rows."
    )


def dataset_label(dataset: Dataset) -> str:
    """How a message names a dataset: its file when it has one (the user knows the file)."""
    return str(dataset.source) if dataset.source else (dataset.name or "the dataset")
