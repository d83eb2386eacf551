"""Built-in readers (C-MAPSS text, CSV, Parquet, telemetry .npy) and the one entry point, read_dataset.

A reader is chosen by *content*: every candidate's ``sniff(path, head)`` looks at the first bytes, and
the highest-priority reader that accepts wins. Plugin readers (``register_readers()``) are passed in as
``extra_readers`` and go through exactly the same selection. Parsing is vectorised; only when the data
is bad do readers re-scan the file to name the exact line.
"""

from __future__ import annotations

import csv
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from turbofan_desktop.config import DEFAULT_MAX_FILE_MB
from turbofan_desktop.data.dataset import UNIT, Dataset, file_sha256
from turbofan_desktop.data.validation import (
    HEAD_BYTES,
    check_column_count,
    check_decoded_size,
    check_integral,
    check_line_lengths,
    check_no_infinity,
    check_source_file,
    error_at_first,
    first_text_line,
    looks_like_text,
    read_head,
    validate_time_axis,
)
from turbofan_desktop.errors import DataFormatError, PluginError

log = logging.getLogger(__name__)

CMAPSS_SETTINGS = [f"setting_{i}" for i in range(1, 4)]
CMAPSS_SENSORS = [f"s_{i}" for i in range(1, 22)]
CMAPSS_COLUMNS = [UNIT, "cycle", *CMAPSS_SETTINGS, *CMAPSS_SENSORS]
CMAPSS_EXPECTED = "26 whitespace-separated numbers: unit, cycle, 3 settings, 21 sensors"

# Column names (case-insensitive) recognised as the unit/asset and the time axis, in order of preference.
UNIT_NAMES = (
    "unit",
    "unit_id",
    "unit_number",
    "unit_nr",
    "engine",
    "engine_id",
    "asset",
    "asset_id",
    "machine",
    "machine_id",
    "device",
    "device_id",
    "id",
)
TIME_NAMES = (
    "cycle",
    "cycles",
    "time_cycles",
    "time_in_cycles",
    "timestamp",
    "datetime",
    "date_time",
    "time",
    "date",
    "ts",
    "step",
    "t",
)
SETTING_PATTERN = re.compile(r"^(op_?)?(setting|operational_setting|cmd|command)[_ ]?\d*$", re.IGNORECASE)


@dataclass(frozen=True)
class ReaderSpec:
    """A file reader, built in or contributed by a plugin (``register_readers()``; the plugin API hands
    out this class as ``turbofan_desktop.plugins.contract.ReaderSpec``).

    ``sniff(path, head)`` gets the first bytes of the file and returns True when it can read it;
    ``read(path, **options)`` returns a :class:`~turbofan_desktop.data.dataset.Dataset` or raises
    :class:`~turbofan_desktop.errors.DataFormatError`.
    """

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path, bytes], bool]
    read: Callable[..., Dataset]
    priority: int = 0


# -- sniffing -------------------------------------------------------------------------------------------
def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def sniff_cmapss(path: Path, head: bytes) -> bool:
    """Whitespace-separated numbers only (no commas or semicolons) on the first line."""
    if not looks_like_text(head):
        return False
    line = first_text_line(head)
    if line is None or "," in line or ";" in line:
        return False
    tokens = line.split()
    return len(tokens) >= 2 and all(_is_number(t) for t in tokens)


def _csv_delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else None


def sniff_csv(path: Path, head: bytes) -> bool:
    """Text whose first line holds a delimiter; a lone name per line counts for a .csv file."""
    if not looks_like_text(head):
        return False
    line = first_text_line(head)
    if line is None:
        return False
    return _csv_delimiter(line) is not None or path.suffix.lower() in (".csv", ".tsv")


def sniff_parquet(path: Path, head: bytes) -> bool:
    return head.startswith(b"PAR1")


def sniff_npy(path: Path, head: bytes) -> bool:
    return head.startswith(b"\x93NUMPY")


# -- C-MAPSS text -----------------------------------------------------------------------------------
def _text_lines(path: Path) -> Iterable[tuple[int, str]]:
    """(1-based line number, text) of every line, raising on bytes that are not text."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if b"\0" in raw:
                raise DataFormatError(
                    path, "contains binary data (NUL bytes)", line=number, expected="a text file"
                )
            try:
                yield number, raw.decode("utf-8").lstrip("\ufeff")
            except UnicodeDecodeError:
                raise DataFormatError(
                    path, "contains bytes that are not UTF-8 text", line=number, expected="a text file"
                ) from None


def _data_line_numbers(path: Path) -> np.ndarray:
    """Line numbers of the non-blank lines: parsed row i sits on line ``result[i]``."""
    return np.array([n for n, text in _text_lines(path) if text.strip()], dtype=np.int64)


def _line_locator(path: Path) -> Callable[[int], int | None]:
    cache: dict[str, np.ndarray] = {}

    def line_of_row(row: int) -> int | None:
        if "lines" not in cache:
            cache["lines"] = _data_line_numbers(path)
        lines = cache["lines"]
        return int(lines[row]) if 0 <= row < len(lines) else None

    return line_of_row


def _locate_text_problem(path: Path, names: Sequence[str], expected: str) -> None:
    """Re-scan a whitespace table line by line and raise for the first bad line, if any."""
    width = len(names)
    for number, text in _text_lines(path):
        tokens = text.split()
        if not tokens:
            continue
        if len(tokens) != width:
            found = f"found {len(tokens)} value{'s' if len(tokens) != 1 else ''}"
            raise DataFormatError(path, found, line=number, expected=expected)
        for name, token in zip(names, tokens, strict=True):
            try:
                value = float(token)
            except ValueError:
                raise DataFormatError(
                    path, f"'{token}' is not a number", line=number, column=name, expected="a number"
                ) from None
            if not np.isfinite(value):
                raise DataFormatError(
                    path,
                    f"'{token}' is not a finite number",
                    line=number,
                    column=name,
                    expected="a finite measurement",
                ) from None


def parse_whitespace_table(path: Path, names: Sequence[str], expected: str) -> np.ndarray:
    """Fast float64 parse of a whitespace-separated numeric table; exact line on any problem.

    Lines are checked for length first and the first row for its width: pandas sizes the table by
    the first row, and a first "row" of millions of numbers would take hundreds of times the file's
    size in memory.
    """
    check_line_lengths(path)
    _check_first_row_width(path, names, expected)
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            dtype=np.float64,
            engine="c",
            skip_blank_lines=True,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "the file holds no data rows", expected=expected) from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        _locate_text_problem(path, names, expected)
        raise DataFormatError(path, f"cannot be parsed ({exc})", expected=expected) from None
    values = frame.to_numpy()
    if values.ndim != 2 or values.shape[1] != len(names) or not np.isfinite(values).all():
        _locate_text_problem(path, names, expected)
        raise DataFormatError(path, f"has {values.shape[1]} columns", expected=expected)
    return values


def _check_first_row_width(path: Path, names: Sequence[str], expected: str) -> None:
    for number, text in _text_lines(path):
        for row in text.splitlines():  # a lone \r ends a row too (old Mac files)
            tokens = row.split()
            if tokens:
                if len(tokens) != len(names):
                    found = f"found {len(tokens):,} value{'s' if len(tokens) != 1 else ''}"
                    raise DataFormatError(path, found, line=number, expected=expected)
                return


def read_cmapss(path: Path, **_: Any) -> Dataset:
    """NASA C-MAPSS ``train_/test_FD00x.txt``: 26 columns, trailing spaces allowed."""
    path = Path(path)
    values = parse_whitespace_table(path, CMAPSS_COLUMNS, CMAPSS_EXPECTED)
    locate = _line_locator(path)
    columns: dict[str, np.ndarray] = {
        UNIT: check_integral(values[:, 0], path, UNIT, locate),
        "cycle": check_integral(values[:, 1], path, "cycle", locate),
    }
    for index, name in enumerate(CMAPSS_COLUMNS[2:], start=2):
        columns[name] = values[:, index]
    frame = pd.DataFrame(columns)
    validate_time_axis(frame, "cycle", path, locate)
    frame = _sorted(frame, "cycle")
    return Dataset(
        frame=frame,
        time_col="cycle",
        sensors=list(CMAPSS_SENSORS),
        settings=list(CMAPSS_SETTINGS),
        format="cmapss",
        source=path,
        name=path.stem,
        time_axis="cycle",
    )


def _one_unit(name: str, rows: int) -> pd.Series:
    """The unit column of a file that is one unit (a channel, a table without a unit column): its name
    on every row, broadcast from one string. Built from an object array of millions of equal strings
    it took seconds and several times the file's size in memory."""
    return pd.Series(name, index=pd.RangeIndex(rows), dtype="str")


def _sorted(frame: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """Order rows by (unit, time). Called after validate_time_axis: time already rises within each
    unit in file order, so a file whose unit column never decreases is sorted as it stands."""
    if frame[UNIT].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values([UNIT, time_col], kind="stable").reset_index(drop=True)


# -- RUL files --------------------------------------------------------------------------------------
# The pairing rule, written once (the GUI pairs dropped files by it too, through services): a test file
# and its true-RUL file share what follows "test" / "RUL" in their names, case aside
# (test_FD001.txt <-> RUL_FD001.txt).
_RUL_NAME = re.compile(r"^rul[_\-\s]?(?P<key>.*)$", re.IGNORECASE)
_TEST_NAME = re.compile(r"^test[_\-\s]?(?P<key>.*)$", re.IGNORECASE)


def _name_key(path: Path, pattern: re.Pattern) -> str | None:
    match = pattern.match(Path(path).stem)
    return match.group("key").lower() if match else None


def pairing_key_of_rul(path: Path) -> str | None:
    """What a RUL file's name pairs by (``RUL_FD001.txt`` -> ``fd001``); None for other names."""
    return _name_key(path, _RUL_NAME)


def pairing_key_of_test(path: Path) -> str | None:
    """What a test file's name pairs by (``test_FD001.txt`` -> ``fd001``); None for other names."""
    return _name_key(path, _TEST_NAME)


def rul_partner(path: Path) -> Path | None:
    """The RUL file beside a test file with the same key and suffix (``RUL_FD001.txt`` beside
    ``test_FD001.txt``), if one exists."""
    key = pairing_key_of_test(path)
    if key is None:
        return None
    partners = sorted(
        candidate
        for candidate in path.parent.glob(f"*{path.suffix}")
        if pairing_key_of_rul(candidate) == key and candidate.is_file()
    )
    return partners[0] if partners else None


@dataclass(frozen=True)
class RulPairing:
    """Files chosen together, sorted out: each data file with its RUL file (or None), and the RUL files
    that belong to no chosen test file."""

    data_files: list[tuple[Path, Path | None]]
    orphan_rul_files: list[Path]


def pair_rul_files(paths: Iterable[str | Path]) -> RulPairing:
    """Attach each RUL file among ``paths`` to the test file it belongs to (same key, see
    :func:`rul_partner`); a single RUL file chosen with a single unpaired test file pairs with it
    whatever their names. Duplicates are dropped; the order of the data files is kept."""
    unique: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path not in unique:
            unique.append(path)
    rul_files = [p for p in unique if pairing_key_of_rul(p) is not None]
    data_files = [p for p in unique if p not in rul_files]
    tests = [p for p in data_files if pairing_key_of_test(p) is not None]
    pairs: dict[Path, Path] = {}
    for rul in list(rul_files):
        match = [t for t in tests if pairing_key_of_test(t) == pairing_key_of_rul(rul) and t not in pairs]
        if match:
            pairs[match[0]] = rul
            rul_files.remove(rul)
    unpaired_tests = [t for t in tests if t not in pairs]
    if len(rul_files) == 1 and len(unpaired_tests) == 1:
        pairs[unpaired_tests[0]] = rul_files.pop()
    return RulPairing([(p, pairs.get(p)) for p in data_files], rul_files)


def read_rul(rul_path: Path, dataset: Dataset, max_file_mb: float) -> pd.Series:
    """One true RUL per line, one line per unit (in unit order); a count mismatch names the RUL file."""
    rul_path = Path(rul_path)
    check_source_file(rul_path, max_file_mb)
    expected = "one non-negative whole number per line"
    values = parse_whitespace_table(rul_path, ["rul"], expected)[:, 0]
    units = sorted(dataset.units)
    if len(values) != len(units):
        where = dataset.source.name if dataset.source else "the test data"
        raise DataFormatError(
            rul_path,
            f"has {len(values)} RUL values but {where} has {len(units)} units",
            expected=f"{len(units)} rows, one per unit",
        )
    locate = _line_locator(rul_path)
    rul = check_integral(values, rul_path, "rul", locate)
    if (rul < 0).any():
        row = int(np.flatnonzero(rul < 0)[0])
        raise DataFormatError(rul_path, f"RUL {rul[row]} is negative", line=locate(row), expected=expected)
    return pd.Series(rul, index=pd.Index(units, name=UNIT), name="rul")


# -- CSV / Parquet sensor tables --------------------------------------------------------------------
def _csv_records(path: Path, delimiter: str) -> Iterable[tuple[int, list[str]]]:
    """(line where the record starts, fields) of the non-empty records, as a text editor counts lines."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        start = 1
        try:
            for record in reader:
                if record and any(field.strip() for field in record):
                    yield start, record
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataFormatError(path, f"cannot be parsed as CSV ({exc})", line=start) from None


def _csv_locator(path: Path, delimiter: str, header: bool) -> Callable[[int], int | None]:
    cache: dict[str, list[int]] = {}

    def line_of_row(row: int) -> int | None:
        if "lines" not in cache:
            starts = [line for line, _ in _csv_records(path, delimiter)]
            cache["lines"] = starts[1:] if header else starts
        lines = cache["lines"]
        return lines[row] if 0 <= row < len(lines) else None

    return line_of_row


def _check_csv_widths(path: Path, delimiter: str, width: int) -> None:
    for line, record in _csv_records(path, delimiter):
        if len(record) != width:
            raise DataFormatError(
                path, f"found {len(record)} fields", line=line, expected=f"{width} fields like the header"
            )


def read_csv_table(
    path: Path, *, unit_col: str | None = None, time_col: str | None = None, **_: Any
) -> Dataset:
    """A delimited sensor table with a header row (a numeric first row means no header)."""
    path = Path(path)
    check_line_lengths(path)
    head = read_head(path, HEAD_BYTES)
    first = first_text_line(head) or ""
    delimiter = _csv_delimiter(first) or ","
    header = not all(_is_number(t) for t in first.split(delimiter))
    check_column_count(path, _header_width(path, delimiter))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=delimiter,
                engine="c",
                header=0 if header else None,
                index_col=False,  # never silently turn an extra field per row into an index
                skipinitialspace=True,
                encoding="utf-8-sig",
                low_memory=False,
            )
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, "the file holds no data", expected="a header and data rows") from None
    except pd.errors.ParserError:
        _check_csv_widths(path, delimiter, _header_width(path, delimiter))
        raise DataFormatError(path, "cannot be parsed as CSV", expected="a delimited table") from None
    except UnicodeDecodeError:
        raise DataFormatError(path, "contains bytes that are not UTF-8 text", expected="a CSV file") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        _check_csv_widths(path, delimiter, _header_width(path, delimiter))  # rows wider than the header
    if not header:
        frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
    if frame.empty:
        raise DataFormatError(path, "has a header but no data rows", expected="at least one data row")
    if frame.isna().to_numpy().any():
        _check_csv_widths(path, delimiter, frame.shape[1])  # short rows read as NaN: name the line
    locate = _csv_locator(path, delimiter, header)
    return table_to_dataset(frame, path, "csv", unit_col=unit_col, time_col=time_col, line_of_row=locate)


def _header_width(path: Path, delimiter: str) -> int:
    for _, record in _csv_records(path, delimiter):
        return len(record)
    return 0


def _parquet_frame(path: Path) -> pd.DataFrame:
    """The table of a Parquet file, read by fastparquet itself.

    The app depends on fastparquet, not pyarrow (about 18 MB with cramjam and fsspec, against about
    170 MB), and calls it directly rather than through ``pd.read_parquet(engine="fastparquet")``,
    which pandas 3 deprecates; the development venv then reads files the way the frozen app does.
    Imported here so that starting the app does not pay for it.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - 4))
        if size < 12 or handle.read(4) != b"PAR1":
            raise ValueError("it does not end with the PAR1 footer: the file is truncated or not Parquet")
    with warnings.catch_warnings():
        # fastparquet reads a pandas option that pandas 3 deprecates, once, on import
        warnings.filterwarnings("ignore", message=".*future.infer_string.*")
        import fastparquet

    parquet = fastparquet.ParquetFile(str(path))
    check_decoded_size(path, parquet.count() * max(1, len(parquet.columns)) * 8)
    frame = parquet.to_pandas()
    for name in _float16_columns(parquet):
        if name in frame.columns:
            frame[name] = _decode_float16(frame[name])
    return frame


def _float16_columns(parquet: Any) -> list[str]:
    """Columns stored as Parquet FLOAT16 (2-byte fixed-length binary with a logical type fastparquet
    does not know): fastparquet hands them over as raw bytes, which pandas then fails to decode."""
    names = []
    for element in parquet.fmd.schema[1:]:
        logical = element.logicalType
        half = element.type == _FIXED_LEN_BYTE_ARRAY and element.type_length == 2
        unknown_logical = logical is not None and getattr(logical, "DECIMAL", None) is None
        if half and element.converted_type is None and unknown_logical:
            names.append(element.name)
    return names


_FIXED_LEN_BYTE_ARRAY = 7  # parquet.thrift Type


def _decode_float16(series: pd.Series) -> pd.Series:
    """Raw little-endian half floats (numpy's ``S2`` dropped trailing zero bytes) -> float64, None -> NaN."""
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    raw = np.array([b"" if gone else bytes(v) for v, gone in zip(values, missing, strict=True)], dtype="S2")
    decoded = raw.view("<f2").astype(np.float64)
    decoded[missing] = np.nan
    return pd.Series(decoded, index=series.index, name=series.name)


def _refuse_unreadable_columns(frame: pd.DataFrame, path: Path) -> None:
    """Columns of raw bytes or of nested values (lists, maps) are Parquet types the app does not read:
    say so instead of guessing (or failing inside pandas on bytes that are not text)."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        present = column.dropna()
        first = present.iloc[0] if len(present) else None
        if isinstance(first, bytes | bytearray):
            problem = "holds raw binary values (a Parquet type this app does not read)"
        elif isinstance(first, list | tuple | dict | np.ndarray):
            problem = "holds nested values (lists or maps), not one number per row"
        else:
            continue
        raise DataFormatError(
            path, problem, column=str(name), expected="numbers, booleans, text or timestamps"
        )


def read_parquet_table(
    path: Path, *, unit_col: str | None = None, time_col: str | None = None, **_: Any
) -> Dataset:
    path = Path(path)
    if unit_col is None and time_col is None:
        # a dataset the registry stored or exported: rebuilt whole, so it hashes as it did there
        from turbofan_desktop.data.dataset_file import read_dataset_file, read_footer

        try:
            stored = read_footer(path) is not None
        except DataFormatError:
            stored = False  # not readable: the table read below says why
        if stored:
            try:
                return read_dataset_file(path, as_file=True)
            except DataFormatError as exc:
                log.warning("%s; reading it as a plain table", exc)
    try:
        frame = _parquet_frame(path)
    except DataFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - fastparquet raises many types for a corrupt file
        raise DataFormatError(path, f"is not a readable Parquet file ({_first_line(exc)})") from None
    if frame.empty:
        raise DataFormatError(path, "holds no rows", expected="at least one data row")
    _refuse_unreadable_columns(frame, path)
    try:
        return table_to_dataset(
            frame.reset_index(drop=True),
            path,
            "parquet",
            unit_col=unit_col,
            time_col=time_col,
            line_of_row=None,
        )
    except (TypeError, ValueError, UnicodeDecodeError, OverflowError) as exc:
        # a column type none of the checks foresaw: one sentence rather than a crash
        raise DataFormatError(
            path, f"has a column this app cannot read as numbers ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _pick_column(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], path: Path, role: str
) -> str | None:
    if wanted is not None:
        if wanted in columns:
            return wanted
        lowered = {c.lower(): c for c in columns}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise DataFormatError(
            path, f"has no {role} column '{wanted}'", expected=f"one of the columns {', '.join(columns)}"
        )
    lowered = {c.strip().lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def _to_numeric(series: pd.Series, path: Path, name: str, line_of_row) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):  # as numbers they would be nanoseconds
        raise DataFormatError(
            path,
            "holds timestamps, not measurements",
            column=name,
            expected="numbers; the time column is chosen with --time-col",
        )
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = (coerced.isna() & series.notna() & (series.astype(str).str.strip() != "")).to_numpy()
    error = error_at_first(
        bad,
        path,
        line_of_row,
        lambda row: f"'{series.iloc[row]}' is not a number",
        column=name,
        expected="a number or an empty cell",
    )
    if error:
        raise error
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


def _time_values(series: pd.Series, path: Path, name: str, line_of_row) -> tuple[pd.Series, str]:
    """Cycles as int64, timestamps as datetime64 (UTC-naive); the kind of axis it is."""
    error = error_at_first(
        series.isna().to_numpy(),
        path,
        line_of_row,
        lambda row: "the time is missing",
        column=name,
        expected="a cycle number or timestamp on every row",
    )
    if error:
        raise error
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series
    elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)):
            return pd.Series(check_integral(values, path, name, line_of_row)), "cycle"
        check_no_infinity(series.to_frame(name), [name], path, line_of_row)
        return pd.Series(values), "step"
    else:
        text = series.astype(str).str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if parsed.isna().any():
            parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        error = error_at_first(
            parsed.isna().to_numpy(),
            path,
            line_of_row,
            lambda row: f"'{series.iloc[row]}' is not a timestamp",
            column=name,
            expected="an ISO-8601 timestamp or a cycle number",
        )
        if error:
            raise error
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.Series(parsed.to_numpy(dtype="datetime64[ns]")), "timestamp"


def table_to_dataset(
    frame: pd.DataFrame, path: Path, fmt: str, *, unit_col: str | None, time_col: str | None, line_of_row
) -> Dataset:
    """Shared by CSV and Parquet: find unit/time columns, type every column, validate the time axis."""
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    names = list(frame.columns)
    unit_name = _pick_column(names, unit_col, UNIT_NAMES, path, "unit")
    time_name = _pick_column([c for c in names if c != unit_name], time_col, TIME_NAMES, path, "time")
    metadata: dict[str, Any] = {"unit_column": unit_name, "time_column": time_name}

    if unit_name is None:
        units: Any = _one_unit(path.stem, len(frame))
    else:
        raw = frame[unit_name]
        error = error_at_first(
            raw.isna().to_numpy(),
            path,
            line_of_row,
            lambda row: "the unit is missing",
            column=unit_name,
            expected="a unit id on every row",
        )
        if error:
            raise error
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            units = check_integral(raw.to_numpy(dtype=np.float64), path, unit_name, line_of_row)
        else:
            units = raw.astype(str).str.strip().to_numpy(dtype=object)

    columns: dict[str, Any] = {UNIT: units}
    if time_name is None:
        time_name = "step"
        if unit_name is None:  # one unit: its steps are the row numbers
            columns[time_name] = np.arange(len(frame), dtype=np.int64)
        else:
            columns[time_name] = pd.Series(units).groupby(units, sort=False).cumcount().to_numpy(np.int64)
        time_axis = "step"
    else:
        time_values, time_axis = _time_values(frame[time_name], path, time_name, line_of_row)
        columns[time_name] = time_values.to_numpy()
    settings: list[str] = []
    sensors: list[str] = []
    for name in names:
        if name in (unit_name, time_name) or name == UNIT:
            continue
        columns[name] = _to_numeric(frame[name], path, name, line_of_row)
        (settings if SETTING_PATTERN.match(name) else sensors).append(name)
    if not sensors and not settings:
        raise DataFormatError(
            path,
            "has no measurement columns",
            expected="at least one numeric sensor column besides unit and time",
        )
    table = pd.DataFrame(columns)
    check_no_infinity(table, [*settings, *sensors], path, line_of_row)
    validate_time_axis(table, time_name, path, line_of_row)
    table = _sorted(table, time_name) if unit_name is not None else table  # one unit: in time order
    return Dataset(
        frame=table,
        time_col=time_name,
        sensors=sensors,
        settings=settings,
        format=fmt,
        source=path,
        name=path.stem,
        metadata=metadata,
        time_axis=time_axis,
    )


# -- telemetry .npy ---------------------------------------------------------------------------------
def read_telemetry_npy(path: Path, **_: Any) -> Dataset:
    """One channel, shape (time, features): column 0 is the telemetry value, the rest are commands.

    Commands are not operating regimes (``regime_settings`` is empty), and the value counts as
    constant only when it never changes: its rare departures are exactly what anomaly detection seeks.
    """
    path = Path(path)
    _check_npy_header(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(
            path, f"is not a readable NumPy array ({exc})", expected="a numeric .npy array"
        ) from None
    if not isinstance(array, np.ndarray) or not _real_numbers(array.dtype):
        raise DataFormatError(
            path, f"holds {getattr(array, 'dtype', type(array))} values", expected="a numeric array"
        )
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise DataFormatError(path, f"has shape {array.shape}", expected="shape (time, features)")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataFormatError(path, f"has shape {array.shape}, no data", expected="at least one time step")
    values = array.astype(np.float64, copy=False)
    commands = [f"cmd_{i}" for i in range(1, values.shape[1])]
    columns: dict[str, Any] = {
        UNIT: _one_unit(path.stem, values.shape[0]),
        "step": np.arange(values.shape[0], dtype=np.int64),
        "value": values[:, 0],
    }
    for index, name in enumerate(commands, start=1):
        columns[name] = values[:, index]
    frame = pd.DataFrame(columns)
    check_no_infinity(frame, ["value", *commands], path, None)
    return Dataset(
        frame=frame,
        time_col="step",
        sensors=["value"],
        settings=commands,
        format="npy",
        source=path,
        name=path.stem,
        time_axis="step",
        metadata={"shape": list(array.shape), "regime_settings": [], "constant_share": 1.0},
    )


def _real_numbers(dtype: np.dtype) -> bool:
    """Integers, real floats or booleans: complex numbers have no single value to plot or model
    (dropping the imaginary part would silently change the data)."""
    return dtype == np.bool_ or (
        np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)
    )


def _check_npy_header(path: Path) -> None:
    """Dtype and size from the header alone, before any value is loaded."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:  # 2.0 and 3.0 headers differ only in the length field and the text encoding
                shape, _, dtype = np.lib.format._read_array_header(handle, version)  # noqa: SLF001
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise DataFormatError(
            path, f"is not a readable NumPy array ({exc})", expected="a numeric .npy array"
        ) from None
    if dtype.hasobject:
        raise DataFormatError(
            path,
            "is not a readable NumPy array (it holds Python objects, which are never unpickled)",
            expected="a numeric .npy array",
        )
    if not _real_numbers(dtype):
        raise DataFormatError(path, f"holds {dtype} values", expected="a numeric array of real numbers")
    check_decoded_size(path, int(np.prod(shape, dtype=object)) * 8)


BUILTIN_READERS: tuple[ReaderSpec, ...] = (
    ReaderSpec("npy", (".npy",), sniff_npy, read_telemetry_npy),
    ReaderSpec("parquet", (".parquet", ".pq"), sniff_parquet, read_parquet_table),
    ReaderSpec("cmapss", (".txt",), sniff_cmapss, read_cmapss),
    ReaderSpec("csv", (".csv", ".tsv", ".txt"), sniff_csv, read_csv_table),
)


# -- selection and the entry point ------------------------------------------------------------------
def choose_reader(path: Path, head: bytes, extra_readers: Iterable[Any] = ()) -> Any:
    """Highest priority first (plugins before built-ins on a tie); the first sniff that accepts wins."""
    candidates = [*extra_readers, *BUILTIN_READERS]
    ordered = sorted(enumerate(candidates), key=lambda item: (-getattr(item[1], "priority", 0), item[0]))
    for _, reader in ordered:
        try:
            if reader.sniff(path, head):
                return reader
        except Exception:  # noqa: BLE001 - a broken plugin sniffer must not hide the other readers
            log.warning("reader %r failed to sniff %s", getattr(reader, "name", reader), path, exc_info=True)
    known = "C-MAPSS text, CSV, Parquet or NumPy .npy"
    if b"\0" in head:
        raise DataFormatError(path, "is a binary file in no known format", expected=known)
    if not looks_like_text(head):
        raise DataFormatError(path, "is not UTF-8 text and in no known binary format", expected=known)
    if not head.strip():
        raise DataFormatError(path, "the file is empty (only blank lines)", expected="data rows")
    first = first_text_line(head) or ""
    if len(first.split()) == 1 and _is_number(first.strip()):
        raise DataFormatError(
            path,
            "holds one number per line, like a C-MAPSS RUL file",
            expected="a data table; a RUL file is read with its test_FD00x.txt (or given with --rul)",
        )
    raise DataFormatError(path, "is a text file in no known layout", expected=known)


def read_dataset(
    path: str | Path,
    *,
    rul_path: str | Path | None = None,
    unit_col: str | None = None,
    time_col: str | None = None,
    extra_readers: Iterable[Any] = (),
    max_file_mb: float | None = None,
) -> Dataset:
    """Read any supported file into a validated :class:`Dataset` (sorted, hashed, constants marked).

    ``rul_path`` pairs true RUL values with a test file; ``test_FD00x.txt`` finds ``RUL_FD00x.txt``
    beside it on its own. Files above ``max_file_mb`` are refused before a byte is parsed: the services
    pass the ``max_file_mb`` setting; without it the settings' default applies (nothing is read from
    the settings file here).
    """
    from turbofan_desktop.data.preprocess import detect_constant_sensors, missing_report

    path = Path(path).expanduser()
    limit = DEFAULT_MAX_FILE_MB if max_file_mb is None else float(max_file_mb)
    check_source_file(path, limit)
    head = read_head(path)
    if not head.strip(b" \t\r\n"):
        raise DataFormatError(path, "the file is empty (only blank lines)", expected="data rows")
    reader = choose_reader(path, head, extra_readers)
    options = {"unit_col": unit_col, "time_col": time_col}
    dataset = reader.read(path, **options)
    if not isinstance(dataset, Dataset):
        raise PluginError(
            f"Reader '{getattr(reader, 'name', reader)}' returned {type(dataset).__name__} for {path}, "
            "expected a Dataset."
        )
    if dataset.file_sha256 is None:
        dataset.file_sha256 = file_sha256(path)
    dataset.metadata.setdefault("reader", getattr(reader, "name", str(reader)))
    partner = Path(rul_path).expanduser() if rul_path is not None else rul_partner(path)
    if partner is not None:
        dataset.rul = read_rul(partner, dataset, limit)
        dataset.rul_source = partner
    if not dataset.constant_sensors:
        dataset.constant_sensors = detect_constant_sensors(dataset)
    missing = missing_report(dataset)["total"]
    dataset.metadata["missing_values"] = missing
    if missing:
        log.warning("%s has %d missing values (see inspect; fill_missing() fills them)", path, missing)
    return dataset
