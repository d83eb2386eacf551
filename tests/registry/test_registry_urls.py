"""The registry named by a URL: sqlite:/// and postgresql:// wherever a folder is accepted, passwords
never shown or stored, and who/where recorded on every version and run."""

from __future__ import annotations

import getpass
import socket

import pytest

from turbofan_desktop.config import load_settings
from turbofan_desktop.errors import ConfigError, RegistryError
from turbofan_desktop.registry import Registry
from turbofan_desktop.registry.db import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ann:s3cret@db.example:5432/reg", "postgresql://ann@db.example:5432/reg"),
        (
            "postgresql://ann@db/reg?password=s3cret&sslmode=require",
            "postgresql://ann@db/reg?sslmode=require",
        ),
        ("postgresql://ann@db/reg", "postgresql://ann@db/reg"),
        ("/home/ann/registry", "/home/ann/registry"),
        ("sqlite:////tmp/r/registry.db", "sqlite:////tmp/r/registry.db"),
    ],
)
def test_urls_are_redacted(url, shown):
    assert redact_url(url) == shown


def test_settings_refuse_a_password_in_the_registry_url(tmp_path):
    config = tmp_path / "settings.toml"
    config.write_text('registry = "postgresql://ann:s3cret@db/reg"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings.toml.*password.*pgpass") as caught:
        load_settings(env={}, config_file=config)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"\$TURBOFAN_REGISTRY"):
        load_settings(env={"TURBOFAN_REGISTRY": "postgresql://ann:s3cret@db/reg"}, config_file=config)
    config.write_text('registry = "postgresql://ann@db/reg"\n', encoding="utf-8")
    assert load_settings(env={}, config_file=config).registry_location == "postgresql://ann@db/reg"


def test_sqlite_url_opens_the_folder_of_its_file(cli, tmp_path):
    url = f"sqlite://{tmp_path}/team/registry.db"  # sqlite:///abs/path/registry.db
    code, _, err = cli("models", "list", "--registry", url)
    assert code == 2 and f"'{tmp_path}/team' does not exist" in err  # a typo creates nothing
    Registry.open(url).close()
    assert (tmp_path / "team" / "registry.db").is_file() and (tmp_path / "team" / "artifacts").is_dir()
    assert cli("models", "list", "--json", "--registry", url)[:2] == (0, [])
    with pytest.raises(ConfigError, match="registry.db"):
        Registry.open(f"sqlite:///{tmp_path}/other.db")


def test_unknown_scheme_or_unreachable_server_is_one_sentence_without_the_password(cli):
    code, _, err = cli("models", "list", "--registry", "mysql://ann:s3cret@db/reg")
    assert code == 2 and "Unknown registry database URL" in err and "s3cret" not in err
    with pytest.raises(
        RegistryError, match=r"Cannot connect to the registry postgresql://ann@127\.0\.0\.1:1/x"
    ) as caught:
        Registry.open("postgresql://ann:s3cret@127.0.0.1:1/x?connect_timeout=2")
    assert "s3cret" not in str(caught.value)


def test_who_and_where_are_recorded_and_listed(cli, registry, make_version, dataset_id):
    run = registry.start_run(plugin="telemanom", target="sensor_2", config={}, dataset_id=dataset_id)
    rec = make_version(run_id=run)
    who, where = getpass.getuser(), socket.gethostname()
    assert (rec.os_user, rec.host) == (who, where) and rec.made_by == f"{who}@{where}"
    assert registry.get_run(run).os_user == who and registry.get_run(run).host == where
    code, text, _ = cli("models", "list")
    assert code == 0 and "BY" in text.splitlines()[0] and f"{who}@{where}" in text
    code, data, _ = cli("models", "list", "--json")
    assert data[0]["os_user"] == who and data[0]["host"] == where


@pytest.mark.postgres_only
def test_cli_accepts_a_postgres_url_and_never_prints_its_password(
    cli, registry, registry_location, make_version
):
    rec = make_version()
    with_password = registry_location.replace("postgres@", "postgres:s3cret@", 1)  # trust auth ignores it
    code, data, err = cli("models", "list", "--json", "--registry", with_password)
    assert code == 0 and [d["id"] for d in data] == [rec.id]
    code, text, err = cli("registry", "check", "--registry", with_password)
    assert code == 0 and "s3cret" not in text + err
    assert registry.location == redact_url(registry_location)


def test_workspace_names_its_registry_without_the_password(tmp_path):
    from turbofan_desktop.config import Settings
    from turbofan_desktop.services import Workspace

    given = Settings(home=tmp_path, registry="postgresql://ann:s3cret@db.example/reg")  # e.g. from --registry
    assert Workspace.without_registry(settings=given).registry_name == "postgresql://ann@db.example/reg"
    assert Workspace.without_registry(settings=Settings(home=tmp_path)).registry_name == str(tmp_path)
