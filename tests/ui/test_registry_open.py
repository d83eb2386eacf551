"""File > Registry > Open… on real registries: a second folder and a PostgreSQL database opened through
the window's service path, the status bar and recent registries without passwords, and versions that
another program registers appearing in the models panel within the poll interval, selection kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.registry import Registry  # noqa: E402
from turbofan_desktop.ui.models_panel import COLUMNS  # noqa: E402
from turbofan_desktop.ui.registry_dialog import RegistryOpenDialog  # noqa: E402

POLL_S = 0.3
TESTS = Path(__file__).resolve().parents[1]


def _open_through_menu(qtbot, window, location: str):
    """What File > Registry > Open… does once the dialog returned ``location``."""
    handle = window.open_registry(location)
    assert handle is not None
    with qtbot.waitSignal(window.registry_switched, timeout=20000):
        pass
    return handle


def _shown_ids(panel) -> list[int]:
    return [record.id for record in panel.records]


def test_a_second_folder_opens_and_a_version_registered_elsewhere_appears_with_the_selection_kept(
    qtbot, main_window, tmp_path
):
    other = tmp_path / "team-registry"
    with Registry.open(other) as writer:
        first = register_stub_version(writer, plugin="fake", target="s_2")
    _open_through_menu(qtbot, main_window, str(other))

    panel = main_window.models_panel
    assert main_window.registry_label.text() == f"Registry: {other}"
    assert main_window.ui_settings.recent_registries()[0] == str(other)
    assert _shown_ids(panel) == [first.id]
    assert panel.table.item(0, COLUMNS.index("by")).text() == first.made_by != "-"
    panel.select_version(first.id)
    panel.watch_registry(POLL_S)

    with Registry.open(other) as writer:  # another program, its own connection
        second = register_stub_version(writer, plugin="fake", target="s_3")
    qtbot.waitUntil(lambda: second.id in _shown_ids(panel), timeout=int(POLL_S * 1000 * 10))
    assert panel.selected_ids() == [first.id]
    assert panel.watcher.polls >= 2


def test_a_postgresql_registry_opens_by_url_without_showing_the_password_and_sees_another_process(
    qtbot, main_window, fresh_postgres, isolated_home
):
    scheme, rest = fresh_postgres.split("://", 1)
    user, host = rest.split("@", 1)
    with_password = f"{scheme}://{user}:s3cret@{host}"  # the local server trusts, so any password works
    _open_through_menu(qtbot, main_window, with_password)

    panel = main_window.models_panel
    assert main_window.registry_label.text() == f"Registry: {fresh_postgres}"
    assert all("s3cret" not in entry for entry in main_window.ui_settings.recent_registries())
    main_window.ui_settings.sync()
    assert "s3cret" not in main_window.ui_settings.path.read_text(encoding="utf-8")
    assert panel.records == []
    panel.watch_registry(POLL_S)

    with Registry.open(fresh_postgres, cache_root=isolated_home / "cache") as writer:
        first = register_stub_version(writer)
    qtbot.waitUntil(lambda: _shown_ids(panel) == [first.id], timeout=int(POLL_S * 1000 * 10))
    panel.select_version(first.id)

    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from stub_versions import register_stub_version
        from turbofan_desktop.registry import Registry
        with Registry.open({fresh_postgres!r}, cache_root={str(isolated_home / "cache2")!r}) as reg:
            print(register_stub_version(reg, target="s_4").id)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    other_id = int(done.stdout.strip())
    qtbot.waitUntil(lambda: other_id in _shown_ids(panel), timeout=int(POLL_S * 1000 * 10))
    assert panel.selected_ids() == [first.id]


def test_a_location_that_cannot_be_opened_is_one_sentence_and_the_registry_stays(
    qtbot, main_window, isolated_home, capsys
):
    main_window.interactive = False
    before = main_window.registry_label.text()
    handle = main_window.open_registry("nosuch://host/db")
    with qtbot.waitSignal(handle.failed, timeout=20000) as failed:
        pass
    assert "Unknown registry database URL 'nosuch://host/db'" in failed.args[0]
    assert main_window.registry_label.text() == before
    assert main_window.workspace.registry.home == isolated_home
    assert main_window.ui_settings.recent_registries() == []


def test_another_registry_waits_for_running_jobs(qtbot, main_window, tmp_path):
    import threading

    main_window.interactive = False
    release = threading.Event()
    job = main_window.jobs.submit("hold", lambda progress, should_stop: release.wait(10))
    qtbot.waitUntil(lambda: main_window.jobs.running_count() == 1, timeout=5000)
    try:
        assert main_window.open_registry(str(tmp_path / "elsewhere")) is None
        assert "Wait for the running jobs" in main_window.statusBar().currentMessage()
    finally:
        release.set()
        with qtbot.waitSignal(job.finished, timeout=10000):
            pass
    assert not (tmp_path / "elsewhere").exists()


def test_the_dialog_offers_a_folder_field_and_the_recent_registries(qtbot, tmp_path):
    dialog = RegistryOpenDialog(str(tmp_path), [str(tmp_path / "a"), "postgresql://ann@db/reg"])
    qtbot.addWidget(dialog)
    assert dialog.recent_list.count() == 2
    dialog.recent_list.setCurrentRow(1)
    assert dialog.location() == "postgresql://ann@db/reg"
    dialog.location_edit.setText("  /srv/share/registry  ")
    assert dialog.location() == "/srv/share/registry"


def test_a_mistyped_folder_is_refused_and_a_read_only_server_user_is_named_in_the_status_bar(
    qtbot, main_window, tmp_path, fresh_postgres, isolated_home
):
    import uuid

    import psycopg

    main_window.interactive = False
    handle = main_window.open_registry(str(tmp_path / "no-such-folder"))
    with qtbot.waitSignal(handle.failed, timeout=20000) as failed:
        pass
    assert "does not exist" in failed.args[0] and not (tmp_path / "no-such-folder").exists()

    Registry.open(fresh_postgres, cache_root=isolated_home / "cache").close()  # the tables exist
    role = f"turbofan_viewer_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    scheme, rest = fresh_postgres.split("://", 1)
    viewer = f"{scheme}://{role}@{rest.split('@', 1)[1]}"
    try:
        _open_through_menu(qtbot, main_window, viewer)
        assert main_window.registry_label.text() == f"Registry: {viewer} (read-only)"
        assert main_window.models_panel.records == []
    finally:
        main_window.close()  # the window's connections as that role end before it is dropped
        main_window.workspace.close()
        with psycopg.connect(fresh_postgres, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
