"""``registry migrate``: a folder registry moved to PostgreSQL and back, counts and hashes equal, a second
run copies nothing."""

from __future__ import annotations

import json

import pytest
from registry_helpers import artifact_writer, make_lineage, make_provenance

from turbofan_desktop.registry import Registry


def _fill(registry: Registry) -> None:
    """Several plugins and targets, every stage, a failed version, labels, KPI history, provenance."""
    first = registry.record_dataset(make_lineage("a"))
    second = registry.record_dataset(make_lineage("b", source="test_FD001.txt"))
    run = registry.start_run(plugin="telemanom", target="sensor_2", config={"epochs": 2}, dataset_id=first)
    registry.finish_run(run, status="succeeded", epochs_done=2)

    def version(plugin, target, dataset, payload, **kw):
        return registry.register_version(
            run_id=kw.get("run_id"),
            plugin=plugin,
            target=target,
            dataset_id=dataset,
            config={"epochs": 2},
            history=[{"epoch": 1, "loss": 0.5}],
            metrics={"mse": 0.1},
            validation_performed=kw.get("validated", False),
            validation_metrics={"f1": 0.9} if kw.get("validated") else None,
            validation_data_hash="hv" if kw.get("validated") else None,
            training_seconds=1.5,
            library_versions={"torch": "2"},
            write_artifact=artifact_writer(payload),
            provenance=kw.get("provenance"),
        )

    a1 = version(
        "telemanom", "sensor_2", first, b"a1", run_id=run, validated=True, provenance=make_provenance()
    )
    a2 = version("telemanom", "sensor_2", first, b"a2", validated=True)
    b1 = version("transformer", "*", second, b"b1", validated=True)
    version("telemanom", "sensor_3", second, b"c1")
    registry.promote(a1.id, "production")
    registry.promote(a2.id, "staging")
    registry.promote(b1.id, "production")
    failed = version("telemanom", "sensor_3", second, b"c2")
    registry.tables.ModelVersion.update(status="failed").where(
        registry.tables.ModelVersion.id == failed.id
    ).execute()
    registry.add_feedback(a1.id, unit=1, start=10, end=20, label="true_anomaly", note="seen", data_key="k")
    registry.add_feedback(a1.id, unit=2, start=None, end=None, label="missed_anomaly")
    registry.record_metrics(a1.id, kind="detection", metrics={"precision": 0.7}, data_hash="hd")


def _summary(registry: Registry) -> list[tuple]:
    """What a user sees, without ids: versions with stage, hashes, provenance, labels and KPIs."""
    rows = []
    for rec in sorted(registry.list_versions(limit=10_000), key=lambda r: (r.plugin, r.target, r.version)):
        labels = [
            (x.unit, x.start, x.end, x.label, x.note, x.data_key) for x in registry.list_feedback(rec.id)
        ]
        kpis = [(p.kind, p.metrics, p.data_hash) for p in registry.metric_history(rec.id)]
        rows.append(
            (
                rec.plugin,
                rec.target,
                rec.version,
                rec.stage,
                rec.status,
                rec.artifact_sha256,
                rec.created,
                rec.lineage["data_hash"],
                rec.provenance,
                rec.os_user,
                rec.host,
                labels,
                kpis,
            )
        )
    return rows


@pytest.mark.postgres_only
def test_folder_to_postgres_and_back(cli, tmp_path, fresh_postgres, backend):
    desk, back = tmp_path / "desk", tmp_path / "back"
    with Registry.open(desk) as registry:
        _fill(registry)
        expected = _summary(registry)

    code, data, _ = cli("registry", "migrate", "--from", str(desk), "--to", fresh_postgres, "--json")
    assert code == 0 and data["ok"], json.dumps(data)
    assert data["copied"] == data["in_source"] == data["found_in_destination"]
    assert (
        data["copied"]["versions"] == 5 and data["copied"]["artifacts"] == 5 and data["hashes_verified"] == 5
    )
    assert data["copied"]["labels"] == 2 and data["copied"]["metrics"] == 4 and data["copied"]["runs"] == 1

    again = cli("registry", "migrate", "--from", str(desk), "--to", fresh_postgres, "--json")[1]
    assert again["ok"] and set(again["copied"].values()) == {0}
    assert again["already_there"] == data["copied"]

    code, text, _ = cli(
        "registry", "migrate", "--from", fresh_postgres, "--to", f"sqlite://{back}/registry.db"
    )
    assert code == 0 and "Every item is in the destination" in text and "5 of 5" in text

    with Registry.open(fresh_postgres, cache_root=tmp_path / "cache") as server, Registry.open(back) as local:
        assert _summary(server) == expected == _summary(local)
        assert server.check().ok and local.check().ok
        for rec in local.list_versions(status="trained"):
            local.artifact_dir(rec.id)  # every artifact loads, verified


def test_migrate_refuses_a_missing_source_or_itself(cli, tmp_path):
    code, _, err = cli("registry", "migrate", "--from", str(tmp_path / "nope"), "--to", str(tmp_path / "x"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "x").exists()
    Registry.open(tmp_path / "a").close()
    code, _, err = cli("registry", "migrate", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "a"))
    assert code == 2 and "same registry" in err


def test_migrate_sees_a_folder_and_its_sqlite_url_or_link_as_the_same_registry(cli, tmp_path):
    Registry.open(tmp_path / "a").close()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    for destination in (f"sqlite:///{tmp_path}/a/registry.db", str(tmp_path / "link")):
        code, _, err = cli("registry", "migrate", "--from", str(tmp_path / "a"), "--to", destination)
        assert code == 2 and "are the same registry" in err, err


@pytest.mark.postgres_only
def test_migrate_sees_two_urls_of_one_server_database_as_the_same_registry(cli, fresh_postgres, backend):
    other_name = fresh_postgres.replace("127.0.0.1", "localhost")
    Registry.open(fresh_postgres).close()
    code, _, err = cli("registry", "migrate", "--from", fresh_postgres, "--to", other_name)
    assert code == 2 and "are the same registry" in err, err


def test_a_second_migration_into_the_same_registry_is_refused_while_one_runs(
    registry, tmp_path, isolated_home, backend
):
    """While one migration holds the destination (advisory lock / lock file), another one — here
    from a second process, as two people would — is refused with one sentence and copies nothing."""
    import subprocess
    import sys
    import textwrap

    from turbofan_desktop.registry.transfer import migration_lock

    desk = tmp_path / "desk"
    with Registry.open(desk) as source:
        _fill(source)
    script = textwrap.dedent(
        f"""
        from turbofan_desktop.services.models import migrate_registry
        from turbofan_desktop.errors import TurbofanError
        try:
            migrate_registry({str(desk)!r}, {registry.location if registry.is_server else str(registry.home)!r})
        except TurbofanError as exc:
            print(exc)
        else:
            print("copied")
        """
    )
    with migration_lock(registry):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Another migration into" in done.stdout and "is running" in done.stdout, done.stdout
    assert registry.count_versions() == 0
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "copied", done.stdout + done.stderr  # the lock went with the first
    assert registry.count_versions() == 5
