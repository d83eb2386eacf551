"""Fixtures for the registry tests: an open registry in the test's TURBOFAN_HOME and a quick way to
register small versions with real (tiny) artifacts."""

from __future__ import annotations

import pytest
from registry_helpers import artifact_writer, make_lineage

from turbofan_desktop.registry import Registry, VersionRecord


@pytest.fixture
def registry(isolated_home):
    reg = Registry.open(isolated_home)
    yield reg
    reg.close()


@pytest.fixture
def dataset_id(registry) -> int:
    return registry.record_dataset(make_lineage())


@pytest.fixture
def make_version(registry, dataset_id):
    """register(plugin=, target=, validated=, payload=) -> VersionRecord"""

    def register(
        plugin: str = "telemanom",
        target: str = "sensor_2",
        *,
        validated: bool = False,
        payload: bytes = b"state-dict-bytes",
        run_id: int | None = None,
        **overrides,
    ) -> VersionRecord:
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
