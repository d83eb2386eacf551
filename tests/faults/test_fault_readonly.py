"""Class 2 of issue 20: a registry folder this process cannot write.

Reads (list, show, status, detect, report, drift) work and keep their result (the ride-along drift and
KPI records are skipped with a log line); writes (train, validate, promote, delete) are refused with one
sentence naming the folder and exit 2; the database file is left byte for byte as it was.

Three ways to make the folder read-only, so each environment exercises the real code: permission bits
(root ignores them, so as root the CLI runs under ``setpriv`` without the overriding capabilities), a
read-only bind mount (root only, skipped where mounting is not allowed), and, everywhere, the
detection forced in-process (SQLite then really opens the file ``mode=ro``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fault_helpers import assert_one_sentence, cli, file_digest, run_main

from turbofan_desktop.registry import storage


def _reads(registry: Path, data: dict[str, Path], out_dir: Path) -> list[tuple[list[str], str]]:
    """(argv, text its output must contain)"""
    reg = ["--registry", str(registry)]
    return [
        (["models", "list", *reg], "telemanom"),
        (["status", *reg], "s_2"),
        (["detect", str(data["test"]), "--version", "1", *reg], "anomalous range(s)"),
        (["report", "1", "-o", str(out_dir / "report.html"), *reg], "report.html"),
    ]


def _writes(registry: Path, data: dict[str, Path]) -> list[list[str]]:
    reg = ["--registry", str(registry)]
    return [
        ["train", str(data["train"]), "--model", "telemanom", "--sensor", "s_2", *reg],
        ["validate", "1", *reg],
        ["models", "promote", "1", "--stage", "staging", *reg],
        ["models", "delete", "1", *reg],
    ]


def _assert_refused(code: int, err: str, registry: Path) -> None:
    assert code == 2, err
    sentence = assert_one_sentence(err, naming=str(registry))
    assert "read-only" in sentence


def test_forced_read_only_serves_reads_and_refuses_writes(
    capsys, monkeypatch, trained_registry, fault_data, tmp_path
):
    monkeypatch.setattr(storage, "folder_is_writable", lambda home: False)
    db = trained_registry / "registry.db"
    before = file_digest(db)
    kpis_before = _kpi_count(capsys, trained_registry)
    for argv, expected in _reads(trained_registry, fault_data, tmp_path):
        code, out, err = run_main(capsys, *argv)
        assert code == 0 and expected in out, (argv, out, err)
        assert "Traceback" not in err and "error" not in err, err
    for argv in _writes(trained_registry, fault_data):
        code, out, err = run_main(capsys, *argv)
        _assert_refused(code, err, trained_registry)
    assert file_digest(db) == before
    monkeypatch.undo()
    assert _kpi_count(capsys, trained_registry) == kpis_before  # detect recorded no drift entry
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(trained_registry))
    assert code == 0 and "The registry is consistent." in out, out + err


def _kpi_count(capsys, registry: Path) -> str:
    code, out, err = run_main(capsys, "models", "show", "1", "--registry", str(registry))
    assert code == 0, err
    (line,) = [line for line in out.splitlines() if "KPI entries" in line]
    return line


def test_forced_read_only_without_its_shared_memory_refuses_unmerged_changes(monkeypatch, trained_registry):
    """A read-only folder whose -wal holds changes that were never merged: refuse, never show stale rows."""
    monkeypatch.setattr(storage, "folder_is_writable", lambda home: False)
    (trained_registry / "registry.db-wal").write_bytes(b"\0" * 64)
    real_open = storage.GuardedSqliteDatabase.execute_sql

    def no_shm(self, sql, params=None):  # what SQLite answers when it cannot create the -shm file
        if "immutable" not in self.database:
            raise storage.ReadOnlyRegistryError("attempt to write a readonly database")
        return real_open(self, sql, params)

    monkeypatch.setattr(storage.GuardedSqliteDatabase, "execute_sql", no_shm)
    from turbofan_desktop.errors import ReadOnlyRegistryError
    from turbofan_desktop.registry import Registry

    with pytest.raises(ReadOnlyRegistryError, match="registry.db-wal holds changes not yet merged"):
        Registry.open(trained_registry)


def _permission_bound_prefix() -> list[str]:
    """How to run the CLI so that permission bits bind it: as itself when not root; as root without
    the capabilities that override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER)."""
    if os.name == "nt":
        pytest.skip("POSIX permissions")
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits cannot be tested")
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]
    probe = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-c",
            "import os, sys; sys.exit(os.access(sys.argv[1], os.W_OK))",
            "/proc/1",
        ],
        capture_output=True,
    )
    if probe.returncode != 0:  # /proc/1 (mode 555) must not look writable once the capabilities are gone
        pytest.skip(
            f"cannot drop root's permission override here: {probe.stderr.decode(errors='replace')[-200:]}"
        )
    return prefix


def test_permission_denied_folder(trained_registry, fault_data, tmp_path):
    prefix = _permission_bound_prefix()
    registry = trained_registry
    db = registry / "registry.db"
    db.chmod(0o444)
    registry.chmod(0o555)
    try:
        before = file_digest(db)
        reads = _reads(registry, fault_data, tmp_path)
        for argv, expected in [reads[0], reads[2]]:  # list and detect; the in-process test runs them all
            code, out, err = cli(*argv, prefix=prefix)
            assert code == 0 and expected in out, (argv, out, err)
            assert "Traceback" not in err, err
        writes = _writes(registry, fault_data)
        for argv in [writes[0], writes[2]]:  # train and promote
            code, out, err = cli(*argv, prefix=prefix)
            _assert_refused(code, err, registry)
        assert file_digest(db) == before
        # the training that made the registry kept its data in datasets/; the refused writes added nothing
        assert sorted(p.name for p in registry.iterdir()) == ["artifacts", "datasets", "registry.db"]
    finally:
        registry.chmod(0o755)
        db.chmod(0o644)


def test_read_only_mount(capsys, trained_registry, fault_data, tmp_path):
    if os.name == "nt" or os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    mount = tmp_path / "mounted"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(trained_registry), str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode(errors='replace').strip()}")
    try:
        before = file_digest(mount / "registry.db")
        for argv, expected in _reads(mount, fault_data, tmp_path):
            code, out, err = run_main(capsys, *argv)
            assert code == 0 and expected in out, (argv, out, err)
        for argv in _writes(mount, fault_data):
            code, out, err = run_main(capsys, *argv)
            _assert_refused(code, err, mount)
        assert file_digest(mount / "registry.db") == before
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)  # busy: detach lazily


def test_read_only_folder_without_a_registry(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(storage, "folder_is_writable", lambda home: False)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run_main(capsys, "status", "--registry", str(empty))
    assert code == 2
    assert "holds no registry yet" in assert_one_sentence(err, naming=str(empty))
    assert list(empty.iterdir()) == []
