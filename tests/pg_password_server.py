"""A throw-away PostgreSQL cluster that asks for a password (scram-sha-256), for the prompt tests.

The machines' shared server trusts local connections, so it never asks; this starts a private
cluster of the installed PostgreSQL as the ``postgres`` OS user on a free port in a temporary folder,
and removes it afterwards. Unavailable (the caller skips) without initdb, that user, or root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "s3cret-Pa55"


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def unavailable_reason() -> str | None:
    if _bin_dir() is None:
        return "no PostgreSQL server binaries (initdb) in /usr/lib/postgresql"
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("runuser") is None:
        return "starting a private PostgreSQL cluster needs root (runuser -u postgres)"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' OS user to run a private cluster"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def password_server() -> Iterator[str]:
    """Yields ``postgresql://postgres@127.0.0.1:<port>/postgres`` (no password in it)."""
    bindir = _bin_dir()
    assert bindir is not None
    folder = Path(tempfile.mkdtemp(prefix="turbofan-pgpw-"))
    port = _free_port()
    try:
        (folder / "pw").write_text(PASSWORD + "\n", encoding="utf-8")
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "scram-sha-256",
             f"--pwfile={folder / 'pw'}", "-U", "postgres"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
             "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "-w", "start"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
                capture_output=True, timeout=60,
            )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
