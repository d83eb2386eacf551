"""Many writers at once: threads sharing one registry, and separate processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
from registry_helpers import artifact_writer, make_lineage

from turbofan_desktop.registry import Registry

HERE = Path(__file__).resolve().parent
THREADS, PER_THREAD = 8, 50
PAIRS = [("telemanom", "sensor_2"), ("transformer", "sensor_2"), ("telemanom", "*")]


def _assert_contiguous(registry: Registry, expected_total: int) -> None:
    records = registry.list_versions(limit=10_000)
    assert len(records) == expected_total
    per_pair = defaultdict(list)
    for rec in records:
        per_pair[(rec.plugin, rec.target)].append(rec.version)
    for versions in per_pair.values():
        assert sorted(versions) == list(range(1, len(versions) + 1))


def test_eight_threads_register_400_versions(registry, dataset_id):
    errors: list[BaseException] = []
    connections: list[object] = []  # kept alive so no id() is reused
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                plugin, target = PAIRS[(index + i) % len(PAIRS)]
                registry.register_version(
                    run_id=None,
                    plugin=plugin,
                    target=target,
                    dataset_id=dataset_id,
                    config={"thread": index, "i": i},
                    history=[],
                    metrics={"i": i},
                    validation_performed=False,
                    validation_metrics=None,
                    validation_data_hash=None,
                    training_seconds=0.0,
                    library_versions={},
                    write_artifact=artifact_writer(f"{index}-{i}".encode()),
                )
                if i % 10 == 0:
                    registry.list_versions(plugin=plugin, limit=5)  # readers interleave with writers
            connections.append(registry.db.connection())
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len({id(c) for c in connections}) == THREADS  # one connection per thread
    _assert_contiguous(registry, THREADS * PER_THREAD)
    assert len({r.artifact_path for r in registry.list_versions(limit=10_000)}) == THREADS * PER_THREAD
    assert registry.check().ok


def test_three_processes_register_at_once(registry_location, isolated_home):
    Registry.open(registry_location, cache_root=isolated_home / "cache").close()  # the schema, once
    writers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "registry_writer.py"), registry_location, str(seed), "15"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    outputs = [writer.communicate(timeout=120) for writer in writers]
    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
        assert "locked" not in err
    committed = [line for out, _ in outputs for line in out.splitlines() if line.startswith("committed")]
    deleted = [line for out, _ in outputs for line in out.splitlines() if line.startswith("deleted")]
    assert len(committed) == 45
    with Registry.open(registry_location, cache_root=isolated_home / "cache") as registry:
        assert registry.count_versions() == 45 - len(deleted)
        assert registry.check().ok


@pytest.mark.slow  # ~35 s on the shared 2-core machine, mostly 8 interpreters starting
@pytest.mark.postgres_only
def test_eight_processes_register_400_versions_on_postgres(registry_location, isolated_home):
    """8 programs x 50 registrations on one server: 400 rows, numbers gap-free per (plugin, target),
    every reported commit present with its hash, no two production versions of one pair."""
    processes, per_process = 8, 50
    with Registry.open(registry_location, cache_root=isolated_home / "cache") as registry:
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "registry_writer.py"),
                    registry_location,
                    str(seed),
                    str(per_process),
                    "register-only",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in range(processes)
        ]
        outputs = [writer.communicate(timeout=300) for writer in writers]
        for writer, (_out, err) in zip(writers, outputs, strict=True):
            assert writer.returncode == 0, err
        committed = {
            int(line.split()[1]): line.split()[2]
            for out, _ in outputs
            for line in out.splitlines()
            if line.startswith("committed")
        }
        assert len(committed) == processes * per_process
        _assert_contiguous(registry, processes * per_process)
        stored = {r.id: r.artifact_sha256 for r in registry.list_versions(limit=10_000)}
        assert stored == committed  # no lost row, no row nobody reported
        # then four versions of each pair are promoted at once: one production per pair remains
        by_pair = defaultdict(list)
        for record in registry.list_versions(limit=10_000):
            by_pair[(record.plugin, record.target)].append(record.id)
        contenders = [version_id for ids in by_pair.values() for version_id in ids[:4]]
        for version_id in contenders:
            registry.record_validation(version_id, metrics={"f1": 1.0}, data_hash="h")
        errors: list[BaseException] = []

        def promote(version_id: int) -> None:
            try:
                registry.promote(version_id, "production")
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=promote, args=(version_id,)) for version_id in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors[:3]
        production = registry.list_versions(stage="production", limit=10_000)
        assert sorted((r.plugin, r.target) for r in production) == sorted(by_pair)


@pytest.mark.sqlite_only
def test_writer_waits_for_a_lock_held_by_another_program(registry, make_version):
    """Another program holding the write lock delays a registration; it does not fail it."""
    import sqlite3
    import time

    other = sqlite3.connect(registry.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    started = time.perf_counter()
    try:
        rec = make_version()
    finally:
        release.join()
        other.close()
    assert rec.version == 1 and time.perf_counter() - started >= 0.4


def test_programs_recording_the_same_dataset_at_once_share_one_row(registry_location, isolated_home):
    """Eight connections record one dataset at the same moment: one row, no duplicate-key error."""
    registries = [Registry.open(registry_location, cache_root=isolated_home / "cache") for _ in range(8)]
    barrier, ids, errors = threading.Barrier(len(registries)), [], []

    def record(registry: Registry) -> None:
        barrier.wait()
        try:
            ids.append(registry.record_dataset(make_lineage("race")))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(r,)) for r in registries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for registry in registries:
        registry.close()
    assert not errors, errors[:2]
    assert len(set(ids)) == 1 and len(ids) == len(registries)
