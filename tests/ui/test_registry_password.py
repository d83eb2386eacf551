"""A registry server that asks for a password none of libpq's sources has: the GUI asks in a password
dialog and the CLI on the terminal (getpass); the password is used for the connection only and never
appears in the settings, the status bar, the recent registries, the log or an error."""

from __future__ import annotations

import getpass
import sys

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("psycopg")

from pg_password_server import PASSWORD, password_server, unavailable_reason  # noqa: E402
from PySide6.QtWidgets import QInputDialog  # noqa: E402

from turbofan_desktop.cli import main  # noqa: E402
from turbofan_desktop.errors import PasswordRequiredError  # noqa: E402
from turbofan_desktop.registry import Registry  # noqa: E402


@pytest.fixture(scope="module")
def server_url():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with password_server() as url:
        yield url


@pytest.fixture(autouse=True)
def no_stored_password(monkeypatch, tmp_path):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def test_without_a_password_opening_is_one_sentence_that_says_how_to_give_one(server_url, tmp_path):
    with pytest.raises(PasswordRequiredError, match=r"asks for a password\. .*~/\.pgpass") as caught:
        Registry.open(server_url, cache_root=tmp_path)
    assert caught.value.url == server_url and not caught.value.refused
    with pytest.raises(PasswordRequiredError, match="refused the one given"):
        Registry.open(server_url, cache_root=tmp_path, password="wrong")
    with Registry.open(server_url, cache_root=tmp_path, password=PASSWORD) as registry:
        assert registry.count_versions() == 0


def test_the_cli_asks_on_a_terminal_and_says_one_sentence_without_one(
    server_url, monkeypatch, capsys, isolated_home
):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["models", "list", "--registry", server_url]) == 2
    assert "asks for a password" in capsys.readouterr().err

    prompts = []
    answers = iter(["wrong", PASSWORD])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    assert main(["models", "list", "--registry", server_url]) == 0
    out, err = capsys.readouterr()
    assert prompts == [f"Password for {server_url}: ", f"Wrong password. Password for {server_url}: "]
    assert PASSWORD not in out + err
    assert PASSWORD not in _everything_written(isolated_home)


def test_the_gui_asks_in_a_password_dialog_and_keeps_it_nowhere(
    qtbot, main_window, server_url, monkeypatch, isolated_home
):
    asked = []
    answers = iter(["wrong", PASSWORD])

    def get_text(parent, title, label, echo, *args, **kwargs):
        asked.append((label, echo))
        return next(answers), True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    main_window.open_registry(server_url)
    with qtbot.waitSignal(main_window.registry_switched, timeout=30000):
        pass
    assert [echo for _, echo in asked] == [QLineEditPassword()] * 2
    assert "refused" not in asked[0][0] and "refused" in asked[1][0]
    assert main_window.registry_label.text() == f"Registry: {server_url}"
    assert main_window.workspace.registry.count_versions() == 0
    main_window.ui_settings.sync()
    main_window.close()
    assert PASSWORD not in _everything_written(isolated_home)


def QLineEditPassword():  # noqa: N802 - named after the Qt value it returns
    from PySide6.QtWidgets import QLineEdit

    return QLineEdit.EchoMode.Password


def _everything_written(home) -> str:
    """The text of every file under the test's home: settings, ui.ini, logs, caches."""
    texts = []
    for path in home.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)
