"""Can Qt open a window here? Checked before the QApplication exists, so a bare system gets a sentence.

When Qt cannot initialise its platform plugin it prints a long warning and aborts the process (SIGABRT):
no Python exception, no exit status a script can read. The usual causes on a fresh Linux machine are
system libraries the ``xcb`` plugin links (``libxcb-cursor0``, ``libxcb-icccm4`` ...) and a session
without any display (ssh, CI, a container). :func:`platform_problem` finds both without creating a
QApplication and without spawning anything: it reads the plugins' ELF dependency lists (``DT_NEEDED``,
what ``ldd`` shows), resolves Qt's own libraries inside the PySide6 (or frozen) folder, and asks the
dynamic loader for every system library with ``ctypes.CDLL``.

It mirrors how Qt chooses the platform (``QGuiApplicationPrivate::createPlatformIntegration``):
``QT_QPA_PLATFORM`` wins when set and may list fallbacks (``wayland;xcb``); otherwise Qt tries
``wayland`` when ``WAYLAND_DISPLAY`` or ``XDG_SESSION_TYPE=wayland`` is set, then ``xcb``. The window
can open when any candidate can. Platforms other than xcb and wayland (offscreen, vnc, eglfs ...)
are respected as chosen and not checked. Outside Linux nothing is checked.
"""

from __future__ import annotations

import ctypes
import importlib.util
import mmap
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Package names for the libraries Qt's xcb and wayland plugins (and Qt itself) take from the system:
#: soname -> (Debian/Ubuntu package, Fedora package).
SYSTEM_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libz.so.1": ("zlib1g", "zlib"),
    "libzstd.so.1": ("libzstd1", "libzstd"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

#: The plugin file that provides each platform we check (``platforms/libq<name>.so``).
PLUGIN_FILES = {"xcb": "libqxcb.so", "wayland": "libqwayland.so"}

#: --screenshot renders offscreen by default and --self-test never opens a window: both work on any machine.
HEADLESS_HINT = "--self-test and --screenshot PATH work without a display, with QT_QPA_PLATFORM=offscreen"


@dataclass
class Candidate:
    """What stops one platform plugin: a missing display, missing libraries or a missing plugin file."""

    name: str
    no_display: str | None = None  # why no display can be reached, e.g. "DISPLAY is not set"
    missing_libraries: list[str] = field(default_factory=list)
    missing_plugin: Path | None = None

    @property
    def usable(self) -> bool:
        return not (self.no_display or self.missing_libraries or self.missing_plugin)


# ---------------------------------------------------------------------------------------------- ELF


def elf_dependencies(path: Path) -> tuple[list[str], list[str]] | None:
    """``(DT_NEEDED sonames, DT_RUNPATH/DT_RPATH folders)`` of an ELF shared object, or None if unreadable.

    The few fields needed are read from the section headers: the ``SHT_DYNAMIC`` section and the string
    table it links to. Plain reads, nothing loaded or executed.
    """
    # mapped, not read: only the pages of the headers and the dynamic section are touched (reading
    # libQt6Core and libQt6Gui whole cost ~100 ms of start-up)
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _elf_dependencies(data)
    except (OSError, ValueError):  # unreadable, or empty (mmap refuses a zero-length file)
        return None


def _elf_dependencies(data: mmap.mmap) -> tuple[list[str], list[str]] | None:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    header_fields = (0x28, "Q", 0x3A) if wide else (0x20, "I", 0x2E)  # e_shoff; e_shentsize, e_shnum
    section = order + ("IIQQQQIIQQ" if wide else "IIIIIIIIII")  # Elf64_Shdr / Elf32_Shdr
    entry = order + ("qQ" if wide else "iI")  # Elf64_Dyn / Elf32_Dyn: d_tag, d_val
    try:
        (shoff,) = struct.unpack_from(order + header_fields[1], data, header_fields[0])
        shentsize, shnum = struct.unpack_from(order + "HH", data, header_fields[2])
        headers = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
        needed: list[str] = []
        paths: list[str] = []
        for _name, kind, _flags, _addr, offset, size, link, *_ in headers:
            if kind != 6:  # SHT_DYNAMIC; its sh_link is the string table the entries point into
                continue
            strings = headers[link][4]
            for pos in range(offset, offset + size, struct.calcsize(entry)):
                tag, value = struct.unpack_from(entry, data, pos)
                if tag == 0:  # DT_NULL ends the table
                    break
                if tag == 1:  # DT_NEEDED
                    needed.append(_c_string(data, strings + value))
                elif tag in (15, 29):  # DT_RPATH, DT_RUNPATH
                    paths += _c_string(data, strings + value).split(":")
        return needed, paths
    except (struct.error, IndexError, ValueError):  # a truncated or odd file: no answer, not a guess
        return None


def _c_string(data: mmap.mmap, start: int) -> str:
    end = data.find(b"\0", start)
    if end < 0:
        raise ValueError("unterminated string")
    return data[start:end].decode("utf-8")


# ------------------------------------------------------------------------------------ libraries


def system_library_loads(soname: str) -> str | None:
    """None when the dynamic loader finds ``soname`` (and what it needs), else the missing soname."""
    try:
        ctypes.CDLL(soname)
    except OSError as exc:
        # glibc says "<name>: cannot open shared object file: ..."; <name> may be a library that
        # soname itself needs, which is the one to install
        first = str(exc).split(":", 1)[0].strip()
        return first if ".so" in first and "/" not in first else soname
    return None


def missing_libraries(
    plugin: Path,
    local_dirs: Iterable[Path],
    loads: Callable[[str], str | None] | None = None,
) -> list[str] | None:
    """System libraries the plugin needs that the loader cannot find (None: dependencies unreadable).

    Libraries found as files next to the plugin, in its RUNPATH or in ``local_dirs`` (Qt's own library
    folder, the frozen bundle) are Qt's or the bundle's: their dependencies are followed in turn, as
    ``ldd`` would. Every other name is asked of the system loader.
    """
    loads = loads or system_library_loads  # looked up at call time, so tests can replace it
    local_dirs = list(local_dirs)
    missing: list[str] = []
    seen: set[str] = set()
    pending = [plugin]
    readable = False
    while pending:
        current = pending.pop()
        deps = elf_dependencies(current)
        if deps is None:
            continue
        readable = True
        needed, runpath = deps
        origin = str(current.resolve().parent)
        search = [Path(p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)) for p in runpath if p]
        search += [current.parent, *local_dirs]
        for soname in needed:
            if soname in seen:
                continue
            seen.add(soname)
            local = next((folder / soname for folder in search if (folder / soname).is_file()), None)
            if local is not None:
                pending.append(local)
                continue
            absent = loads(soname)
            if absent and absent not in missing:
                missing.append(absent)
    return missing if readable else None


# ------------------------------------------------------------------------------------- displays


def x_display_problem(environ: Mapping[str, str]) -> str | None:
    """Why Qt's xcb plugin could not reach an X server, or None when it may (remote displays are trusted)."""
    display = environ.get("DISPLAY", "")
    if not display:
        return "DISPLAY is not set"
    host, _, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if host not in ("", "unix") or not number.isdigit():
        return None  # a TCP display (ssh -X: localhost:10.0) or a socket path: let Qt try it
    path = f"/tmp/.X11-unix/X{number}"
    for address in (path, "\0" + path):  # the file socket, then the abstract one
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                probe.connect(address)
            return None
        except (FileNotFoundError, ConnectionRefusedError):
            continue
        except OSError:
            return None  # something unexpected: do not block a display that may well work
    return f"no X server answers on DISPLAY={display}"


def wayland_display_problem(environ: Mapping[str, str]) -> str | None:
    """Why Qt's wayland plugin could not reach a compositor, or None when its socket exists."""
    name = environ.get("WAYLAND_DISPLAY") or "wayland-0"
    path = Path(name) if name.startswith("/") else Path(environ.get("XDG_RUNTIME_DIR", "/nonexistent")) / name
    if path.exists():
        return None
    if not environ.get("WAYLAND_DISPLAY"):
        return "WAYLAND_DISPLAY is not set"
    return f"no Wayland compositor socket at {path}"


# --------------------------------------------------------------------------------------- Qt side


def candidate_platforms(environ: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order (Qt 6's rules on Linux; names without arguments)."""
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        names = chosen.split(";")
    else:
        names = []
        if "DISPLAY" in environ:
            names.append("xcb")
        if "WAYLAND_DISPLAY" in environ or environ.get("XDG_SESSION_TYPE") == "wayland":
            names.insert(0, "wayland")
        if not names:
            names.append("xcb")  # Qt's default platform on Linux
    return [name.split(":", 1)[0].strip() for name in names if name.strip()]


def qt_folders() -> tuple[list[Path], list[Path]]:
    """(platform plugin folders, Qt library folders) as Qt itself will search them.

    QLibraryInfo knows the real layout of a pip install and of a frozen bundle; importing QtCore does
    not need a display. When even that fails, the folders next to the PySide6 package are used.
    """
    environ = os.environ
    plugin_dirs: list[Path] = []
    lib_dirs: list[Path] = []
    if environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        plugin_dirs.append(Path(environ["QT_QPA_PLATFORM_PLUGIN_PATH"]))
    for entry in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep):
        if entry:
            plugin_dirs.append(Path(entry) / "platforms")
    try:
        from PySide6.QtCore import QLibraryInfo

        plugin_dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
        lib_dirs.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath)))
    except ImportError:
        pass
    spec = importlib.util.find_spec("PySide6")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        plugin_dirs.append(Path(location) / "Qt" / "plugins" / "platforms")
        lib_dirs.append(Path(location) / "Qt" / "lib")
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller: libraries it collected sit at the top
    if bundle:
        lib_dirs.append(Path(bundle))
    return _unique_paths(plugin_dirs), _unique_paths(lib_dirs)


def _unique_paths(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def check_candidate(
    name: str,
    environ: Mapping[str, str],
    plugin_dirs: Iterable[Path],
    lib_dirs: Iterable[Path],
    loads: Callable[[str], str | None] | None = None,
) -> Candidate:
    """Whether Qt's ``name`` platform plugin can start here: plugin file, display, libraries."""
    candidate = Candidate(name)
    if name not in PLUGIN_FILES:
        return candidate  # offscreen, vnc, eglfs ...: the user's choice, not ours to second-guess
    plugin_dirs = list(plugin_dirs)
    filename = PLUGIN_FILES[name]
    plugin = next((d / filename for d in plugin_dirs if (d / filename).is_file()), None)
    if plugin is None:
        candidate.missing_plugin = plugin_dirs[0] / filename if plugin_dirs else Path(filename)
        return candidate
    if name == "wayland":
        candidate.no_display = wayland_display_problem(environ)
    elif not environ.get("DISPLAY"):
        candidate.no_display = "DISPLAY is not set"
    if candidate.no_display:
        return candidate  # without any display the libraries do not matter: the advice is to run headless
    candidate.missing_libraries = missing_libraries(plugin, lib_dirs, loads) or []
    if name == "xcb" and not candidate.missing_libraries:
        candidate.no_display = x_display_problem(environ)
    return candidate


def platform_problem(
    environ: Mapping[str, str] | None = None,
    *,
    system: str | None = None,
    folders: tuple[list[Path], list[Path]] | None = None,
    loads: Callable[[str], str | None] | None = None,
) -> str | None:
    """One sentence saying why the window cannot open here, or None when Qt should manage.

    The arguments exist for tests: the environment, ``sys.platform``, the Qt folders and the library
    lookup can all be replaced.
    """
    environ = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    if not system.startswith("linux"):
        return None
    names = candidate_platforms(environ)
    if not any(name in PLUGIN_FILES for name in names):
        return None  # offscreen, minimal, vnc ... as chosen
    plugin_dirs, lib_dirs = folders if folders is not None else qt_folders()
    candidates = [check_candidate(name, environ, plugin_dirs, lib_dirs, loads) for name in names]
    if any(candidate.usable for candidate in candidates):
        return None
    return describe(candidates)


def describe(candidates: list[Candidate]) -> str:
    """The sentence for the most actionable failure: missing libraries, then a missing plugin, then display."""
    lacking = next((c for c in candidates if c.missing_libraries), None)
    if lacking is not None:
        return missing_libraries_sentence(lacking.name, lacking.missing_libraries)
    broken = next((c for c in candidates if c.missing_plugin), None)
    if broken is not None:
        return (
            f"The window cannot open: Qt's {broken.name} platform plugin is missing "
            f"({broken.missing_plugin}); reinstall PySide6 with "
            "'pip install --force-reinstall PySide6-Essentials'."
        )
    reasons = "; ".join(c.no_display for c in candidates if c.no_display)
    return (
        f"The window cannot open because there is no display ({reasons}); {HEADLESS_HINT}, "
        "and 'xvfb-run turbofan-desktop' opens the window in a virtual display."
    )


def missing_libraries_sentence(platform: str, sonames: list[str]) -> str:
    debian = _unique(SYSTEM_PACKAGES[s][0] for s in sonames if s in SYSTEM_PACKAGES)
    fedora = _unique(SYSTEM_PACKAGES[s][1] for s in sonames if s in SYSTEM_PACKAGES)
    # Fedora's packages provide their sonames as capabilities, so dnf can install an unknown one too
    fedora += [f'"{s}()(64bit)"' for s in sonames if s not in SYSTEM_PACKAGES]
    unknown = [s for s in sonames if s not in SYSTEM_PACKAGES]
    sentence = (
        f"The window cannot open: Qt's {platform} platform plugin needs the system "
        f"{'library' if len(sonames) == 1 else 'libraries'} {_join(sonames)}, which "
        f"{'is' if len(sonames) == 1 else 'are'} not installed; install "
        f"{'it' if len(sonames) == 1 else 'them'} with "
    )
    if debian:
        sentence += f"'sudo apt-get install {' '.join(debian)}' on Debian/Ubuntu"
        if unknown:
            sentence += f" (plus the package that provides {_join(unknown)})"
    else:
        sentence += f"the package that provides {_join(unknown)} on Debian/Ubuntu"
    sentence += f" or 'sudo dnf install {' '.join(fedora)}' on Fedora; meanwhile, {HEADLESS_HINT}."
    return sentence


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
