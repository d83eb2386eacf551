"""Issue 20, class 1: a text file of one very long line (or very many columns) must not take memory
out of proportion to its size. Readers refuse such lines before any parser sees them, naming the file
and the line. The limits are lowered here so that the hostile files stay small; the real sizes are
measured by benchmarks/load_speed.py (the long-line case)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from data_faults_helpers import assert_refused, run_cli, small_train_file

from turbofan_desktop.data import read_dataset, validation
from turbofan_desktop.errors import DataFormatError

LIMIT = 4096


@pytest.fixture
def low_limits(monkeypatch):
    monkeypatch.setattr(validation, "MAX_LINE_BYTES", LIMIT)
    monkeypatch.setattr(validation, "MAX_COLUMNS", 200)


def _numbers(count: int, separator: str) -> str:
    return separator.join(f"{i % 10}.5" for i in range(count))


@pytest.fixture
def registry(isolated_home, capsys):
    code, _, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    return isolated_home


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("one_line.txt", _numbers(5000, " "), 1),  # C-MAPSS-like: numbers and spaces only
        ("one_line.csv", _numbers(5000, ","), 1),
        ("no_break.txt", _numbers(5000, " ") + "\n", 1),
        ("late.txt", "1 1 0.5\n1 2 0.5\n" + _numbers(5000, " ") + "\n1 3 0.5\n", 3),
        ("late.csv", "unit,cycle,s_1\n1,1,0.5\n" + _numbers(5000, ",") + "\n", 3),
        ("tabs.tsv", "unit\tcycle\ts_1\n" + _numbers(5000, "\t"), 2),
    ],
)
def test_long_line_is_refused_with_its_line(capsys, registry, low_limits, tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    sentence = assert_refused(capsys, registry, ["inspect", str(path)], str(path), f"line {line}")
    assert "longer than 4.0 KB" in sentence


def test_long_line_in_training_data_records_nothing(capsys, registry, low_limits, tmp_path):
    path = tmp_path / "train_long.txt"
    path.write_text(small_train_file(tmp_path).read_text() + _numbers(5000, " ") + "\n")
    argv = ["train", str(path), "--model", "telemanom", "--sensor", "s_2", "--set", "epochs=1"]
    assert_refused(capsys, registry, argv, str(path), "longer than")


def test_long_line_in_a_rul_file(capsys, registry, low_limits, tmp_path):
    test = tmp_path / "test_FD001.txt"
    test.write_text("1 1 " + " ".join(["0.5"] * 24) + "\n1 2 " + " ".join(["0.6"] * 24) + "\n")
    rul = tmp_path / "RUL_FD001.txt"
    rul.write_text(_numbers(5000, " "))
    assert_refused(capsys, registry, ["inspect", str(test)], str(rul), "line 1")


def test_wide_first_row_is_refused_before_parsing(low_limits, tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text(" ".join(["1"] * 1000) + "\n")  # 2 KB: under the line limit, 1000 values
    with pytest.raises(DataFormatError, match=r"line 1: found 1,000 values \(expected 26"):
        read_dataset(path)


def test_too_many_columns_is_refused(capsys, registry, low_limits, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"s{i}" for i in range(300)) + "\n" + ",".join(["1"] * 300) + "\n")
    sentence = assert_refused(capsys, registry, ["inspect", str(path)], str(path), "300 columns")
    assert "more than the 200" in sentence


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("limit", [10, 11, 64])
def test_line_scan_across_block_boundaries(monkeypatch, tmp_path, limit, ending):
    """Lines of exactly the limit pass, one byte more fails and is named by its number, wherever the
    block boundaries fall (blocks of 7 bytes split lines and CRLF pairs) and whatever ends a line."""
    monkeypatch.setattr(validation, "_SCAN_BLOCK", 7)
    ok = tmp_path / "ok.txt"
    ok.write_bytes(ending.join([b"x" * limit] * 9 + [b""]))
    validation.check_line_lengths(ok, limit)
    for index in range(9):
        lines = [b"x" * limit] * 9
        lines[index] = b"y" * (limit + 1)
        bad = tmp_path / f"bad{index}.txt"
        bad.write_bytes(ending.join(lines))
        with pytest.raises(DataFormatError, match=f"line {index + 1}: the line is longer"):
            validation.check_line_lengths(bad, limit)


def test_a_file_of_lone_carriage_returns_still_reads(tmp_path):
    path = tmp_path / "old_mac.txt"
    rows = [f"1 {cycle} " + " ".join(["0.5"] * 3) + f" {cycle}.5" + " 1.0" * 20 for cycle in range(1, 4)]
    path.write_bytes("\r".join(rows).encode() + b"\r")
    assert read_dataset(path).n_rows == 3


def test_binary_tables_are_refused_when_they_would_decode_too_large(monkeypatch, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(validation, "MAX_DECODED_BYTES", 1000)
    table = pa.table({"unit": [1] * 100, "cycle": list(range(100)), "s_1": [0.5] * 100})
    parquet = tmp_path / "big.parquet"
    pq.write_table(table, parquet)
    with pytest.raises(DataFormatError, match="would take .* in memory"):
        read_dataset(parquet)
    array = tmp_path / "big.npy"
    np.save(array, np.zeros((200, 2)))
    with pytest.raises(DataFormatError, match="would take .* in memory"):
        read_dataset(array)


def test_ordinary_files_still_read(tmp_path):
    dataset = read_dataset(small_train_file(tmp_path))
    assert len(dataset.units) == 6


def test_default_limit_in_a_fresh_process(tmp_path):
    """The real limit, end to end, in a subprocess (where an abort would show as a signal): a 1.5 MB
    line of numbers is one sentence and exit 2, found after reading two 1 MB blocks."""
    path = tmp_path / "one_line.txt"
    path.write_text(_numbers(400_000, " "))
    assert path.stat().st_size > validation.MAX_LINE_BYTES
    home = tmp_path / "home"
    env = {**os.environ, "TURBOFAN_HOME": str(home), "TURBOFAN_CONFIG_DIR": str(home / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "inspect", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert f"{path}, line 1: the line is longer than 1.0 MB" in done.stderr
