"""Promotion, deletion and cleanup rules."""

from __future__ import annotations

from pathlib import Path

import peewee
import pytest
from registry_helpers import change_artifact

from turbofan_desktop.errors import ConfigError, NotFoundError, RegistryError, ValidationRequiredError
from turbofan_desktop.registry import open_database


def _stages(registry) -> dict[int, str]:
    return {r.id: r.stage for r in registry.list_versions(limit=1000)}


def test_production_requires_validation(registry, make_version):
    rec = make_version()
    with pytest.raises(ValidationRequiredError, match=rf"\(#{rec.id}\) has not been validated"):
        registry.promote(rec.id, "production")
    assert registry.get(rec.id).stage == "none"
    assert registry.promote(rec.id, "staging").stage == "staging"  # staging needs no validation
    registry.record_validation(rec.id, metrics={"f1": 0.7}, data_hash="h")
    assert registry.promote(rec.id, "production").stage == "production"


def test_one_production_per_plugin_and_target_previous_archived(registry, make_version):
    first = make_version(validated=True)
    second = make_version(validated=True)
    other_target = make_version(target="sensor_3", validated=True)
    other_plugin = make_version(plugin="transformer", validated=True)
    for rec in (first, other_target, other_plugin):
        registry.promote(rec.id, "production")
    registry.promote(second.id, "production")
    stages = _stages(registry)
    assert stages == {
        first.id: "archived",
        second.id: "production",
        other_target.id: "production",
        other_plugin.id: "production",
    }
    assert registry.production("telemanom", "sensor_2").id == second.id
    assert registry.production_of(first.id).id == second.id
    # promoting again is a no-op, demoting is allowed
    assert registry.promote(second.id, "production").stage == "production"
    assert registry.promote(second.id, "archived").stage == "archived"
    assert registry.production("telemanom", "sensor_2") is None


def test_database_itself_refuses_two_production_versions(registry, registry_location, make_version):
    a, b = make_version(validated=True), make_version(validated=True)
    registry.promote(a.id, "production")
    # a second program, bypassing the registry's code, on its own connection
    raw = open_database(registry.path if registry_location == str(registry.home) else registry_location)
    try:
        with pytest.raises(peewee.IntegrityError):
            raw.execute_sql(f"UPDATE model_versions SET stage = 'production' WHERE id = {raw.param}", (b.id,))
    finally:
        raw.close()


def test_promotion_refuses_unknown_stage_failed_or_tampered_versions(registry, make_version):
    rec = make_version(validated=True)
    with pytest.raises(ConfigError, match="stage 'live'"):
        registry.promote(rec.id, "live")
    with pytest.raises(NotFoundError):
        registry.promote(999, "staging")
    failed = make_version(validated=True)
    versions = registry.tables.ModelVersion
    versions.update(status="failed").where(versions.id == failed.id).execute()
    with pytest.raises(RegistryError, match="status 'failed'"):
        registry.promote(failed.id, "production")
    change_artifact(registry, rec, lambda folder: (folder / "weights.pt").write_bytes(b"tampered"))
    with pytest.raises(RegistryError, match="modified or damaged"):
        registry.promote(rec.id, "production")
    assert registry.get(rec.id).stage == "none"


def test_delete_refuses_production_unless_forced_and_removes_everything(registry, make_version):
    rec = make_version(validated=True)
    registry.add_feedback(rec.id, unit=1, start=3, end=9, label="true_anomaly")
    registry.promote(rec.id, "production")
    with pytest.raises(RegistryError, match="in production"):
        registry.delete(rec.id)
    assert Path(rec.artifact_path).is_dir()
    registry.delete(rec.id, force=True)
    assert not Path(rec.artifact_path).exists()
    with pytest.raises(NotFoundError):
        registry.get(rec.id)
    assert registry.list_feedback(rec.id) == [] and registry.metric_history(rec.id) == []
    with pytest.raises(NotFoundError):
        registry.delete(rec.id)
    assert registry.check().ok
    # ids are never reused, so old references cannot point at a new model
    assert make_version().id > rec.id


def test_delete_ordinary_version_and_tolerate_missing_artifact(registry, make_version):
    keep, gone = make_version(), make_version()
    for child in Path(gone.artifact_path).iterdir():
        child.unlink()
    Path(gone.artifact_path).rmdir()
    registry.delete(gone.id)
    assert [r.id for r in registry.list_versions()] == [keep.id]


def test_cleanup_keeps_newest_n_plus_production_and_staging(registry, make_version):
    versions = [make_version(validated=True) for _ in range(6)]  # telemanom/sensor_2 v1..v6
    other = [make_version(target="sensor_3") for _ in range(2)]
    registry.promote(versions[0].id, "production")
    registry.promote(versions[1].id, "staging")
    deleted = registry.cleanup(keep=2)
    assert deleted == sorted(v.id for v in versions[2:4])
    left = {r.id for r in registry.list_versions()}
    assert left == {versions[0].id, versions[1].id, versions[4].id, versions[5].id, *(o.id for o in other)}
    for v in versions[2:4]:
        assert not Path(v.artifact_path).exists()
    assert registry.cleanup(keep=2) == []
    assert registry.cleanup(keep=0) == sorted([versions[4].id, versions[5].id, *(o.id for o in other)])
    assert {r.stage for r in registry.list_versions()} == {"production", "staging"}
    with pytest.raises(ConfigError):
        registry.cleanup(keep=-1)
    assert registry.check().ok
