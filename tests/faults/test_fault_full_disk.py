"""Class 4 of issue 20: a full disk (and a quota, a read-only file system, an I/O error) under writes.

Every write path turns the failure into one sentence naming where it failed (exit 2); training leaves
its run final ("failed" with that sentence), removes its staged artifact, and the registry stays
consistent. A real small tmpfs where mounting is allowed; simulated errno everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess

import peewee
import pytest
from fault_helpers import TINY_TELEMANOM, assert_one_sentence, run_main, table

from turbofan_desktop.registry import artifacts, storage

STORAGE_ERRNOS = (
    [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO]
    if hasattr(errno, "EDQUOT")
    else [
        errno.ENOSPC,
        errno.EROFS,
        errno.EIO,
    ]
)
WORDS = {
    errno.ENOSPC: "no space left",
    getattr(errno, "EDQUOT", -1): "quota",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
}


def _train(capsys, registry, data) -> tuple[int, str, str]:
    return run_main(
        capsys,
        "train",
        str(data["train"]),
        "--model",
        "telemanom",
        "--sensor",
        "s_2",
        *TINY_TELEMANOM,
        "--registry",
        str(registry),
    )


def _assert_consistent(capsys, registry) -> None:
    db = registry / "registry.db"
    assert table(db, "SELECT COUNT(*) FROM training_runs WHERE status = 'running'") == [(0,)]
    assert list((registry / "artifacts" / ".staging").iterdir()) == []
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(registry))
    assert code == 0 and "The registry is consistent." in out, out + err


@pytest.mark.parametrize("code", STORAGE_ERRNOS, ids=errno.errorcode.get)
def test_artifact_write_failure_fails_the_run_with_a_sentence(
    code, capsys, monkeypatch, trained_registry, fault_data
):
    def failing_sync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(artifacts, "_fdatasync", failing_sync)
    exit_code, out, err = _train(capsys, trained_registry, fault_data)
    assert exit_code == 2, out + err
    sentence = assert_one_sentence(err, naming=str(trained_registry / "artifacts"))
    assert WORDS[code] in sentence.lower()
    runs = table(trained_registry / "registry.db", "SELECT status, message FROM training_runs ORDER BY id")
    assert runs[-1][0] == "failed" and str(trained_registry / "artifacts") in runs[-1][1]
    assert table(trained_registry / "registry.db", "SELECT COUNT(*) FROM model_versions") == [(1,)]
    monkeypatch.undo()
    _assert_consistent(capsys, trained_registry)


def test_library_error_on_a_nearly_full_disk_is_a_full_disk(
    capsys, monkeypatch, trained_registry, fault_data
):
    """torch's writer reports a full disk as a RuntimeError; the free space tells what it was."""

    def failing_sync(fd):
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(artifacts, "_fdatasync", failing_sync)
    monkeypatch.setattr(storage, "_nearly_full", lambda folder: True)
    exit_code, out, err = _train(capsys, trained_registry, fault_data)
    assert exit_code == 2, out + err
    assert "no space left" in assert_one_sentence(err, naming=str(trained_registry / "artifacts")).lower()
    monkeypatch.undo()
    _assert_consistent(capsys, trained_registry)


@pytest.fixture
def full_database(monkeypatch):
    """Every COMMIT fails as SQLite fails on a full disk (SQLite rolls the transaction back)."""

    def full_commit(self):
        self.rollback()
        raise peewee.OperationalError("database or disk is full")

    monkeypatch.setattr(peewee.SqliteDatabase, "commit", full_commit)
    return monkeypatch


def test_database_full_on_every_write_path(capsys, full_database, trained_registry, fault_data):
    db = trained_registry / "registry.db"
    before = {
        name: table(db, f"SELECT * FROM {name}")
        for name in ("model_versions", "training_runs", "metric_history")
    }
    reg = ["--registry", str(trained_registry)]
    for argv in (
        ["train", str(fault_data["train"]), "--model", "telemanom", "--sensor", "s_2", *TINY_TELEMANOM, *reg],
        ["validate", "1", *reg],
        ["models", "promote", "1", "--stage", "staging", *reg],
        ["models", "delete", "1", *reg],
    ):
        code, out, err = run_main(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert "no space left" in assert_one_sentence(err, naming=str(db)).lower()
    # detect still answers: its ride-along drift record is lost, its result is not
    code, out, err = run_main(capsys, "detect", str(fault_data["test"]), "--version", "1", *reg)
    assert code == 0 and "anomalous range(s)" in out and "Traceback" not in err, out + err
    full_database.undo()
    assert {name: table(db, f"SELECT * FROM {name}") for name in before} == before
    _assert_consistent(capsys, trained_registry)


def test_version_commit_fails_after_staging(capsys, monkeypatch, trained_registry, fault_data):
    """The artifact is staged, then the version's row cannot commit: the artifact goes, the run fails."""
    state = {"fail_next_commit": False}
    real_stage, real_commit = artifacts.ArtifactStore.stage, peewee.SqliteDatabase.commit

    def stage(self, write):
        staged = real_stage(self, write)
        state["fail_next_commit"] = True
        return staged

    def commit(self):
        if state.pop("fail_next_commit", False):
            self.rollback()
            raise peewee.OperationalError("database or disk is full")
        return real_commit(self)

    monkeypatch.setattr(artifacts.ArtifactStore, "stage", stage)
    monkeypatch.setattr(peewee.SqliteDatabase, "commit", commit)  # beneath the guard, as SQLite fails
    exit_code, out, err = _train(capsys, trained_registry, fault_data)
    assert exit_code == 2, out + err
    assert_one_sentence(err, naming=str(trained_registry / "registry.db"))
    db = trained_registry / "registry.db"
    assert table(db, "SELECT status FROM training_runs ORDER BY id") == [("succeeded",), ("failed",)]
    assert table(db, "SELECT COUNT(*) FROM model_versions") == [(1,)]
    assert len([p for p in (trained_registry / "artifacts").iterdir() if not p.name.startswith(".")]) == 1
    monkeypatch.undo()
    _assert_consistent(capsys, trained_registry)


def test_real_full_tmpfs(capsys, trained_registry, fault_data, tmp_path):
    if os.name == "nt" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        registry = mount / "registry"
        for free_kb in (60, 30, 8):  # artifact, version row and the run's first row fail in turn
            shutil.rmtree(registry, ignore_errors=True)
            shutil.copytree(trained_registry, registry)
            filler = mount / "filler"
            available = shutil.disk_usage(mount).free // 1024
            filler.write_bytes(b"\0" * max(0, available - free_kb) * 1024)
            code, out, err = _train(capsys, registry, fault_data)
            assert code == 2, (free_kb, out, err)
            sentence = assert_one_sentence(err, naming=str(registry))
            assert "no space left" in sentence.lower(), sentence
            filler.unlink()
            _assert_consistent(capsys, registry)
        code, out, err = _train(capsys, registry, fault_data)  # with space again, training works
        assert code == 0, out + err
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize(
    ("message", "expected", "words"),
    [
        ("database or disk is full", "StorageError", "no space left"),
        ("disk I/O error", "StorageError", "input/output error"),
        ("attempt to write a readonly database", "ReadOnlyRegistryError", "read-only"),
        ("database disk image is malformed", "DamagedRegistryError", "is damaged"),
        ("file is not a database", "DamagedRegistryError", "registry check"),
        ("database is locked", None, None),  # the write path waits and retries these itself
        ("UNIQUE constraint failed: model_versions.plugin", None, None),
    ],
)
def test_sqlite_failures_map_to_sentences(message, expected, words, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "_nearly_full", lambda folder: False)
    problem = storage.sqlite_error(peewee.OperationalError(message), tmp_path / "registry.db")
    if expected is None:
        assert problem is None
    else:
        assert type(problem).__name__ == expected and words in str(problem)
        assert str(tmp_path) in str(problem)
