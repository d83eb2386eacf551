"""A shared server registry seen by a colleague with fewer rights: a database user who may only read
opens it read-only (reads work, every write is one sentence), and the change marker the GUI polls."""

from __future__ import annotations

import uuid

import pytest
from registry_helpers import artifact_writer

from turbofan_desktop.errors import ReadOnlyRegistryError
from turbofan_desktop.registry import Registry


@pytest.fixture
def reader_url(fresh_postgres, registry, backend):
    """A login role that may read the registry's tables and nothing else (dropped afterwards)."""
    import psycopg

    role = f"turbofan_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    scheme, rest = fresh_postgres.split("://", 1)
    yield f"{scheme}://{role}@{rest.split('@', 1)[1]}"
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


@pytest.mark.postgres_only
def test_a_user_who_may_only_read_opens_the_registry_read_only(
    reader_url, registry, make_version, dataset_id, isolated_home, backend
):
    version = make_version(validated=True)
    with Registry.open(reader_url, cache_root=isolated_home / "reader-cache") as reader:
        assert reader.read_only
        assert [r.id for r in reader.list_versions()] == [version.id]
        assert reader.artifact_dir(version.id).is_dir()  # loading a model only reads
        with pytest.raises(ReadOnlyRegistryError, match=r"open read-only .*may not change it") as caught:
            reader.promote(version.id, "staging")
        assert "turbofan_reader_" in str(caught.value)
        with pytest.raises(ReadOnlyRegistryError):
            reader.register_version(
                run_id=None, plugin="p", target="t", dataset_id=dataset_id, config={}, history=[],
                metrics={}, validation_performed=False, validation_metrics=None,
                validation_data_hash=None, training_seconds=0.0, library_versions={},
                write_artifact=artifact_writer(b"x"),
            )  # fmt: skip
    assert registry.get(version.id).stage == "none" and registry.count_versions() == 1
    with Registry.open(registry.location, cache_root=isolated_home / "c", read_only=True) as chosen:
        assert chosen.read_only and chosen.count_versions() == 1


def test_the_change_marker_moves_with_every_change_anyone_makes(registry, make_version, backend):
    start = registry.change_marker()
    assert registry.change_marker() == start  # reading changes nothing
    first = make_version(validated=True)
    after_register = registry.change_marker()
    assert after_register != start
    registry.promote(first.id, "staging")
    after_promote = registry.change_marker()
    assert after_promote != after_register
    registry.record_metrics(first.id, kind="detection", metrics={"precision": 1.0}, data_hash="h")
    after_kpi = registry.change_marker()
    assert after_kpi != after_promote
    registry.delete(first.id, force=True)
    assert registry.change_marker() not in (after_kpi, after_promote)
