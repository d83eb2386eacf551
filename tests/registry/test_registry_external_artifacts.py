"""A server registry whose artifacts live outside its database (``--artifacts`` / setting
``artifacts``): a folder (a network mount in real use) or an fsspec URL. Content-addressed objects,
verified on load, never deleted while a version names them, orphans found and repaired."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
from registry_helpers import artifact_writer, make_lineage

from turbofan_desktop.errors import ConfigError, RegistryError
from turbofan_desktop.registry import Registry

pytestmark = pytest.mark.postgres_only


def _register(registry: Registry, dataset_id: int, payload: bytes, target: str = "sensor_2"):
    return registry.register_version(
        run_id=None, plugin="telemanom", target=target, dataset_id=dataset_id, config={}, history=[],
        metrics={"mse": 0.1}, validation_performed=False, validation_metrics=None,
        validation_data_hash=None, training_seconds=0.1, library_versions={},
        write_artifact=artifact_writer(payload),
    )  # fmt: skip


@pytest.fixture
def shared(fresh_postgres, tmp_path, backend):
    folder = tmp_path / "share" / "models"
    with Registry.open(fresh_postgres, cache_root=tmp_path / "cache", artifacts=folder) as registry:
        yield registry, folder


def test_artifacts_go_to_the_folder_as_content_addressed_objects_and_load_verified(shared, tmp_path, backend):
    registry, folder = shared
    dataset = registry.record_dataset(make_lineage())
    one = _register(registry, dataset, b"weights-one")
    same = _register(registry, dataset, b"weights-one", target="sensor_3")  # identical bytes
    other = _register(registry, dataset, b"weights-two")
    assert one.artifact_sha256 == same.artifact_sha256 != other.artifact_sha256
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        {f"{one.artifact_sha256}.tar", f"{other.artifact_sha256}.tar"}
    )
    blobs = registry.db.execute_sql("SELECT count(*) FROM artifact_blobs").fetchone()[0]
    assert blobs == 0  # nothing in the database

    # a colleague with an empty cache loads from the folder, checked against the sha256
    with Registry.open(registry.location, cache_root=tmp_path / "cache2", artifacts=folder) as colleague:
        loaded = colleague.artifact_dir(other.id)
        assert (loaded / "weights.pt").read_bytes() == b"weights-two"
        # damage the shared object: the next load (cache cleared) refuses it
        shutil.rmtree(loaded)
        (folder / f"{other.artifact_sha256}.tar").write_bytes(b"not a tar at all")
        with pytest.raises(RegistryError):
            colleague.artifact_dir(other.id)
        assert not colleague.check().ok

    # deleting one of two versions sharing an object keeps it; deleting the second removes it
    registry.delete(one.id)
    assert (folder / f"{one.artifact_sha256}.tar").is_file()
    registry.delete(same.id)
    assert not (folder / f"{one.artifact_sha256}.tar").exists()


def test_an_object_no_version_names_is_an_orphan_that_repair_keeps_in_quarantine(shared, backend):
    registry, folder = shared
    dataset = registry.record_dataset(make_lineage())
    kept = _register(registry, dataset, b"kept")
    stray, left = folder / f"{'ab' * 32}.tar", b"left by an interrupted registration"
    stray.write_bytes(left)
    (folder / f".{'cd' * 32}.0123.tmp").write_bytes(b"half an upload")  # never listed as an artifact

    report = registry.check()
    orphans = [p for p in report.problems if p["kind"] == "orphan_artifact"]
    assert [p["artifact"] for p in orphans] == ["ab" * 32]
    assert str(folder) in orphans[0]["message"]
    repaired = registry.check(repair=True)
    assert any(p["kind"] == "orphan_artifact" for p in repaired.repaired)
    assert not stray.exists()
    assert (registry.artifacts.quarantine / f"{'ab' * 32}.tar").read_bytes() == left
    assert registry.check().ok
    assert (registry.artifact_dir(kept.id) / "weights.pt").read_bytes() == b"kept"


def test_a_registration_whose_row_does_not_commit_leaves_no_object(shared, backend):
    registry, folder = shared
    with pytest.raises(Exception, match="Dataset 999"):
        _register(registry, 999, b"never committed")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(importlib.util.find_spec("fsspec") is None, reason="fsspec is not installed")
def test_an_fsspec_url_holds_the_artifacts(fresh_postgres, tmp_path, backend):
    import fsspec

    url = f"memory://turbofan-test-{tmp_path.name}/models"
    with Registry.open(fresh_postgres, cache_root=tmp_path / "cache", artifacts=url) as registry:
        dataset = registry.record_dataset(make_lineage())
        version = _register(registry, dataset, b"in memory")
        fs = fsspec.filesystem("memory")
        assert fs.exists(f"/turbofan-test-{tmp_path.name}/models/{version.artifact_sha256}.tar")
        shutil.rmtree(registry.artifacts.path_of(version.artifact_path))  # the local cache copy
        assert (registry.artifact_dir(version.id) / "weights.pt").read_bytes() == b"in memory"
        assert registry.check().ok


def test_without_fsspec_a_url_is_one_sentence(fresh_postgres, tmp_path, monkeypatch, backend):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fsspec" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"s3://bucket/models.*needs the fsspec package"):
        Registry.open(fresh_postgres, cache_root=tmp_path / "cache", artifacts="s3://bucket/models")


def test_the_cli_takes_artifacts_beside_registry(cli, fresh_postgres, tmp_path, backend):
    folder = tmp_path / "share"
    with Registry.open(fresh_postgres, cache_root=tmp_path / "cache", artifacts=folder) as registry:
        version = _register(registry, registry.record_dataset(make_lineage()), b"cli")
    code, data, err = cli(
        "models", "list", "--registry", fresh_postgres, "--artifacts", str(folder), "--json"
    )
    assert code == 0, err
    assert [row["id"] for row in data] == [version.id]
    code, data, err = cli(
        "registry", "check", "--registry", fresh_postgres, "--artifacts", str(folder), "--json"
    )
    assert code == 0 and data["ok"], (data, err)
