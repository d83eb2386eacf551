"""Every bad input: the exact error class, and one sentence naming the file, line and expectation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cmapss_factory import cmapss_lines

from turbofan_desktop.data import read_dataset, require_window
from turbofan_desktop.data import readers as readers_module
from turbofan_desktop.errors import DataFormatError, InsufficientDataError


def _fails(path, *, line=None, match=None, **options) -> DataFormatError:
    with pytest.raises(DataFormatError) as caught:
        read_dataset(path, **options)
    error = caught.value
    message = str(error)
    assert str(path) in message, message
    assert message.count("\n") == 0 and message.endswith(".")
    if line is not None:
        assert error.line == line and f"line {line}" in message, message
    if match is not None:
        assert match in message, message
    return error


def _replace_token(line: str, index: int, token: str) -> str:
    tokens = line.split()
    tokens[index] = token
    return " ".join(tokens)


def test_empty_file(write_text):
    _fails(write_text("train_FD009.txt", ""), match="empty")


def test_blank_lines_only(write_text):
    _fails(write_text("blank.txt", "\n  \n\t\n"), match="empty")


def test_missing_file(tmp_path):
    _fails(tmp_path / "nope.txt", match="does not exist")


def test_wrong_column_count_names_the_line(write_text):
    lines = cmapss_lines(1, 5)
    lines[2] = " ".join(lines[2].split()[:-1])  # 25 values on line 3
    error = _fails(write_text("short.txt", lines), line=3, match="found 25 values")
    assert "26 whitespace-separated numbers" in str(error)


def test_extra_column_names_the_line(write_text):
    lines = cmapss_lines(1, 5)
    lines[3] = lines[3] + " 1.0"
    _fails(write_text("long.txt", lines), line=4, match="found 27 values")


def test_whole_file_with_wrong_width(write_text):
    lines = [" ".join(line.split()[:20]) for line in cmapss_lines(1, 3)]
    _fails(write_text("narrow.txt", lines), line=1, match="found 20 values")


def test_non_numeric_cell_names_line_and_column(write_text):
    lines = cmapss_lines(1, 5)
    lines[1] = _replace_token(lines[1], 7, "abc")
    error = _fails(write_text("text.txt", lines), line=2, match="'abc' is not a number")
    assert error.column == "s_3" and "column s_3" in str(error)


def test_line_numbers_count_blank_lines(write_text):
    lines = cmapss_lines(1, 5)
    lines.insert(1, "")
    lines.insert(1, "   ")
    lines[5] = _replace_token(lines[5], 9, "x")
    _fails(write_text("gaps.txt", lines), line=6)


@pytest.mark.parametrize("token", ["nan", "NaN", "inf", "-inf"])
def test_nan_or_infinity_in_cmapss(write_text, token):
    lines = cmapss_lines(1, 5)
    lines[3] = _replace_token(lines[3], 10, token)
    _fails(write_text("nan.txt", lines), line=4, match="not a finite number")


def test_duplicate_unit_cycle(write_text):
    lines = cmapss_lines(2, 3)
    lines.insert(2, lines[1])  # unit 1 cycle 2 again on line 3
    error = _fails(write_text("dup.txt", lines), line=3, match="duplicate row for unit 1, cycle 2")
    assert "already on line 2" in str(error)


def test_non_monotonic_cycles(write_text):
    lines = cmapss_lines(1, 4)
    lines[1], lines[2] = lines[2], lines[1]  # cycles 1, 3, 2, 4
    _fails(write_text("order.txt", lines), line=3, match="cycle 2 of unit 1 comes after a later cycle")


def test_fractional_unit_id(write_text):
    lines = cmapss_lines(1, 3)
    lines[1] = _replace_token(lines[1], 0, "1.5")
    _fails(write_text("unit.txt", lines), line=2, match="expected a whole number")


def test_rul_row_count_mismatch_names_the_rul_file(write_text):
    test_file = write_text("test_FD042.txt", cmapss_lines(3, 4))
    rul_file = write_text("RUL_FD042.txt", ["10", "20"])
    with pytest.raises(DataFormatError) as caught:
        read_dataset(test_file)
    message = str(caught.value)
    assert str(rul_file) in message and "2 RUL values" in message and "3 units" in message


def test_rul_file_with_text(write_text):
    test_file = write_text("test_FD043.txt", cmapss_lines(2, 4))
    rul_file = write_text("RUL_FD043.txt", ["10", "ten"])
    with pytest.raises(DataFormatError) as caught:
        read_dataset(test_file)
    assert caught.value.path == rul_file and caught.value.line == 2


def test_binary_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 8)
    _fails(path, match="binary file")


def test_text_in_another_encoding_is_not_called_binary(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("an engine \u2013 i.e. a unit\n".encode("cp1252"))
    _fails(path, match="not UTF-8 text")


def test_rul_file_opened_on_its_own(write_text):
    _fails(write_text("RUL_FD001.txt", ["112", "98"]), match="like a C-MAPSS RUL file")


def test_binary_garbage_after_a_text_head(write_text, tmp_path):
    lines = cmapss_lines(2, 300)  # ~90 kB of good text: more than the sniffed head
    path = tmp_path / "late.txt"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\x00\xff\xfe garbage\n")
    _fails(path, line=601, match="binary data")


def test_file_larger_than_limit_is_refused_before_parsing(write_text, monkeypatch):
    path = write_text("big.txt", cmapss_lines(5, 50))

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(readers_module, "parse_whitespace_table", must_not_parse)
    _fails(path, max_file_mb=0.001, match="larger than the 0.001 MB limit")
    # the limit comes from the settings, which the services pass in (the reader reads no settings)
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.data import load_dataset

    monkeypatch.setenv("TURBOFAN_MAX_FILE_MB", "0.002")
    with pytest.raises(DataFormatError, match="larger than the 0.002 MB limit"):
        load_dataset(Workspace.without_registry(), path)


def test_csv_short_row_is_a_column_count_error(write_text):
    path = write_text("short.csv", ["unit,cycle,a,b", "1,1,0.5,1", "1,2,0.6", "1,3,0.7,2"])
    _fails(path, line=3, match="found 3 fields")


def test_csv_long_row_is_a_column_count_error(write_text):
    path = write_text("long.csv", ["unit,cycle,a", "1,1,0.5", "", "1,2,0.6,9"])
    _fails(path, line=4, match="found 4 fields")


def test_csv_every_row_wider_than_the_header(write_text):
    path = write_text("wide.csv", ["unit,cycle,a", "1,1,0.5,9", "1,2,0.6,9"])
    _fails(path, line=2, match="found 4 fields")


def test_csv_non_numeric_cell(write_text):
    path = write_text("word.csv", ["unit,cycle,a", "1,1,0.5", "1,2,high"])
    error = _fails(path, line=3, match="'high' is not a number")
    assert error.column == "a"


def test_csv_bad_timestamp(write_text):
    path = write_text("when.csv", ["asset,timestamp,a", "x,2024-01-01T00:00,1", "x,yesterday,2"])
    _fails(path, line=3, match="not a timestamp")


def test_csv_infinity(write_text):
    path = write_text("inf.csv", ["unit,cycle,a", "1,1,0.5", "1,2,inf"])
    _fails(path, line=3, match="not a finite number")


def test_csv_duplicate_timestamp(write_text):
    path = write_text("dup.csv", ["asset,timestamp,a", "x,2024-01-01,1", "x,2024-01-02,2", "x,2024-01-02,3"])
    _fails(path, line=4, match="duplicate row for unit x")


def test_csv_missing_cells_are_reported_not_errors(write_text):
    from turbofan_desktop.data import missing_report

    ds = read_dataset(write_text("gaps.csv", ["unit,cycle,a,b", "1,1,,2", "1,2,0.6,", "1,3,0.7,4"]))
    assert missing_report(ds) == {"total": 2, "rows": 2, "by_column": {"a": 1, "b": 1}}


def test_parquet_corrupt(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1" + b"\x01" * 100)
    _fails(path, match="not a readable Parquet file")


def test_parquet_duplicate_names_the_row(tmp_path):
    path = tmp_path / "dup.parquet"
    pd.DataFrame({"unit": [1, 1, 1], "cycle": [1, 2, 2], "a": [0.1, 0.2, 0.3]}).to_parquet(path)
    _fails(path, match="row 3: duplicate row for unit 1, cycle 2")


def test_npy_with_three_dimensions(tmp_path):
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((2, 3, 4)))
    _fails(path, match="expected shape (time, features)")


def test_npy_object_array_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _fails(path, match="not a readable NumPy array")


def test_npy_corrupt_header(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    _fails(path, match="not a readable NumPy array")


def test_npy_infinity_names_the_row(tmp_path):
    path = tmp_path / "spike.npy"
    array = np.zeros((5, 2))
    array[3, 0] = np.inf
    np.save(path, array)
    _fails(path, match="row 4: value inf is not a finite number")


def test_require_window_names_the_short_units(write_text):
    lines = cmapss_lines(3, 6)[:-3]  # unit 3 keeps 3 cycles
    ds = read_dataset(write_text("train_short.txt", lines))
    require_window(ds, 3)
    with pytest.raises(InsufficientDataError) as caught:
        require_window(ds, 5, what="forecast window")
    message = str(caught.value)
    assert "unit 3 (3 rows)" in message and "forecast window of 5" in message
    assert "train_short.txt" in message
