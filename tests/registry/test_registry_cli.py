"""The registry commands: models list/show/promote/delete/cleanup, registry check, status."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import change_artifact, plant_orphan, remove_artifact


def test_models_list_filters_and_json_shape(cli, make_version):
    assert cli("models", "list", "--json")[:2] == (0, [])
    first = make_version(validated=True)
    make_version(plugin="transformer", target="*")
    newest = make_version()
    code, data, _ = cli("models", "list", "--json")
    assert code == 0 and [d["id"] for d in data] == [newest.id, newest.id - 1, first.id]
    entry = data[-1]
    for key in ("id", "plugin", "target", "version", "stage", "status", "validation_performed", "metrics"):
        assert key in entry
    assert entry["metrics"] == {"mse": 0.25} and entry["validation_performed"] is True
    assert {k: entry["lineage"][k] for k in ("data_hash", "num_samples", "time_start", "time_end")} == {
        "data_hash": "hash-a",
        "num_samples": 120,
        "time_start": 1,
        "time_end": 45,
    }
    assert entry["lineage"]["source"] == "train_FD001.txt"
    code, data, _ = cli("models", "list", "--json", "--plugin", "telemanom", "--limit", "1", "--offset", "1")
    assert [d["id"] for d in data] == [first.id]
    assert [d["target"] for d in cli("models", "list", "--json", "--target", "*")[1]] == ["*"]
    code, text, _ = cli("models", "list")
    assert code == 0 and "telemanom" in text and "transformer" in text


def test_models_show(cli, make_version, registry):
    rec = make_version(validated=True)
    registry.add_feedback(rec.id, unit=2, start=5, end=9, label="false_alarm")
    code, data, _ = cli("models", "show", str(rec.id), "--json")
    assert code == 0 and data["id"] == rec.id and data["artifact_sha256"] == rec.artifact_sha256
    assert data["metric_history"][0]["kind"] == "validation" and data["feedback"][0]["label"] == "false_alarm"
    code, text, _ = cli("models", "show", str(rec.id))
    assert code == 0 and f"(#{rec.id})" in text
    code, _, err = cli("models", "show", "999")
    assert code == 2 and "Model version 999 does not exist" in err and "Traceback" not in err


def test_models_promote_delete_cleanup(cli, make_version):
    plain = make_version()
    code, _, err = cli("models", "promote", str(plain.id), "--stage", "production")
    assert code == 2 and "has not been validated" in err
    old, new = make_version(validated=True), make_version(validated=True)
    assert (
        cli("models", "promote", str(old.id), "--stage", "production", "--json")[1]["stage"] == "production"
    )
    code, data, _ = cli("models", "promote", str(new.id), "--stage", "production", "--json")
    assert code == 0 and data["stage"] == "production" and data["archived_id"] == old.id
    code, _, err = cli("models", "delete", str(new.id))
    assert code == 2 and "in production" in err
    assert cli("models", "delete", str(new.id), "--force", "--json")[:2] == (
        0,
        {"deleted": new.id, "label": new.label},
    )
    assert not Path(new.artifact_path).exists()
    extra = [make_version() for _ in range(2)]
    code, data, _ = cli("models", "cleanup", "--keep", "1", "--json")
    assert code == 0 and data["deleted"] == sorted([plain.id, old.id, extra[0].id])
    assert data["remaining"] == 1
    with pytest.raises(SystemExit) as refused:  # argparse refuses it with a usage line
        cli("models", "cleanup", "--keep", "-1")
    assert refused.value.code == 2


def test_status_command(cli, make_version):
    assert cli("status", "--json")[:2] == (0, [])
    rec = make_version(validated=True)
    code, data, _ = cli("status", "--json")
    assert code == 0 and data[0]["latest_id"] == rec.id and data[0]["validated"] is True
    code, text, _ = cli("status")
    assert code == 0 and "sensor_2" in text and "telemanom" in text


def test_registry_check_and_repair(cli, make_version, registry):
    rec = make_version()
    assert cli("registry", "check", "--json")[:2][0] == 0
    quarantined = plant_orphan(registry)
    code, data, _ = cli("registry", "check", "--json")
    assert code == 1 and [p["kind"] for p in data["problems"]] == ["orphan_artifact"] and not data["ok"]
    code, text, _ = cli("registry", "check")
    assert code == 1 and "--repair" in text
    code, data, _ = cli("registry", "check", "--repair", "--json")
    assert code == 0 and data["ok"] and data["repaired"][0]["kind"] == "orphan_artifact"
    assert quarantined.exists() and not registry.artifacts.has("0123456789abcdef", any_entry=True)
    change_artifact(registry, rec, lambda folder: (folder / "weights.pt").write_bytes(b"tampered"))
    code, data, _ = cli("registry", "check", "--repair", "--json")
    assert (
        code == 1
        and data["problems"][0]["kind"] == "sha_mismatch"
        and data["problems"][0]["version_id"] == rec.id
    )


def test_explicit_registry_folder(cli, tmp_path, make_version):
    make_version()  # in the default TURBOFAN_HOME, not in the folder below
    assert cli("models", "list", "--json", "--registry", str(tmp_path))[:2] == (0, [])
    assert (tmp_path / "registry.db").exists()
    code, _, err = cli("status", "--registry", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nope").exists()


def test_models_delete_says_when_the_artifact_was_already_gone(cli, make_version, registry):
    """The sentence names what happened to the artifact; the JSON shape stays the same."""
    present, gone = make_version(), make_version()
    remove_artifact(registry, gone)
    code, text, _ = cli("models", "delete", str(present.id))
    assert code == 0 and text.strip() == f"Deleted model version {present.label} and its artifact."
    code, text, _ = cli("models", "delete", str(gone.id))
    assert code == 0 and text.strip() == f"Deleted model version {gone.label}; its artifact was already gone."
    assert cli("models", "list", "--json")[:2] == (0, [])


def test_plugins_command_opens_no_registry(cli, isolated_home):
    """Listing plugins neither opens nor creates a registry in TURBOFAN_HOME."""
    code, data, _ = cli("plugins", "--json")
    assert code == 0 and {row["name"] for row in data["plugins"]} >= {"telemanom", "transformer"}
    assert not (isolated_home / "registry.db").exists()
