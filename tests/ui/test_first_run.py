"""First run on a bare Linux desktop: a sentence and exit 2 instead of Qt's abort; one discoverable --help.

The end-to-end cases run the real command in a subprocess: if the check let Qt create its application
on a machine without the libraries or a display, Qt would abort (SIGABRT, a negative return code)
rather than exit 2, and the test would see it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from turbofan_desktop.cli import main
from turbofan_desktop.ui import qt_platform
from turbofan_desktop.ui.qt_platform import (
    candidate_platforms,
    elf_dependencies,
    missing_libraries_sentence,
    platform_problem,
    x_display_problem,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb check is Linux only")

#: The two libraries a fresh Debian/Ubuntu most often lacks, as the stubbed loader reports them.
STUB_MISSING = ("libxcb-icccm.so.4", "libxcb-keysyms.so.1")

# Runs the real front end with the system loader replaced: every library loads except STUB_MISSING.
# Afterwards it reports whether any Qt application object was ever created.
STUBBED_START = textwrap.dedent(
    """
    import sys
    from turbofan_desktop.ui import qt_platform
    missing = set(sys.argv[1].split(","))
    qt_platform.system_library_loads = lambda soname: soname if soname in missing else None
    from turbofan_desktop.cli import main
    code = main([])
    widgets = sys.modules.get("PySide6.QtWidgets")
    print("QAPPLICATION", widgets is not None and widgets.QApplication.instance() is not None)
    sys.exit(code)
    """
)


def _desktop_env(**extra: str) -> dict[str, str]:
    """The test's environment (isolated TURBOFAN_HOME) without any display or platform choice."""
    env = {k: v for k, v in os.environ.items() if k not in {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("XDG_SESSION_TYPE", None)
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    env.update(extra)
    return env


def _free_display() -> str:
    """A display number no X server listens on (neither the socket file nor the abstract socket)."""
    for number in range(4000, 4100):
        if x_display_problem({"DISPLAY": f":{number}"}):
            return f":{number}"
    pytest.skip("no free X display number")


@linux_only
def test_missing_xcb_libraries_give_one_sentence_and_exit_2_without_a_qapplication():
    result = subprocess.run(
        [sys.executable, "-c", STUBBED_START, ",".join(STUB_MISSING)],
        env=_desktop_env(DISPLAY=_free_display()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "QAPPLICATION False" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one sentence, no Qt warning and no traceback
    sentence = lines[0]
    assert "libxcb-icccm.so.4 and libxcb-keysyms.so.1" in sentence
    assert "'sudo apt-get install libxcb-icccm4 libxcb-keysyms1' on Debian/Ubuntu" in sentence
    assert "'sudo dnf install xcb-util-wm xcb-util-keysyms' on Fedora" in sentence
    assert "QT_QPA_PLATFORM=offscreen" in sentence


@linux_only
def test_no_display_at_all_gives_one_sentence_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop"],
        env=_desktop_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no display (DISPLAY is not set)" in lines[0]
    assert "QT_QPA_PLATFORM=offscreen" in lines[0] and "xvfb-run" in lines[0]


@linux_only
def test_a_platform_the_user_chose_is_not_second_guessed():
    # no display at all, and the libraries "missing": offscreen, vnc ... need neither
    def nothing_loads(soname):
        return soname

    for chosen in ("offscreen", "vnc", "minimal:enable_fonts"):
        assert platform_problem({"QT_QPA_PLATFORM": chosen}, loads=nothing_loads) is None
    assert platform_problem({}, system="darwin") is None
    assert platform_problem({}, system="win32") is None


def test_an_empty_plugin_folder_is_reported_as_a_missing_plugin(tmp_path):
    problem = platform_problem(
        {"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, system="linux", folders=([tmp_path], [tmp_path])
    )
    assert problem is not None
    assert f"platform plugin is missing ({tmp_path / 'libqxcb.so'})" in problem
    assert "pip install --force-reinstall PySide6-Essentials" in problem
    assert "\n" not in problem


def test_qt_tries_platforms_in_its_own_order():
    assert candidate_platforms({}) == ["xcb"]
    assert candidate_platforms({"DISPLAY": ":0"}) == ["xcb"]
    assert candidate_platforms({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}) == ["wayland", "xcb"]
    assert candidate_platforms({"XDG_SESSION_TYPE": "wayland"}) == ["wayland"]
    assert candidate_platforms({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"}) == ["wayland", "xcb"]
    assert candidate_platforms({"QT_QPA_PLATFORM": "", "DISPLAY": ":0"}) == ["xcb"]  # empty = unset


@linux_only
def test_a_working_wayland_session_is_enough_when_xcb_lacks_libraries(tmp_path):
    (tmp_path / "wayland-0").touch()  # the compositor's socket, as Qt looks for it
    env = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path)}

    def xcb_libraries_missing(soname):
        return soname if soname in STUB_MISSING else None

    assert platform_problem(env, loads=xcb_libraries_missing) is None
    # without the compositor, Qt falls back to xcb, which lacks its libraries: that is the sentence
    (tmp_path / "wayland-0").unlink()
    problem = platform_problem(env, loads=xcb_libraries_missing)
    assert problem is not None and "libxcb-icccm4 libxcb-keysyms1" in problem


@linux_only
def test_the_xcb_plugin_dependencies_are_read_from_the_real_plugin():
    plugin_dirs, lib_dirs = qt_platform.qt_folders()
    plugin = next((d / "libqxcb.so" for d in plugin_dirs if (d / "libqxcb.so").is_file()), None)
    if plugin is None:
        pytest.skip("this PySide6 has no xcb plugin")
    deps = elf_dependencies(plugin)
    assert deps is not None
    needed, _ = deps
    assert "libQt6XcbQpa.so.6" in needed and "libxcb.so.1" in needed
    # libQt6XcbQpa is Qt's own, in the PySide6 folder: followed, never asked of the system loader
    asked: list[str] = []
    qt_platform.missing_libraries(plugin, lib_dirs, lambda soname: asked.append(soname))
    assert not any(name.startswith("libQt6") for name in asked)
    assert "libxcb-cursor.so.0" in asked  # needed by libQt6XcbQpa since Qt 6.5, not by the plugin
    assert elf_dependencies(Path(__file__)) is None  # not an ELF file: no answer rather than a guess


def test_system_library_loads_names_what_the_loader_misses():
    assert qt_platform.system_library_loads("libturbofan-not-there.so.7") == "libturbofan-not-there.so.7"


def test_unknown_libraries_still_get_install_hints():
    sentence = missing_libraries_sentence("xcb", ["libxcb-cursor.so.0", "libfoo.so.3"])
    assert (
        "'sudo apt-get install libxcb-cursor0' on Debian/Ubuntu (plus the package that provides libfoo.so.3)"
        in (sentence)
    )
    assert "'sudo dnf install xcb-util-cursor \"libfoo.so.3()(64bit)\"' on Fedora" in sentence


@linux_only
def test_a_listening_x_server_counts_as_a_display():
    name = f"/tmp/.X11-unix/X{4100 + uuid.uuid4().int % 800}"
    display = ":" + name.rsplit("X", 1)[1]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind("\0" + name)  # the abstract socket: no file left behind
        server.listen(1)
        assert x_display_problem({"DISPLAY": display}) is None
    assert x_display_problem({"DISPLAY": display}) == f"no X server answers on DISPLAY={display}"
    assert x_display_problem({"DISPLAY": "localhost:10.0"}) is None  # ssh -X: Qt tries it


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["some.csv", "--help"], ["--help-commands"]])
def test_help_names_the_app_options_and_the_commands(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code in (0, None)
    text = capsys.readouterr().out
    for option in ("--self-test", "--screenshot", "--demo-train", "--registry"):
        assert option in text
    assert "desktop application (no COMMAND)" in text
    assert "headless commands" in text and "train" in text and "detect" in text


def test_the_gui_script_has_the_same_help(monkeypatch, capsys):
    from turbofan_desktop.cli import gui_main

    monkeypatch.setattr(sys, "argv", ["turbofan-desktop-gui", "--help"])
    with pytest.raises(SystemExit):
        gui_main()
    text = capsys.readouterr().out
    assert "--self-test" in text and "--screenshot" in text and "headless commands" in text
