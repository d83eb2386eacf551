"""Schema versions: a registry written by schema v1 is migrated when opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from turbofan_desktop.errors import RegistryError
from turbofan_desktop.registry import LATEST_VERSION, Registry, TrainingProvenance, artifact_sha256
from turbofan_desktop.registry.schema import bind_tables

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
        assert (old.version, old.status, old.config, old.provenance, old.run_id) == (
            1,
            "trained",
            {"epochs": 3},
            TrainingProvenance(),
            None,
        )
        assert old.lineage["columns"] == [] and old.lineage["time_end"] == 362
        assert registry.artifact_dir(1).name == "aaa"
        # the v1 validation became the first entry of the KPI history
        assert [(h.kind, h.metrics, h.data_hash) for h in registry.metric_history(1)] == [
            ("validation", {"f1": 0.9}, "hv")
        ]
        assert registry.metric_history(2) == []
        assert registry.list_feedback(1)[0].unit == 7
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
    assert _schema(fresh / "registry.db")["version"] == LATEST_VERSION == 6


def test_reopening_does_not_migrate_again(tmp_path):
    Registry.open(tmp_path).close()
    before = _schema(tmp_path / "registry.db")
    Registry.open(tmp_path).close()
    assert _schema(tmp_path / "registry.db") == before


def test_models_name_the_migrated_columns(tmp_path):
    Registry.open(tmp_path).close()
    columns = _schema(tmp_path / "registry.db")["columns"]
    for model in bind_tables(None).models:
        assert sorted(f.column_name for f in model._meta.sorted_fields) == columns[model._meta.table_name]


def test_registry_from_a_newer_program_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / "registry.db") as raw:
        raw.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(RegistryError, match="newer than this program"):
        Registry.open(tmp_path)


@pytest.mark.sqlite_only
def test_wal_foreign_keys_and_busy_timeout_are_on(registry):
    pragmas = {
        name: registry.db.execute_sql(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "foreign_keys", "busy_timeout")
    }
    assert (
        pragmas["journal_mode"] == "wal" and pragmas["foreign_keys"] == 1 and pragmas["busy_timeout"] >= 5000
    )


# An ``extra`` document exactly as services/training.py wrote it under schema 3.
TRAINED_EXTRA = {
    "split": {
        "train": [1, 4, 5],
        "val": [2],
        "test": [3],
        "seed": 3,
        "val_fraction": 0.2,
        "test_fraction": 0.1,
    },
    "seed": 3,
    "val_fraction": 0.2,
    "test_fraction": 0.1,
    "source": {
        "path": "/data/train_FD001.txt",
        "rul_path": None,
        "unit_col": None,
        "time_col": None,
        "format": "cmapss",
        "data_hash": "src-hash",
        "units": 5,
    },
    "validation": {"split": "val", "units": 1, "data_hash": "val-hash"},
    "held_out": {"split": "test", "frame_hash": "held-hash"},
    "fit": {
        "epochs_run": 2,
        "best_epoch": 1,
        "stopped_early": False,
        "seed": 3,
        "notes": ["ran all 2 epochs"],
    },
    "model_version": "0.3.1",
}


def build_v3_registry(home: Path) -> dict[str, dict]:
    """A registry as schema 3 left it: the v1 rows, migrated by the released steps 2 and 3, plus
    versions whose ``extra`` holds a training document, hand-registered statistics, unknown keys and
    a part of the wrong shape."""
    from turbofan_desktop.registry.migrations import V2, V3

    build_v1_registry(home)
    extras = {
        "trained": TRAINED_EXTRA,
        "stats": {
            "training_stats": {"format": "turbofan-training-stats/1", "sensors": {"s_2": {"mean": 1.0}}}
        },
        "odd": {"threshold": "nonparametric", "split": "not-a-split", "model_version": 7},
    }
    with sqlite3.connect(home / "registry.db") as raw:
        for statement in (*V2, *V3):
            raw.execute(statement)
        raw.execute("PRAGMA user_version = 3")
        raw.execute("UPDATE model_versions SET run_id = 1 WHERE id = 1")
        for version, document in enumerate(extras.values(), start=3):
            raw.execute(
                "INSERT INTO model_versions (plugin, target, version, stage, status, created, config, history, "
                "metrics, training_seconds, library_versions, dataset_id, run_id, extra) VALUES "
                "('telemanom', 'sensor_2', ?, 'none', 'failed', ?, '{}', '[]', '{}', 1.0, '{}', 1, 1, ?)",
                (version, CREATED, json.dumps(document)),
            )
        raw.execute(
            "INSERT INTO feedback_labels (version_id, unit, range_start, range_end, label, created, data_key) "
            "VALUES (3, '2', '5', '9', 'false_alarm', ?, 'key-1')",
            (CREATED,),
        )
    return extras


def test_v3_extra_documents_become_typed_provenance(tmp_path):
    home = tmp_path / "v3"
    extras = build_v3_registry(home)
    with sqlite3.connect(home / "registry.db") as raw:
        before = raw.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0]
    with Registry.open(home) as registry:
        trained, stats, odd = (registry.get(i) for i in (3, 4, 5))
        # the training document is now typed, and prints as the same JSON it was
        assert trained.provenance.split.test == (3,) and trained.provenance.seed == 3
        assert trained.provenance.source.path == "/data/train_FD001.txt"
        assert trained.provenance.held_out.frame_hash == "held-hash"
        assert (
            trained.provenance.fit.notes == ("ran all 2 epochs",)
            and trained.provenance.model_version == "0.3.1"
        )
        assert json.dumps(trained.to_dict()["extra"]) == json.dumps(extras["trained"])
        assert stats.provenance.training_stats == extras["stats"]["training_stats"]
        assert stats.to_dict()["extra"] == extras["stats"]
        # what no field names is kept, not dropped
        assert odd.provenance.split is None and odd.provenance.model_version is None
        assert odd.provenance.legacy == extras["odd"]
        assert odd.to_dict()["extra"] == extras["odd"]
        # the v1 versions had no extra: empty provenance; everything else survived
        assert registry.get(1).provenance == TrainingProvenance() and registry.get(1).run_id == 1
        assert registry.count_versions() == before == 5
        assert registry.list_feedback(3)[0].data_key == "key-1"
        assert [h.kind for h in registry.metric_history(1)] == ["validation"]
    fresh = tmp_path / "fresh"
    Registry.open(fresh).close()
    assert _schema(home / "registry.db") == _schema(fresh / "registry.db")
    assert "extra" not in _schema(home / "registry.db")["columns"]["model_versions"]


def test_an_unreadable_extra_document_is_kept_as_legacy(tmp_path):
    home = tmp_path / "v3"
    build_v3_registry(home)
    with sqlite3.connect(home / "registry.db") as raw:
        raw.execute("UPDATE model_versions SET extra = '{not json' WHERE id = 2")
    with Registry.open(home) as registry:
        assert registry.get(2).provenance.legacy == {"unreadable_extra": "{not json"}


def test_an_sqlite_too_old_to_drop_a_column_refuses_the_upgrade_and_changes_nothing(tmp_path, monkeypatch):
    home = tmp_path / "v3"
    build_v3_registry(home)
    before = _schema(home / "registry.db")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    with pytest.raises(RegistryError, match="needs SQLite 3.35 or newer"):
        Registry.open(home)
    assert _schema(home / "registry.db") == before and before["version"] == 3
