"""Datasets kept by data hash, exported (plain and for DVC), and versions reproduced from them."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.cli import main
from turbofan_desktop.data import read_dataset
from turbofan_desktop.data.dataset_file import read_dataset_file, write_dataset_file
from turbofan_desktop.data.split import split_units
from turbofan_desktop.errors import DataFormatError
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.datasets import (
    cleanup_datasets,
    dataset_store,
    export_dataset,
    list_datasets,
    version_data_hashes,
)
from turbofan_desktop.services.reproduce import MissingDatasetError, reproduce
from turbofan_desktop.services.training import TrainRequest, train


def _csv_dataset(tmp_path):
    """String unit ids, timestamps and a NaN: the column kinds the canonical hash treats apart."""
    path = tmp_path / "fleet.csv"
    times = pd.date_range("2024-01-01", periods=6, freq="h")
    frame = pd.DataFrame(
        {
            "unit": ["a", "a", "a", "b", "b", "b"],
            "timestamp": [t.isoformat() for t in times],
            "setting_1": [0.5, 0.5, 0.25, 0.5, 0.5, 0.25],
            "temp": [1.0, -0.0, np.nan, 2.5, 3.0, 1e-300],
        }
    )
    frame.to_csv(path, index=False)
    return read_dataset(path)


def _npy_dataset(tmp_path):
    path = tmp_path / "A-1.npy"
    np.save(path, np.random.default_rng(0).normal(size=(50, 3)))
    return read_dataset(path)


@pytest.mark.parametrize("kind", ["cmapss", "csv", "npy", "split"])
def test_dataset_file_round_trip_keeps_the_data_hash(tmp_path, fd001_small, kind):
    if kind == "csv":
        ds = _csv_dataset(tmp_path)
    elif kind == "npy":
        ds = _npy_dataset(tmp_path)
    else:
        ds = read_dataset(fd001_small["train"])
        if kind == "split":
            ds = split_units(ds, val_fraction=0.3, seed=4).apply(ds)[0]
    path = tmp_path / "out" / "kept.parquet"
    write_dataset_file(ds, path)
    again = read_dataset_file(path)
    assert again.data_hash == ds.data_hash
    assert (again.sensors, again.settings, again.time_kind) == (ds.sensors, ds.settings, ds.time_kind)
    assert again.units == ds.units
    # the app's own readers (what a user opens) give the same hash too
    opened = read_dataset(path)
    assert opened.data_hash == ds.data_hash
    assert opened.format == "parquet" and opened.source == path


def test_a_changed_stored_file_is_refused_by_the_store_and_read_plainly_by_the_reader(tmp_path, fd001_small):
    import fastparquet

    ds = read_dataset(fd001_small["train"])
    good = tmp_path / "good.parquet"
    write_dataset_file(ds, good)
    footer = fastparquet.ParquetFile(str(good)).key_value_metadata
    changed = ds.frame.copy()
    changed.loc[0, "s_2"] += 1.0
    bad = tmp_path / "bad.parquet"
    fastparquet.write(str(bad), changed, write_index=False, custom_metadata=dict(footer))
    with pytest.raises(DataFormatError, match="data hash differs"):
        read_dataset_file(bad)
    plain = read_dataset(bad)  # still readable as an ordinary table, with its own (new) hash
    assert plain.data_hash != ds.data_hash


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fd001_small):
    """A registry with a tiny telemanom (s_2) and a tiny transformer version trained on the same file."""
    require_plugin("telemanom")
    require_plugin("transformer")
    with pytest.MonkeyPatch.context() as patch:
        # one torch thread, as every test's reproduce uses: a sum split over other thread counts
        # rounds differently (the function-scoped isolated_home has not set it yet here)
        patch.setenv("TURBOFAN_TORCH_THREADS", "1")
        ws = Workspace.open(tmp_path_factory.mktemp("datasets_registry"))
    assert ws.settings.torch_threads == 1
    versions = {}
    for plugin, targets in (("telemanom", ["s_2"]), ("transformer", None)):
        summary = train(
            ws,
            TrainRequest(plugin=plugin, data_path=fd001_small["train"], targets=targets, config=TINY[plugin]),
        )
        assert summary.failed == 0, summary.to_dict()
        versions[plugin] = summary.registered[0]
    yield ws, versions
    ws.close()


def test_training_keeps_the_source_whole_and_its_splits_by_reference(trained, fd001_small):
    ws, versions = trained
    uses = {use.entry.data_hash: use for use in list_datasets(ws)}
    record = ws.registry.get(versions["telemanom"])
    hashes = version_data_hashes(record)
    source = uses[hashes["source"]]
    assert source.entry.kind == "file" and source.entry.source == str(fd001_small["train"].resolve())
    assert uses[hashes["train"]].entry.parent == hashes["source"]
    assert uses[hashes["validation split"]].entry.parent == hashes["source"]
    # both versions used the same file with the same seed: kept once, used by both
    assert sorted(source.used_by) == sorted(versions.values())
    # the Transformer (a RUL model) fitted on the same engines but kept half of its held-out engines
    # apart as calibration engines: its own validation and test splits, each kept by reference
    transformer = version_data_hashes(ws.registry.get(versions["transformer"]))
    assert transformer["train"] == hashes["train"]
    assert transformer["validation split"] != hashes["validation split"]
    assert uses[transformer["validation split"]].entry.parent == hashes["source"]
    assert len(uses) == 5  # source, train, two validation splits, the Transformer's test split
    train_split = dataset_store(ws).load(hashes["train"])
    assert train_split.data_hash == hashes["train"]


def test_export_reads_back_with_the_same_hash(trained, tmp_path, capsys):
    ws, versions = trained
    record = ws.registry.get(versions["telemanom"])
    train_hash = record.lineage["data_hash"]
    code = main(["datasets", "export", train_hash[:10], "-o", str(tmp_path / "train.parquet"),
                 "--registry", str(ws.registry.home)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "same data hash" in out
    assert read_dataset(tmp_path / "train.parquet").data_hash == train_hash


def test_dataset_commands_refuse_bad_input_with_a_sentence(trained, tmp_path, capsys):
    ws, _ = trained
    reg = ["--registry", str(ws.registry.home)]
    assert main(["datasets", "show", "xyz", *reg]) == 2
    assert "is not a data hash" in capsys.readouterr().err
    assert main(["datasets", "show", "0" * 64, *reg]) == 2
    assert "stores no dataset" in capsys.readouterr().err
    some = list_datasets(ws)[0].entry.data_hash
    assert main(["datasets", "export", some, "-o", str(tmp_path / "x.csv"), *reg]) == 2
    assert "as Parquet" in capsys.readouterr().err
    assert main(["datasets", "export", some, "--dvc", str(tmp_path), *reg]) == 2
    assert "not a DVC repository" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_list_and_show_through_the_cli(trained, capsys):
    ws, versions = trained
    reg = ["--registry", str(ws.registry.home)]
    assert main(["datasets", "list", "--json", *reg]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 5  # as in test_training_keeps_the_source_whole_and_its_splits_by_reference
    source = next(d for d in listed if d["kind"] == "file")
    assert main(["datasets", "show", source["data_hash"][:8], *reg]) == 0
    out = capsys.readouterr().out
    assert f"Dataset {source['data_hash']}" in out and "used by:" in out


@pytest.mark.parametrize("plugin", ["telemanom", "transformer"])
def test_reproduce_is_identical_on_the_same_machine(trained, plugin, capsys):
    ws, versions = trained
    version_id = versions[plugin]
    code = main(["models", "reproduce", str(version_id), "--registry", str(ws.registry.home)])
    out = capsys.readouterr().out
    print(out)  # the report shows it (pytest -s)
    assert code == 0, out
    assert out.strip().endswith("identical")
    report = reproduce(ws, version_id)
    assert report.identical
    assert report.weights is not None and report.weights.same
    assert {c.name for c in report.data} == {"source", "train split", "validation split"}
    assert report.metrics and all(c.same for c in report.metrics)


def test_reproduce_reports_differences_with_their_sizes(trained):
    ws, versions = trained
    record = ws.registry.get(versions["telemanom"])
    # the same version with another seed: same data, different weights and metrics
    changed = dict(record.config, seed=int(record.config["seed"]) + 1)
    ws.registry.tables.ModelVersion.update(config=changed).where(
        ws.registry.tables.ModelVersion.id == record.id
    ).execute()
    try:
        report = reproduce(ws, record.id)
    finally:
        ws.registry.tables.ModelVersion.update(config=record.config).where(
            ws.registry.tables.ModelVersion.id == record.id
        ).execute()
    assert not report.identical
    assert all(c.same for c in report.data)
    assert not report.weights.same
    assert report.weight_differences
    row = report.weight_differences[0]
    assert row["differing"] > 0 and row["max_abs_difference"] > 0


def test_a_version_whose_data_is_gone_says_which_data_it_needs(tmp_path, fd001_small, capsys):
    require_plugin("telemanom")
    source_file = tmp_path / "train_copy.txt"
    shutil.copyfile(fd001_small["train"], source_file)
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(
            ws,
            TrainRequest(
                plugin="telemanom", data_path=source_file, targets=["s_2"], config=TINY["telemanom"]
            ),
        )
        version_id = summary.registered[0]
        source_hash = ws.registry.get(version_id).provenance.source.data_hash
        store = dataset_store(ws)
        for entry in store.entries():
            store.remove(entry.data_hash)
        with pytest.raises(MissingDatasetError):
            reproduce(ws, version_id)
    code = main(["models", "reproduce", str(version_id), "--registry", str(tmp_path / "reg")])
    err = capsys.readouterr().err
    assert code == 2
    assert source_hash in err and str(source_file.resolve()) in err
    # the data given back as a file: reproduced again
    code = main(
        [
            "models",
            "reproduce",
            str(version_id),
            "--data",
            str(source_file),
            "--registry",
            str(tmp_path / "reg"),
        ]
    )
    assert code == 0, capsys.readouterr()
    # a file with other values is refused with both hashes
    other = tmp_path / "other.txt"
    other.write_text(source_file.read_text().replace("\n", " \n", 1).replace("641.82", "641.83", 1))
    assert (
        main(
            [
                "models",
                "reproduce",
                str(version_id),
                "--data",
                str(other),
                "--registry",
                str(tmp_path / "reg"),
            ]
        )
        == 2
    )
    assert source_hash in capsys.readouterr().err


def test_cleanup_keeps_what_versions_use_and_the_cap_only_warns(tmp_path, fd001_small, monkeypatch, caplog):
    require_plugin("telemanom")
    with Workspace.open(tmp_path / "reg") as ws:
        request = TrainRequest(
            plugin="telemanom", data_path=fd001_small["train"], targets=["s_2"], config=TINY["telemanom"]
        )
        version_id = train(ws, request).registered[0]
        assert cleanup_datasets(ws).removed == []
        ws.registry.delete(version_id)
        dry = cleanup_datasets(ws, dry_run=True)
        assert len(dry.removed) == 3 and len(dataset_store(ws).entries()) == 3
        done = cleanup_datasets(ws)
        assert len(done.removed) == 3 and done.freed_bytes > 0
        assert dataset_store(ws).entries() == []

    monkeypatch.setenv("TURBOFAN_DATASET_STORE_MB", "0.001")
    with Workspace.open(tmp_path / "reg2") as ws, caplog.at_level(logging.WARNING):
        summary = train(ws, request)
        assert summary.failed == 0  # the cap never fails a training
        assert dataset_store(ws).entries() == []
    assert "dataset_store_mb" in caplog.text


def test_validation_on_a_file_keeps_that_file(trained, fd001_small):
    from turbofan_desktop.services.validation import validate

    ws, versions = trained
    summary = validate(ws, [versions["telemanom"]], data_path=fd001_small["test"])
    assert summary.results[0].ok, summary.to_dict()
    test_hash = summary.results[0].data_hash
    assert dataset_store(ws).has(test_hash)
    use = next(u for u in list_datasets(ws) if u.entry.data_hash == test_hash)
    assert use.used_by == {versions["telemanom"]: ["validated on"]}


def test_dvc_pointer_keeps_dvc_status_clean(trained, tmp_path):
    beside = Path(sys.executable).with_name("dvc")  # the venv's own, when it has the [dvc] extra
    dvc = str(beside) if beside.is_file() else shutil.which("dvc")
    if dvc is None:
        pytest.skip("dvc is not installed (pip install '.[dvc]')")
    ws, versions = trained
    repo = tmp_path / "dvcrepo"
    repo.mkdir()
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    source_hash = version_data_hashes(ws.registry.get(versions["telemanom"]))["source"]
    result = export_dataset(ws, source_hash, dvc_repo=repo)
    assert result.same_hash and result.dvc_file == repo / f"{result.path.name}.dvc"
    status = subprocess.run([dvc, "status", "--json"], cwd=repo, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout or "{}") == {}, status.stdout
    # the pointer notices a changed file
    result.path.write_bytes(result.path.read_bytes() + b"\0")
    status = subprocess.run([dvc, "status", "--json"], cwd=repo, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout) != {}


def test_a_negative_dataset_store_cap_is_refused_with_a_sentence(tmp_path):
    from turbofan_desktop.config import load_settings
    from turbofan_desktop.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset_store_mb"):
        load_settings(env={"TURBOFAN_DATASET_STORE_MB": "-1"}, config_file=tmp_path / "none.toml")
    assert (
        load_settings(
            env={"TURBOFAN_DATASET_STORE_MB": "0"}, config_file=tmp_path / "none.toml"
        ).dataset_store_mb
        == 0
    )
