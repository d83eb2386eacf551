"""Registering, reading and listing versions; datasets, runs, KPI history, feedback, artifacts."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
from registry_helpers import (
    artifact_writer,
    change_artifact,
    make_lineage,
    make_provenance,
    remove_artifact,
)

from turbofan_desktop.data.dataset import LINEAGE_FIELDS
from turbofan_desktop.errors import ConfigError, NotFoundError, RegistryError
from turbofan_desktop.registry import Registry, TrainedOn, TrainingProvenance, artifact_sha256
from turbofan_desktop.registry.db import is_postgres
from turbofan_desktop.registry.migrations import LATEST_VERSION, schema_version
from turbofan_desktop.registry.records import PROVENANCE_COLUMNS, provenance_to_row
from turbofan_desktop.registry.schema import bind_tables


def _leftovers(registry: Registry) -> list[str]:
    root = registry.artifacts.root
    return sorted(p.name for p in root.iterdir() if p.name != ".staging") + sorted(
        p.name for p in registry.artifacts.staging.iterdir()
    )


def test_register_get_roundtrip(registry, make_version, dataset_id):
    rec = make_version(validated=True, provenance=make_provenance())
    got = registry.get(rec.id)
    assert got == rec
    assert (rec.plugin, rec.target, rec.version, rec.stage, rec.status) == (
        "telemanom",
        "sensor_2",
        1,
        "none",
        "trained",
    )
    assert rec.config == {"epochs": 1, "window": 10}
    assert rec.history == [{"epoch": 1, "loss": 0.5, "val_loss": 0.6}]
    assert rec.validation_performed and rec.validation_metrics == {"f1": 0.8}
    assert rec.validation_data_hash == "hash-val"
    assert rec.training_seconds == 1.25 and rec.library_versions["torch"] == "2.13"
    assert rec.provenance == make_provenance()
    assert rec.dataset_id == dataset_id
    assert rec.lineage["data_hash"] == "hash-a" and rec.lineage["num_samples"] == 120
    assert rec.lineage["preprocessing"] == [{"step": "drop_constant", "columns": ["sensor_1"]}]
    folder = registry.artifact_dir(rec.id)
    assert folder == Path(rec.artifact_path).resolve() and folder.parent == registry.artifacts.root
    assert (folder / "weights.pt").read_bytes() == b"state-dict-bytes-1"  # the first version of the test
    assert artifact_sha256(folder) == rec.artifact_sha256
    assert _leftovers(registry) == [folder.name]  # nothing left in staging


def test_to_dict_has_the_models_list_shape(make_version):
    data = json.loads(json.dumps(make_version().to_dict()))
    for key in ("id", "plugin", "target", "version", "stage", "status", "validation_performed", "metrics"):
        assert key in data
    for key in ("data_hash", "source", "time_start", "time_end", "num_samples"):
        assert key in data["lineage"]
    assert data["lineage"]["time_start"] == 1 and data["lineage"]["time_end"] == 45


def test_dataset_is_recorded_once_per_hash_and_source(registry):
    first = registry.record_dataset(make_lineage("a"))
    assert registry.record_dataset(make_lineage("a")) == first
    assert registry.record_dataset(make_lineage("a", source="other.csv")) != first
    assert registry.record_dataset(make_lineage("b")) != first
    assert registry.get_dataset(first).to_dict()["unit_ids"] == [1, 2, 3]
    with pytest.raises(ConfigError, match="data_hash"):
        registry.record_dataset({"source": "x", "format": "csv", "units": 1, "rows": 1})


def test_versions_count_per_plugin_and_target(make_version):
    assert [make_version("telemanom", "sensor_2").version for _ in range(3)] == [1, 2, 3]
    assert make_version("telemanom", "sensor_3").version == 1
    assert make_version("transformer", "sensor_2").version == 1
    assert make_version("transformer", "*").version == 1


def test_list_filters_pages_newest_first(registry, make_version):
    made = [
        make_version(plugin, target) for plugin in ("telemanom", "transformer") for target in ("s1", "s2")
    ] * 1
    made += [make_version("telemanom", "s1") for _ in range(3)]
    ids_newest_first = sorted((r.id for r in made), reverse=True)
    assert [r.id for r in registry.list_versions()] == ids_newest_first
    assert [r.id for r in registry.list_versions(limit=2, offset=1)] == ids_newest_first[1:3]
    only = registry.list_versions(plugin="telemanom", target="s1")
    assert [r.version for r in only] == [4, 3, 2, 1]
    assert registry.count_versions(plugin="telemanom", target="s1") == 4
    assert registry.count_versions(plugin="transformer") == 2
    assert registry.count_versions(stage="production") == 0
    assert registry.count_versions() == len(made)
    assert registry.latest("telemanom", "s1").version == 4
    assert registry.production("telemanom", "s1") is None
    with pytest.raises(ConfigError, match="stage 'prod'"):
        registry.list_versions(stage="prod")
    with pytest.raises(ConfigError):
        registry.list_versions(limit=0)
    with pytest.raises(ConfigError):
        registry.list_versions(offset=-1)


def test_get_unknown_version_names_it(registry):
    with pytest.raises(NotFoundError, match="Model version 42 does not exist"):
        registry.get(42)


def test_failing_artifact_writer_leaves_nothing(registry, make_version):
    def explode(folder: Path) -> None:
        (folder / "weights.pt").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        make_version(write_artifact=explode)
    with pytest.raises(RegistryError, match="no files"):
        make_version(write_artifact=lambda folder: None)
    assert registry.count_versions() == 0
    assert _leftovers(registry) == []
    assert registry.check().ok


def test_failing_row_removes_the_artifact(registry, make_version):
    with pytest.raises(NotFoundError, match="Dataset 999"):
        make_version(dataset_id=999)
    with pytest.raises(NotFoundError, match="Training run 77"):
        make_version(run_id=77)
    assert registry.count_versions() == 0
    assert _leftovers(registry) == []


def test_tampered_artifact_is_refused_naming_the_version(registry, make_version):
    rec = make_version()

    def flip_a_bit(folder: Path) -> None:
        weights = folder / "weights.pt"
        data = bytearray(weights.read_bytes())
        data[0] ^= 0x01
        weights.write_bytes(bytes(data))

    change_artifact(registry, rec, flip_a_bit)
    with pytest.raises(RegistryError, match=rf"\(#{rec.id}\).*modified or damaged"):
        registry.artifact_dir(rec.id)
    report = registry.check(repair=True)
    assert [p["kind"] for p in report.problems] == ["sha_mismatch"]
    assert not report.ok and report.problems[0]["version_id"] == rec.id


def test_extra_file_or_missing_artifact_is_refused(registry, make_version):
    added, missing = make_version(), make_version()
    change_artifact(registry, added, lambda folder: (folder / "payload.py").write_text("print('hi')"))
    with pytest.raises(RegistryError, match=rf"\(#{added.id}\)"):
        registry.artifact_dir(added.id)
    remove_artifact(registry, missing)
    with pytest.raises(RegistryError, match=rf"\(#{missing.id}\) is missing"):
        registry.artifact_dir(missing.id)
    kinds = {p["version_id"]: p["kind"] for p in registry.check().problems}
    assert kinds == {added.id: "sha_mismatch", missing.id: "missing_artifact"}


def test_artifact_path_outside_the_store_is_refused(registry, make_version):
    rec = make_version()
    versions = registry.tables.ModelVersion
    versions.update(artifact_path="../registry.db").where(versions.id == rec.id).execute()
    with pytest.raises(RegistryError, match="outside"):
        registry.artifact_dir(rec.id)


def test_runs_record_start_finish_and_owner(registry, dataset_id, make_version):
    run = registry.start_run(
        plugin="telemanom", target="sensor_2", config={"epochs": 2}, dataset_id=dataset_id
    )
    info = registry.get_run(run)
    assert info.status == "running" and info.pid == os.getpid() and info.finished is None
    rec = make_version(run_id=run)
    assert rec.run_id == run
    registry.finish_run(run, status="cancelled", message="stopped by the user", epochs_done=1)
    info = registry.get_run(run)
    assert (info.status, info.message, info.epochs_done) == ("cancelled", "stopped by the user", 1)
    assert info.finished is not None
    assert [r.id for r in registry.list_runs(status="cancelled")] == [run]
    with pytest.raises(ConfigError, match="run status 'done'"):
        registry.finish_run(run, status="done")
    with pytest.raises(NotFoundError, match="run 555"):
        registry.finish_run(555, status="failed")


def test_validation_is_stored_with_its_data_hash_and_kept_as_history(registry, make_version):
    rec = make_version(validated=True)
    assert [h.kind for h in registry.metric_history(rec.id)] == ["validation"]
    plain = make_version()
    assert not plain.validation_performed and registry.metric_history(plain.id) == []
    updated = registry.record_validation(
        plain.id, metrics={"f1": np.float32(0.5), "n": np.int64(3)}, data_hash="h2"
    )
    assert updated.validation_performed and updated.validation_data_hash == "h2"
    assert updated.validation_metrics == {"f1": 0.5, "n": 3}
    registry.record_metrics(plain.id, kind="detection", metrics={"precision": 0.9})
    registry.record_validation(plain.id, metrics={"f1": 0.4}, data_hash="h3")
    history = registry.metric_history(plain.id)
    assert [(h.kind, h.data_hash) for h in history] == [
        ("validation", "h2"),
        ("detection", None),
        ("validation", "h3"),
    ]
    assert registry.get(plain.id).validation_metrics == {"f1": 0.4}
    with pytest.raises(NotFoundError):
        registry.record_validation(999, metrics={}, data_hash="x")


def test_feedback_labels_round_trip(registry, make_version):
    rec = make_version()
    first = registry.add_feedback(rec.id, unit=3, start=10, end=25, label="true_anomaly", note="bearing")
    registry.add_feedback(
        rec.id, unit="A-1", start="2020-01-01T00:00:00", end="2020-01-02T00:00:00", label="false_alarm"
    )
    labels = registry.list_feedback(rec.id)
    assert [(f.unit, f.start, f.end, f.label) for f in labels] == [
        (3, 10, 25, "true_anomaly"),
        ("A-1", "2020-01-01T00:00:00", "2020-01-02T00:00:00", "false_alarm"),
    ]
    assert labels[0].id == first and labels[0].note == "bearing"
    registry.delete_feedback(first)
    assert len(registry.list_feedback(rec.id)) == 1
    with pytest.raises(NotFoundError):
        registry.add_feedback(999, unit=1, start=0, end=1, label="x")


def test_status_across_equipment(registry, make_version):
    make_version("telemanom", "sensor_2", validated=True)
    second = make_version("telemanom", "sensor_2")
    prod = make_version("transformer", "sensor_2", validated=True)
    registry.promote(prod.id, "production")
    lines = {(line.plugin, line.target): line for line in registry.status()}
    tele = lines[("telemanom", "sensor_2")]
    assert (tele.latest_id, tele.latest_version, tele.versions) == (second.id, 2, 2)
    assert tele.validated is False and tele.production_id is None
    assert tele.last_trained == second.created and tele.age_seconds >= 0
    trans = lines[("transformer", "sensor_2")]
    assert trans.production_id == prod.id and trans.validated is True


def test_second_registry_in_one_process_keeps_its_own_data(registry, make_version, tmp_path):
    rec = make_version()
    with Registry.open(tmp_path / "other") as other:
        assert other.count_versions() == 0
    assert registry.get(rec.id).id == rec.id  # each registry queries its own database
    with pytest.raises(NotFoundError, match="does not exist"):
        Registry.open(tmp_path / "missing", create=False)


def _register(registry: Registry, dataset_id: int, target: str):
    return registry.register_version(
        run_id=None,
        plugin="telemanom",
        target=target,
        dataset_id=dataset_id,
        config={},
        history=[],
        metrics={},
        validation_performed=False,
        validation_metrics=None,
        validation_data_hash=None,
        training_seconds=0.0,
        library_versions={},
        write_artifact=artifact_writer(target.encode()),
    )


def test_two_registries_used_from_two_threads_never_see_each_others_rows(tmp_path):
    """Each registry binds its own tables: interleaved writes and reads on two folders from two
    threads each find only their own versions, runs and labels."""
    import threading

    first, second = Registry.open(tmp_path / "a"), Registry.open(tmp_path / "b")
    datasets = {
        id(first): first.record_dataset(make_lineage("a")),
        id(second): second.record_dataset(make_lineage("b")),
    }
    errors: list[BaseException] = []
    turns = [threading.Barrier(2) for _ in range(2)]

    def work(registry: Registry, mine: str) -> None:
        try:
            for i in range(15):
                turns[0].wait(timeout=30)  # both threads write, then both read, in lockstep
                rec = _register(registry, datasets[id(registry)], f"{mine}_{i}")
                registry.add_feedback(rec.id, unit=1, start=0, end=1, label=mine)
                registry.start_run(plugin="telemanom", target=mine, config={}, dataset_id=None)
                turns[1].wait(timeout=30)
                targets = {v.target for v in registry.list_versions(limit=100)}
                assert targets == {f"{mine}_{k}" for k in range(i + 1)}
                assert {r.target for r in registry.list_runs()} == {mine}
                assert {label.label for label in registry.list_feedback(rec.id)} == {mine}
                assert [line.versions for line in registry.status()] == [1] * (i + 1)
                assert registry.get(rec.id).lineage["data_hash"] == f"hash-{mine}"
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            for barrier in turns:
                barrier.abort()
        finally:
            registry.close()

    threads = [threading.Thread(target=work, args=(r, tag)) for r, tag in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with Registry.open(tmp_path / "a") as again:
        assert again.count_versions() == 15 and {r.target for r in again.list_runs()} == {"a"}


def test_registry_tables_are_bound_per_instance(registry, tmp_path):
    with Registry.open(tmp_path / "other") as other:
        assert other.tables.ModelVersion is not registry.tables.ModelVersion
        assert other.tables.ModelVersion._meta.database is other.db
        assert registry.tables.ModelVersion._meta.database is registry.db


def test_dataset_columns_are_the_lineage_fields():
    columns = set(bind_tables(None).DatasetRow._meta.fields) - {"id", "created"}
    assert columns == set(LINEAGE_FIELDS)


def test_cleanup_dry_run_names_what_would_go_and_deletes_nothing(registry, make_version):
    versions = [make_version() for _ in range(4)]
    registry.promote(versions[0].id, "staging")
    other = make_version(target="sensor_3")
    would_go = registry.cleanup(keep=1, dry_run=True)
    assert would_go == [versions[1].id, versions[2].id]  # newest kept, staging kept, other target kept
    assert registry.count_versions() == 5 and all(Path(v.artifact_path).is_dir() for v in versions)
    assert registry.cleanup(keep=1) == would_go
    assert {v.id for v in registry.list_versions()} == {versions[0].id, versions[3].id, other.id}


def test_provenance_columns_are_named_once():
    table = bind_tables(None).ProvenanceRow
    assert tuple(provenance_to_row(make_provenance())) == PROVENANCE_COLUMNS
    assert [f.column_name for f in table._meta.sorted_fields] == ["version_id", *PROVENANCE_COLUMNS]


def test_where_a_version_trained_round_trips(registry, make_version):
    where = TrainedOn(executor="local", host="bench-7", worker="local-2 (pid 4141)")
    provenance = dataclasses.replace(make_provenance(), trained_on=where)
    rec = make_version(provenance=provenance)
    assert registry.get(rec.id).provenance == provenance
    extra = rec.to_dict()["extra"]
    assert extra["trained_on"] == {"executor": "local", "host": "bench-7", "worker": "local-2 (pid 4141)"}
    assert TrainingProvenance.from_legacy(extra) == provenance
    assert registry.get(make_version(provenance=make_provenance()).id).provenance.trained_on is None


def test_a_schema_5_registry_gains_where_versions_trained(
    registry, registry_location, make_version, isolated_home
):
    """The registry an older program left (schema 5, no trained_* columns) opens, migrates, and reads
    its versions as trained nowhere recorded."""
    rec = make_version(provenance=make_provenance())
    db = registry.db
    for column in ("trained_executor", "trained_host", "trained_worker"):
        db.execute_sql(f"ALTER TABLE training_provenance DROP COLUMN {column}")
    db.execute_sql("UPDATE registry_schema SET version = 5" if is_postgres(db) else "PRAGMA user_version = 5")
    registry.close()
    reopened = Registry.open(registry_location, cache_root=isolated_home / "cache")
    try:
        assert schema_version(reopened.db) == LATEST_VERSION == 6
        assert reopened.get(rec.id).provenance == make_provenance()
    finally:
        reopened.close()


def test_provenance_round_trips_and_keeps_the_extra_json_shape(registry, make_version):
    provenance = make_provenance()
    rec = make_version(provenance=provenance)
    assert registry.get(rec.id).provenance == provenance
    extra = rec.to_dict()["extra"]
    assert list(extra) == [
        "split",
        "seed",
        "val_fraction",
        "test_fraction",
        "source",
        "validation",
        "held_out",
        "fit",
        "model_version",
    ]
    assert extra["split"] == {
        "train": [1, 2],
        "val": [3],
        "test": [],
        "seed": 7,
        "val_fraction": 0.2,
        "test_fraction": 0.0,
    }
    assert extra["fit"]["notes"] == ["stopped at epoch 4"] and extra["held_out"]["frame_hash"] == "hash-held"
    assert TrainingProvenance.from_legacy(extra) == provenance
    plain = make_version()
    assert plain.provenance == TrainingProvenance() and plain.to_dict()["extra"] == {}
    stats = make_version(provenance=TrainingProvenance(training_stats={"format": "x", "sensors": {}}))
    assert registry.get(stats.id).to_dict()["extra"] == {"training_stats": {"format": "x", "sensors": {}}}


def test_not_a_database_is_a_registry_error(tmp_path):
    (tmp_path / "registry.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RegistryError, match="not a usable registry"):
        Registry.open(tmp_path)


def test_registry_never_unpickles_or_imports_torch():
    package = Path(__file__).resolve().parents[2] / "turbofan_desktop" / "registry"
    source = "\n".join(p.read_text(encoding="utf-8") for p in package.glob("*.py"))
    for forbidden in ("import pickle", "pickle.load", "import torch", "marshal", "eval(", "exec("):
        assert forbidden not in source, forbidden
