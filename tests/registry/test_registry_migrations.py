"""Schema versions: a registry written by schema v1 is migrated when opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry import LATEST_VERSION, Registry, artifact_sha256
from turbofan_desktop.registry.schema import MODELS

# The schema as the first release wrote it; kept here verbatim so the test does not trust the
# migration module to describe its own starting point.
V1_SCHEMA = """
CREATE TABLE datasets (id INTEGER PRIMARY KEY AUTOINCREMENT, data_hash TEXT NOT NULL, source TEXT NOT NULL,
  file_sha256 TEXT, format TEXT NOT NULL, units INTEGER NOT NULL, rows INTEGER NOT NULL, time_kind TEXT NOT NULL,
  time_start TEXT, time_end TEXT, preprocessing TEXT NOT NULL DEFAULT '[]', created TEXT NOT NULL,
  UNIQUE (data_hash, source));
CREATE TABLE training_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, plugin TEXT NOT NULL, target TEXT NOT NULL,
  config TEXT NOT NULL DEFAULT '{}', dataset_id INTEGER REFERENCES datasets (id) ON DELETE SET NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  message TEXT NOT NULL DEFAULT '', epochs_done INTEGER NOT NULL DEFAULT 0, started TEXT NOT NULL, finished TEXT);
CREATE TABLE model_versions (id INTEGER PRIMARY KEY AUTOINCREMENT, plugin TEXT NOT NULL, target TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  stage TEXT NOT NULL DEFAULT 'none' CHECK (stage IN ('none', 'staging', 'production', 'archived')),
  status TEXT NOT NULL CHECK (status IN ('training', 'trained', 'failed')), created TEXT NOT NULL,
  artifact_path TEXT, artifact_sha256 TEXT, config TEXT NOT NULL DEFAULT '{}', history TEXT NOT NULL DEFAULT '[]',
  metrics TEXT NOT NULL DEFAULT '{}', validation_performed INTEGER NOT NULL DEFAULT 0, validation_metrics TEXT,
  validation_data_hash TEXT, training_seconds REAL NOT NULL DEFAULT 0, library_versions TEXT NOT NULL DEFAULT '{}',
  dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT, UNIQUE (plugin, target, version));
CREATE TABLE feedback_labels (id INTEGER PRIMARY KEY AUTOINCREMENT,
  version_id INTEGER NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE, unit TEXT NOT NULL,
  range_start TEXT, range_end TEXT, label TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created TEXT NOT NULL);
PRAGMA user_version = 1;
"""

CREATED = "2025-06-01T12:00:00+00:00"


def build_v1_registry(home: Path) -> dict[str, int]:
    """A registry folder as version 1 left it: one dataset, a finished run, two versions."""
    artifacts = home / "artifacts"
    names = {}
    for name in ("aaa", "bbb"):
        (artifacts / name).mkdir(parents=True)
        (artifacts / name / "weights.pt").write_bytes(name.encode() * 10)
        names[name] = artifact_sha256(artifacts / name)
    with sqlite3.connect(home / "registry.db") as raw:
        raw.executescript(V1_SCHEMA)
        raw.execute(
            "INSERT INTO datasets (data_hash, source, file_sha256, format, units, rows, time_kind, time_start, "
            "time_end, preprocessing, created) VALUES ('h1', 'train_FD001.txt', 'f1', 'cmapss', 100, 20631, "
            "'cycle', '1', '362', '[]', ?)",
            (CREATED,),
        )
        raw.execute(
            "INSERT INTO training_runs (plugin, target, config, dataset_id, status, started, finished) "
            "VALUES ('telemanom', 'sensor_2', '{}', 1, 'succeeded', ?, ?)",
            (CREATED, CREATED),
        )
        for version, name, validated in ((1, "aaa", 1), (2, "bbb", 0)):
            raw.execute(
                "INSERT INTO model_versions (plugin, target, version, stage, status, created, artifact_path, "
                "artifact_sha256, config, history, metrics, validation_performed, validation_metrics, "
                "validation_data_hash, training_seconds, library_versions, dataset_id) VALUES "
                "('telemanom', 'sensor_2', ?, 'none', 'trained', ?, ?, ?, '{\"epochs\": 3}', '[]', "
                '\'{"mse": 0.1}\', ?, ?, ?, 12.5, \'{"torch": "2.4"}\', 1)',
                (
                    version,
                    CREATED,
                    name,
                    names[name],
                    validated,
                    json.dumps({"f1": 0.9}) if validated else None,
                    "hv" if validated else None,
                ),
            )
        raw.execute(
            "INSERT INTO feedback_labels (version_id, unit, range_start, range_end, label, created) "
            "VALUES (1, '7', '100', '120', 'true_anomaly', ?)",
            (CREATED,),
        )
    return {"v1": 1, "v2": 2}


def _schema(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as raw:
        tables = [
            r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        columns = {t: sorted(r[1] for r in raw.execute(f"PRAGMA table_info({t})")) for t in tables}
        indexes = sorted(r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'"))
        version = raw.execute("PRAGMA user_version").fetchone()[0]
    return {"columns": columns, "indexes": indexes, "version": version}


def test_v1_registry_is_migrated_on_open(tmp_path):
    home = tmp_path / "old"
    build_v1_registry(home)
    with Registry.open(home) as registry:
        old = registry.get(1)
        assert (old.version, old.status, old.config, old.extra, old.run_id) == (
            1,
            "trained",
            {"epochs": 3},
            {},
            None,
        )
        assert old.lineage["columns"] == [] and old.lineage["time_end"] == 362
        assert registry.artifact_dir(1).name == "aaa"
        # the v1 validation became the first entry of the KPI history
        assert [(h["kind"], h["metrics"], h["data_hash"]) for h in registry.metric_history(1)] == [
            ("validation", {"f1": 0.9}, "hv")
        ]
        assert registry.metric_history(2) == []
        assert registry.list_feedback(1)[0]["unit"] == 7
        # the migrated registry works like a new one
        registry.promote(1, "production")
        rec = registry.register_version(
            run_id=1,
            plugin="telemanom",
            target="sensor_2",
            dataset_id=1,
            config={},
            history=[],
            metrics={},
            validation_performed=False,
            validation_metrics=None,
            validation_data_hash=None,
            training_seconds=0.1,
            library_versions={},
            write_artifact=lambda d: (d / "weights.pt").write_bytes(b"new"),
        )
        assert rec.version == 3 and rec.run_id == 1
        assert registry.check().ok
    fresh = tmp_path / "fresh"
    Registry.open(fresh).close()
    assert _schema(home / "registry.db") == _schema(fresh / "registry.db")
    assert _schema(fresh / "registry.db")["version"] == LATEST_VERSION == 3


def test_reopening_does_not_migrate_again(tmp_path):
    Registry.open(tmp_path).close()
    before = _schema(tmp_path / "registry.db")
    Registry.open(tmp_path).close()
    assert _schema(tmp_path / "registry.db") == before


def test_models_name_the_migrated_columns(tmp_path):
    Registry.open(tmp_path).close()
    columns = _schema(tmp_path / "registry.db")["columns"]
    for model in MODELS:
        assert sorted(f.column_name for f in model._meta.sorted_fields) == columns[model._meta.table_name]


def test_registry_from_a_newer_program_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / "registry.db") as raw:
        raw.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(RegistryError, match="newer than this program"):
        Registry.open(tmp_path)


def test_wal_foreign_keys_and_busy_timeout_are_on(registry):
    pragmas = {
        name: registry.db.execute_sql(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "foreign_keys", "busy_timeout")
    }
    assert (
        pragmas["journal_mode"] == "wal" and pragmas["foreign_keys"] == 1 and pragmas["busy_timeout"] >= 5000
    )
