"""Issue 20, class 5: Parquet files with unusual but valid column types, as pyarrow writes them
(float16, every integer width, nullable pandas dtypes, decimals, dictionaries) are read; types with
no single number per row (raw binary, lists) are refused with one sentence naming the file and the
column. Nothing ends in a crash (float16 used to crash every command with a UnicodeDecodeError)."""

from __future__ import annotations

import datetime
import decimal

import numpy as np
import pandas as pd
import pytest
from data_faults_helpers import assert_refused, run_cli

from turbofan_desktop.data import read_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N = 12
VALUES = np.linspace(0.0, 3.0, N)
GAP = np.arange(N) == 3  # row 4 is missing in the nullable columns


def _readable() -> dict[str, object]:
    half = VALUES.astype(np.float16)
    return {
        "float16": (pa.array(half), half.astype(np.float64)),
        "float16_nullable": (pa.array(half, mask=GAP), np.where(GAP, np.nan, half.astype(np.float64))),
        "float32": (pa.array(VALUES.astype(np.float32)), VALUES.astype(np.float32).astype(np.float64)),
        **{
            kind: (pa.array(np.arange(N, dtype=kind)), np.arange(N, dtype=np.float64))
            for kind in ("int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64")
        },
        "int64_nullable": (pa.array(np.arange(N), mask=GAP), np.where(GAP, np.nan, np.arange(N))),
        "bool_nullable": (pa.array(np.arange(N) % 2 == 0, mask=GAP), np.where(GAP, np.nan, 1.0 - np.arange(N) % 2)),
        "decimal": (pa.array([decimal.Decimal("1.25") + i for i in range(N)], pa.decimal128(6, 2)), 1.25 + np.arange(N)),
        "dictionary": (pa.array(VALUES).dictionary_encode(), VALUES),
        "all_null": (pa.nulls(N, pa.float64()), np.full(N, np.nan)),
    }  # fmt: skip


def _write(path, column) -> None:
    table = pa.table({"unit": [1] * N, "cycle": list(range(1, N + 1)), "s_1": VALUES, "x": column})
    pq.write_table(table, path)


@pytest.mark.parametrize("kind", list(_readable()))
def test_numeric_widths_and_nullable_types_are_read(tmp_path, kind):
    column, expected = _readable()[kind]
    path = tmp_path / f"{kind}.parquet"
    _write(path, column)
    dataset = read_dataset(path)
    np.testing.assert_array_equal(dataset.frame["x"].to_numpy(dtype=np.float64), expected)


@pytest.mark.parametrize("dtype", ["Int64", "Float32", "boolean", "UInt8", "float16", "Int16"])
def test_pandas_nullable_dtypes_written_by_pyarrow(capsys, tmp_path, dtype):
    values = [1, 0, None, 1] * 3 if dtype in ("boolean",) else [1, 2, None, 4] * 3
    if dtype == "float16":
        values = np.array([1.5, 2.5, np.nan, 4.0] * 3, dtype=np.float16)
    frame = pd.DataFrame(
        {"unit": [1] * 12, "cycle": range(1, 13), "s_1": VALUES, "x": pd.array(values, dtype=dtype)}
    )
    path = tmp_path / f"pandas_{dtype}.parquet"
    frame.to_parquet(path, engine="pyarrow")
    code, out, err = run_cli(capsys, "inspect", str(path))
    assert code == 0, err
    assert "Traceback" not in err and "Rows:             12" in out
    assert np.isnan(read_dataset(path).frame["x"].to_numpy()[2])


@pytest.mark.parametrize(
    ("kind", "column", "problem"),
    [
        ("binary", pa.array([b"\x00\xff"] * N), "raw binary values"),
        ("fixed_binary", pa.array([b"\x01\x02\x03"] * N, pa.binary(3)), "raw binary values"),
        ("fixed_binary_2", pa.array([b"ab"] * N, pa.binary(2)), "raw binary values"),
        ("large_binary", pa.array([b"\xbd\x2a"] * N, pa.large_binary()), "raw binary values"),
        ("list", pa.array([[1.0, 2.0]] * N), "nested values"),
        ("text", pa.array(["high"] * N), "'high' is not a number"),
        ("date", pa.array([datetime.date(2020, 1, 1 + i) for i in range(N)]), "holds timestamps"),
        ("timestamp_tz", pa.array(pd.date_range("2020", periods=N, tz="UTC")), "holds timestamps"),
    ],
)
def test_columns_without_one_number_per_row_are_refused(
    capsys, isolated_home, tmp_path, kind, column, problem
):
    path = tmp_path / f"{kind}.parquet"
    _write(path, column)
    assert run_cli(capsys, "models", "list")[0] == 0  # the registry exists: "unchanged" compares it
    for command in (["inspect", str(path)], ["train", str(path), "--model", "telemanom", "--sensor", "s_1"]):
        sentence = assert_refused(capsys, isolated_home, command, str(path), "column x", problem)
        assert "np.float64" not in sentence


def test_float16_target_trains_through_the_cli(capsys, isolated_home, tmp_path):
    """The case that crashed every command: a float16 sensor, read and used like any other."""
    units = np.repeat(np.arange(1, 5), 40)
    cycles = np.tile(np.arange(1, 41), 4)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"unit": units, "cycle": cycles, "s_1": (rng.normal(size=160) + cycles / 10).astype(np.float16)}
    )
    path = tmp_path / "half.parquet"
    frame.to_parquet(path, engine="pyarrow")
    code, out, err = run_cli(capsys, "inspect", str(path), "--json")
    assert code == 0, err
    assert "s_1" in out and "Traceback" not in err
