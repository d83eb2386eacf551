"""Suite-wide fixtures: headless Qt, an isolated TURBOFAN_HOME, paths to the real NASA data."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "resources" / "sample"
SHARED_DATA = Path(os.environ.get("TURBOFAN_SHARED_DATA", REPO.parent / "shared" / "data"))
CMAPSS_DIR = SHARED_DATA / "cmapss"
SMAP_MSL_DIR = SHARED_DATA / "smap_msl"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own registry, settings and log folder; the user's are never touched."""
    home = tmp_path_factory.mktemp("turbofan_home")
    monkeypatch.setenv("TURBOFAN_HOME", str(home))
    monkeypatch.setenv("TURBOFAN_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("TURBOFAN_TORCH_THREADS", "1")
    # jobs on a thread of the test process: spawning workers per test would slow the suite; the
    # local process executor has its own tests (tests/services/test_executors*.py)
    monkeypatch.setenv("TURBOFAN_EXECUTOR", "inprocess")
    return home


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture
def cmapss_dir() -> Path:
    if not CMAPSS_DIR.is_dir():
        pytest.skip(f"C-MAPSS data not found at {CMAPSS_DIR}")
    return CMAPSS_DIR


@pytest.fixture
def smap_msl_dir() -> Path:
    if not SMAP_MSL_DIR.is_dir():
        pytest.skip(f"SMAP/MSL data not found at {SMAP_MSL_DIR}")
    return SMAP_MSL_DIR


# -- PostgreSQL: one throw-away database per test session ---------------------------------------------
PG_ADMIN_URL = os.environ.get("TURBOFAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def _start_local_cluster() -> None:
    """Start the machine's PostgreSQL cluster (Debian's pg_ctlcluster) when it is installed but down."""
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        return
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a fresh database ``turbofan_test_<random>`` on the local server, dropped at the end.

    Skips (with the reason) only when psycopg is missing or no server answers even after trying to
    start the local cluster; TURBOFAN_TEST_PG names another server's admin URL.
    """
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[test]'): PostgreSQL tests skipped")
    try:
        admin = _pg_connect(PG_ADMIN_URL)
    except psycopg.OperationalError:
        _start_local_cluster()
        admin = None
        for _ in range(20):
            try:
                admin = _pg_connect(PG_ADMIN_URL)
                break
            except psycopg.OperationalError as exc:
                reason = str(exc).strip().splitlines()[0]
                time.sleep(0.5)
        if admin is None:
            pytest.skip(
                f"no PostgreSQL server answers at {PG_ADMIN_URL} ({reason}): PostgreSQL tests skipped"
            )
    name = f"turbofan_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_connect(PG_ADMIN_URL) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_postgres(postgres_url):
    """The session's database emptied (every table dropped) for one test; returns its URL."""
    with _pg_connect(postgres_url) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_url
