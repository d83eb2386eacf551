"""Fixtures for the registry tests: an open registry in the test's TURBOFAN_HOME and a quick way to
register small versions with real (tiny) artifacts.

Every test that uses ``registry`` runs twice: on a SQLite folder and on a fresh PostgreSQL database
(``backend`` is ``sqlite`` or ``postgresql``). A test about one backend's mechanics (a raw sqlite3
connection, artifact folders on disk) is marked ``@pytest.mark.sqlite_only`` or ``postgres_only``.
"""

from __future__ import annotations

import json
import logging

import pytest
from registry_helpers import artifact_writer, make_lineage

from turbofan_desktop.cli import main
from turbofan_desktop.registry import Registry, VersionRecord

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    backends = BACKENDS
    if metafunc.definition.get_closest_marker("sqlite_only"):
        backends = ("sqlite",)
    elif metafunc.definition.get_closest_marker("postgres_only"):
        backends = ("postgresql",)
    metafunc.parametrize("backend", backends)


@pytest.fixture
def registry_location(backend, isolated_home, request, monkeypatch) -> str:
    """Where this test's registry lives: the TURBOFAN_HOME folder, or a freshly emptied database
    (then also the ``registry`` setting, so CLI commands and workspaces of the test open it)."""
    if backend == "sqlite":
        return str(isolated_home)
    url = request.getfixturevalue("fresh_postgres")
    monkeypatch.setenv("TURBOFAN_REGISTRY", url)
    return url


@pytest.fixture
def registry(registry_location, isolated_home):
    reg = Registry.open(registry_location, cache_root=isolated_home / "cache")
    yield reg
    reg.close()


@pytest.fixture
def dataset_id(registry) -> int:
    return registry.record_dataset(make_lineage())


@pytest.fixture
def make_version(registry, dataset_id):
    """register(plugin=, target=, validated=, payload=) -> VersionRecord"""
    counter: list[int] = []

    def register(
        plugin: str = "telemanom",
        target: str = "sensor_2",
        *,
        validated: bool = False,
        payload: bytes | None = None,
        run_id: int | None = None,
        **overrides,
    ) -> VersionRecord:
        if payload is None:  # distinct bytes per version: a content-addressed store shares equal ones
            counter.append(1)
            payload = b"state-dict-bytes-%d" % len(counter)
        fields = dict(
            run_id=run_id,
            plugin=plugin,
            target=target,
            dataset_id=dataset_id,
            config={"epochs": 1, "window": 10},
            history=[{"epoch": 1, "loss": 0.5, "val_loss": 0.6}],
            metrics={"mse": 0.25},
            validation_performed=validated,
            validation_metrics={"f1": 0.8} if validated else None,
            validation_data_hash="hash-val" if validated else None,
            training_seconds=1.25,
            library_versions={"torch": "2.13", "numpy": "2"},
            write_artifact=artifact_writer(payload),
        )
        fields.update(overrides)
        return registry.register_version(**fields)

    return register


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr); JSON output parsed when asked."""
    root = logging.getLogger()
    handlers = list(root.handlers)

    def call(*argv: str):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, (json.loads(out) if "--json" in argv and out.strip() else out), err

    yield call
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
