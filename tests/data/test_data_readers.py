"""Readers on the real NASA files and on hand-made tables: shapes, types, pairing, sniffing."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from cmapss_factory import cmapss_lines

from turbofan_desktop.data import UNIT, read_dataset
from turbofan_desktop.data.readers import BUILTIN_READERS, choose_reader
from turbofan_desktop.errors import DataFormatError, PluginError
from turbofan_desktop.plugins.contract import ReaderSpec

FD001_CONSTANT = ["s_1", "s_5", "s_6", "s_10", "s_16", "s_18", "s_19"]


def test_train_fd001_real_file(cmapss_dir):
    ds = read_dataset(cmapss_dir / "train_FD001.txt")
    assert ds.format == "cmapss"
    assert len(ds.units) == 100
    assert ds.n_rows == 20631
    assert ds.constant_sensors == FD001_CONSTANT
    assert list(ds.frame.columns[:5]) == [UNIT, "cycle", "setting_1", "setting_2", "setting_3"]
    assert ds.sensors == [f"s_{i}" for i in range(1, 22)]
    assert ds.frame["cycle"].dtype == np.int64 and ds.frame[UNIT].dtype == np.int64
    assert ds.time_kind == "cycle"
    assert ds.unit_lengths().loc[1] == 192  # unit 1 of FD001 runs 192 cycles
    assert ds.rul is None
    assert len(ds.file_sha256) == 64


def test_bundled_sample_matches_nasa_shape(sample_dir):
    ds = read_dataset(sample_dir / "train_FD001.txt")
    assert (len(ds.units), ds.n_rows) == (100, 20631)
    assert ds.constant_sensors == FD001_CONSTANT


def test_test_file_is_paired_with_rul_beside_it(sample_dir):
    ds = read_dataset(sample_dir / "test_FD001.txt")
    assert ds.rul is not None and len(ds.rul) == 100
    assert ds.rul_source.name == "RUL_FD001.txt"
    assert list(ds.rul.index) == sorted(ds.units)
    assert ds.rul.loc[1] == 112  # first line of RUL_FD001.txt
    assert ds.constant_sensors == FD001_CONSTANT


def test_rul_given_explicitly_for_renamed_test_file(sample_dir, tmp_path):
    renamed = tmp_path / "engines.txt"
    shutil.copy(sample_dir / "test_FD001.txt", renamed)
    assert read_dataset(renamed).rul is None
    ds = read_dataset(renamed, rul_path=sample_dir / "RUL_FD001.txt")
    assert len(ds.rul) == 100


def test_smap_channel_npy_loads_with_its_shape(smap_msl_dir):
    path = smap_msl_dir / "test" / "A-1.npy"
    array = np.load(path)
    ds = read_dataset(path)
    assert ds.format == "npy"
    assert ds.metadata["shape"] == list(array.shape)
    assert ds.units == ["A-1"] and ds.n_rows == array.shape[0]
    assert ds.time_col == "step" and ds.frame["step"].iloc[-1] == array.shape[0] - 1
    assert ds.sensors == ["value"]
    assert ds.settings == [f"cmd_{i}" for i in range(1, array.shape[1])]
    np.testing.assert_array_equal(ds.frame["value"].to_numpy(), array[:, 0])
    assert "value" not in ds.constant_sensors  # rare departures are the signal, not noise


def _asset_table() -> pd.DataFrame:
    times = pd.date_range("2024-01-01 00:00", periods=6, freq="h")
    return pd.DataFrame(
        {
            "asset": ["b", "b", "b", "a", "a", "a"],
            "timestamp": list(times[:3]) + list(times[:3]),
            "temperature": [1.5, 1.25, 1.0, 7.0, 7.5, 8.0],
            "pressure": [10, 11, 12, 13, 14, 15],
        }
    )


def test_csv_round_trip_with_timestamps(tmp_path):
    table = _asset_table()
    path = tmp_path / "fleet.csv"
    table.to_csv(path, index=False)
    ds = read_dataset(path)
    assert ds.format == "csv" and ds.time_col == "timestamp" and ds.time_kind == "timestamp"
    assert pd.api.types.is_datetime64_any_dtype(ds.frame["timestamp"])
    assert ds.units == ["a", "b"]  # sorted by unit, then time
    assert ds.sensors == ["temperature", "pressure"]
    a = ds.unit_frame("a")
    assert a["temperature"].tolist() == [7.0, 7.5, 8.0]
    assert ds.lineage.time_start == "2024-01-01T00:00:00"
    assert ds.lineage.time_end == "2024-01-01T02:00:00"


def test_parquet_round_trip_gives_the_csv_hash(tmp_path):
    table = _asset_table()
    table.to_csv(tmp_path / "fleet.csv", index=False)
    table.to_parquet(tmp_path / "fleet.parquet", index=False)
    from_csv = read_dataset(tmp_path / "fleet.csv")
    from_parquet = read_dataset(tmp_path / "fleet.parquet")
    assert from_parquet.format == "parquet" and from_parquet.time_kind == "timestamp"
    pd.testing.assert_frame_equal(from_csv.frame, from_parquet.frame)
    assert from_csv.data_hash == from_parquet.data_hash
    assert from_csv.file_sha256 != from_parquet.file_sha256


def test_csv_cycles_are_integers_and_user_named_columns(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("engine_no;t_cycle;op_setting_1;temp\n1;1;0.5;3.0\n1;2;0.5;3.5\n2;1;0.5;4.0\n")
    ds = read_dataset(path, unit_col="engine_no", time_col="t_cycle")
    assert ds.time_col == "t_cycle" and ds.frame["t_cycle"].dtype == np.int64
    assert ds.frame[UNIT].tolist() == [1, 1, 2]
    assert ds.settings == ["op_setting_1"] and ds.sensors == ["temp"]
    with pytest.raises(DataFormatError, match="runs.csv.*no unit column 'machine'"):
        read_dataset(path, unit_col="machine")


def test_table_without_unit_column_is_one_unit(tmp_path):
    path = tmp_path / "pump7.csv"
    path.write_text("cycle,vibration\n1,0.1\n2,0.2\n3,0.4\n")
    ds = read_dataset(path)
    assert ds.units == ["pump7"] and ds.time_col == "cycle"


def test_table_without_time_column_gets_steps(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("unit,a,b\n1,0.1,2\n1,0.2,3\n2,0.4,4\n")
    ds = read_dataset(path)
    assert ds.time_col == "step" and ds.frame["step"].tolist() == [0, 1, 0]


def test_sniffing_uses_content_not_extension(tmp_path, write_text):
    cmapss_as_csv = write_text("looks.csv", cmapss_lines(1, 3))
    assert read_dataset(cmapss_as_csv).format == "cmapss"
    csv_as_txt = write_text("table.txt", ["unit,cycle,x", "1,1,0.5", "1,2,0.7"])
    assert read_dataset(csv_as_txt).format == "csv"
    npy_as_dat = tmp_path / "channel.dat"
    with open(npy_as_dat, "wb") as handle:
        np.save(handle, np.ones((4, 2)))
    assert read_dataset(npy_as_dat).format == "npy"


def test_cmapss_tolerates_blank_lines_crlf_and_tabs(write_text):
    lines = cmapss_lines(2, 3)
    lines.insert(2, "")
    lines[0] = lines[0].replace(" ", "\t")
    ds = read_dataset(write_text("train_FDX.txt", lines, newline="\r\n"))
    assert ds.n_rows == 6 and len(ds.units) == 2


def test_plugin_reader_goes_through_the_same_selection(tmp_path, sample_dir):
    path = tmp_path / "engine.xyz"
    path.write_bytes(b"XYZ1\n")
    calls = []

    def read_xyz(p, **options):
        calls.append(options)
        return read_dataset(sample_dir / "train_FD001.txt")

    def broken_sniff(p, head):
        raise RuntimeError("plugin bug")

    plugins = [
        ReaderSpec("broken", (".xyz",), broken_sniff, read_xyz, priority=10),
        ReaderSpec("xyz", (".xyz",), lambda p, head: head.startswith(b"XYZ1"), read_xyz, priority=5),
    ]
    ds = read_dataset(path, extra_readers=plugins, unit_col="u")
    assert ds.n_rows == 20631 and calls == [{"unit_col": "u", "time_col": None}]
    assert choose_reader(path, b"XYZ1\n", plugins).name == "xyz"
    assert {r.name for r in BUILTIN_READERS} == {"cmapss", "csv", "parquet", "npy"}


def test_plugin_reader_returning_garbage_is_a_plugin_error(tmp_path):
    path = tmp_path / "engine.xyz"
    path.write_bytes(b"XYZ1\n")
    bad = ReaderSpec("bad", (".xyz",), lambda p, head: True, lambda p, **o: "nope", priority=1)
    with pytest.raises(PluginError, match="expected a Dataset"):
        read_dataset(path, extra_readers=[bad])


def test_interleaved_units_are_sorted_and_indexed_by_their_own_time(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("unit,cycle,x\n2,1,20\n1,1,10\n2,2,21\n1,2,11\n")
    ds = read_dataset(path)
    assert ds.frame[[UNIT, "cycle"]].values.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    by_time = ds.unit_frame_by_time(2)
    assert by_time.index.name == "cycle" and by_time["x"].to_dict() == {1: 20.0, 2: 21.0}


def test_rul_pairing_rule_is_one_rule_for_reading_and_for_choosing_files(tmp_path):
    """read_dataset's partner lookup and the GUI's pairing of chosen files share the same keys."""
    from turbofan_desktop.data.readers import pair_rul_files, rul_partner

    test, rul, other = tmp_path / "test_FD002.txt", tmp_path / "rul_fd002.txt", tmp_path / "RUL_FD003.txt"
    for path in (test, rul, other):
        path.write_text("1\n")
    assert rul_partner(test) == rul and rul_partner(tmp_path / "train_FD002.txt") is None
    pairing = pair_rul_files([test, rul, other, test])
    assert pairing.data_files == [(test, rul)] and pairing.orphan_rul_files == [other]
