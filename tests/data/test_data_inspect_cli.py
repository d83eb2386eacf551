"""``turbofan-desktop inspect``: JSON keys and values, text form, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

from cmapss_factory import cmapss_lines

from turbofan_desktop.cli import main

REQUIRED_KEYS = {
    "format",
    "units",
    "rows",
    "time_start",
    "time_end",
    "sensors",
    "constant_sensors",
    "regimes",
    "missing_values",
    "data_hash",
    "file_sha256",
}


def _inspect_json(capsys, *args) -> dict:
    assert main(["inspect", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_train_fd001_json(capsys, sample_dir):
    report = _inspect_json(capsys, sample_dir / "train_FD001.txt")
    assert set(report) >= REQUIRED_KEYS
    assert (report["format"], report["units"], report["rows"]) == ("cmapss", 100, 20631)
    assert (report["time_start"], report["time_end"]) == (1, 362)
    assert report["constant_sensors"] == ["s_1", "s_5", "s_6", "s_10", "s_16", "s_18", "s_19"]
    assert report["regimes"] == 1 and report["missing_values"] == 0
    assert len(report["sensors"]) == 21 and "rul_file" not in report


def test_inspect_test_file_reports_its_rul_partner(capsys, sample_dir):
    report = _inspect_json(capsys, sample_dir / "test_FD001.txt")
    assert report["rul_file"].endswith("RUL_FD001.txt") and report["rul_rows"] == 100


def test_inspect_fd002_reports_six_regimes(capsys, cmapss_dir):
    report = _inspect_json(capsys, cmapss_dir / "train_FD002.txt")
    assert report["regimes"] == 6 and report["units"] == 260


def test_inspect_csv_with_named_columns_and_text_output(capsys, tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_text("machine;when;temp\nm1;2024-01-01T00:00;1.0\nm1;2024-01-01T01:00;\n")
    assert main(["inspect", str(path), "--unit-col", "machine", "--time-col", "when"]) == 0
    text = capsys.readouterr().out
    assert "Format:           csv" in text and "Missing values:   1" in text
    assert "2024-01-01T00:00:00 .. 2024-01-01T01:00:00" in text


def test_inspect_bad_file_exits_2_with_one_sentence(capsys, write_text):
    lines = cmapss_lines(1, 4)
    lines[2] = lines[2].replace("518.6700", "oops")
    path = write_text("bad.txt", lines)
    assert main(["inspect", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}, line 3, column s_1: 'oops' is not a number" in captured.err
    assert "Traceback" not in captured.err


def test_inspect_subprocess_no_traceback(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and "empty" in result.stderr
    assert "Traceback" not in result.stderr
