"""Packaging: the desktop entry, the icons, build.spec and the frozen app built from it.

The fast tests read the files (no PyInstaller needed). The ``slow`` test builds the one-folder app with
PyInstaller into a temporary folder (several minutes on two cores) and runs the frozen executable:
the headless commands, ``--self-test`` and ``--screenshot``. It is skipped where PyInstaller is not
installed (``pip install -e '.[package]'``).
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import shutil
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "build.spec"
DESKTOP_FILE = REPO / "resources" / "turbofan-desktop.desktop"
MIME_FILE = REPO / "resources" / "turbofan-desktop-mime.xml"
ICON_DIR = REPO / "resources" / "icons"
ICON_SCRIPT = REPO / "scripts" / "make_icons.py"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ASSOCIATED_TYPES = {"text/plain", "text/csv", "application/vnd.apache.parquet"}


# ---------------------------------------------------------------------------------------------- helpers
def _literal_assignments(path: Path) -> dict[str, object]:
    """Top-level ``NAME = <literal>`` assignments of a Python file, without executing it."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def _spec_constants() -> dict[str, object]:
    return _literal_assignments(SPEC)


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG file"
    assert header[12:16] == b"IHDR", f"{path.name} has no IHDR chunk first"
    return struct.unpack(">II", header[16:24])


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, with ``from pkg import mod`` counted as ``pkg.mod`` too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


# ---------------------------------------------------------------------------------------- desktop entry
def _read_desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive in the Desktop Entry spec
    parser.read_string(DESKTOP_FILE.read_text(encoding="utf-8"))
    assert parser.sections() == ["Desktop Entry"]
    return parser["Desktop Entry"]


def test_desktop_entry_has_launcher_keys_and_file_associations():
    entry = _read_desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Turbofan Desktop"
    assert entry["Terminal"] == "false"
    program, *arguments = entry["Exec"].split()
    assert program == "turbofan-desktop"
    # %F: the launcher passes every selected file, which the app opens (cli gui args: files...).
    assert arguments == ["%F"]
    assert entry["Icon"] == "turbofan-desktop"
    assert (ICON_DIR / "turbofan-desktop_256.png").is_file()
    for key in ("MimeType", "Categories", "Keywords"):
        assert entry[key].endswith(";"), f"{key} is a list and must end with ';'"
    assert set(filter(None, entry["MimeType"].split(";"))) == ASSOCIATED_TYPES


def test_desktop_entry_passes_desktop_file_validate():
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    result = subprocess.run([validator, str(DESKTOP_FILE)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


def test_parquet_mime_type_is_declared_for_the_association():
    import xml.etree.ElementTree as ET

    namespace = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(MIME_FILE).getroot()
    declared = {node.get("type"): node for node in root.findall("m:mime-type", namespace)}
    parquet = declared["application/vnd.apache.parquet"]
    assert parquet.find("m:glob", namespace).get("pattern") == "*.parquet"


# ------------------------------------------------------------------------------------------------ icons
def test_icon_sizes_match_the_generator():
    assert _literal_assignments(ICON_SCRIPT)["PNG_SIZES"] == PNG_SIZES


@pytest.mark.parametrize("size", PNG_SIZES)
def test_png_icon_exists_with_its_size(size):
    assert _png_size(ICON_DIR / f"turbofan-desktop_{size}.png") == (size, size)


def test_windows_icon_holds_every_size_up_to_256():
    data = (ICON_DIR / "turbofan-desktop.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1), "not an ICO file"
    # Each 16-byte directory entry starts with width and height; 0 means 256.
    widths = {data[6 + 16 * i] or 256 for i in range(count)}
    assert widths == {size for size in PNG_SIZES if size <= 256}


def test_macos_icon_is_a_complete_icns_file():
    data = (ICON_DIR / "turbofan-desktop.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    chunks, offset = set(), 8
    while offset < len(data):
        kind, length = data[offset : offset + 4], struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        assert length >= 8
        chunks.add(kind)
        offset += length
    assert offset == len(data)
    assert {b"ic09", b"ic08", b"ic07"} <= chunks  # 512, 256 and 128 px


def test_committed_icons_come_from_the_generator(tmp_path):
    """Re-drawing the icons gives the committed pixels (within antialiasing noise across Qt versions)."""
    pytest.importorskip("PySide6")
    from PIL import Image, ImageChops, ImageStat

    result = subprocess.run(
        [sys.executable, str(ICON_SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    for size in (16, 64, 256):
        name = f"turbofan-desktop_{size}.png"
        fresh = Image.open(tmp_path / name).convert("RGBA")
        committed = Image.open(ICON_DIR / name).convert("RGBA")
        assert fresh.size == committed.size
        mean_difference = max(ImageStat.Stat(ImageChops.difference(fresh, committed)).mean)
        assert mean_difference < 2.0, f"{name} differs from scripts/make_icons.py output"


# -------------------------------------------------------------------------------------------- build.spec
def test_spec_parses_and_names_the_entry_point():
    ast.parse(SPEC.read_text(encoding="utf-8"))
    spec = _spec_constants()
    entry = REPO / str(spec["ENTRY_SCRIPT"])
    assert entry.is_file()
    assert spec["EXE_NAME"] == "turbofan-desktop"
    assert spec["APP_NAME"] == "TurbofanDesktop"


def test_spec_ships_the_entry_point_metadata_of_the_builtin_plugins():
    spec = _spec_constants()
    project = _pyproject()
    assert spec["DISTRIBUTION"] == project["project"]["name"]
    group = project["project"]["entry-points"][spec["ENTRY_POINT_GROUP"]]
    assert set(spec["BUILTIN_PLUGINS"]) == {value.strip() for value in group.values()}
    package_dir = project["tool"]["setuptools"]["package-dir"]
    for plugin in spec["BUILTIN_PLUGINS"]:
        assert (REPO / package_dir[plugin] / "__init__.py").is_file(), plugin
    # The metadata copy is what makes importlib.metadata.entry_points() find the plugins frozen.
    calls = [
        node
        for node in ast.walk(ast.parse(SPEC.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "copy_metadata"
    ]
    assert any(isinstance(arg, ast.Name) and arg.id == "DISTRIBUTION" for call in calls for arg in call.args)


def test_spec_bundles_the_resources():
    spec = _spec_constants()
    sources = {source for source, _target in spec["RESOURCES"]}
    assert {"resources/icons", "resources/sample", "resources/turbofan-desktop.desktop"} <= sources
    for source in sources:
        assert (REPO / source).exists(), source


def test_entry_point_calls_freeze_support_before_main():
    """Without freeze_support() a frozen app re-runs itself for every multiprocessing child."""
    tree = ast.parse((REPO / str(_spec_constants()["ENTRY_SCRIPT"])).read_text(encoding="utf-8"))
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and "__name__" in ast.unparse(node.test)
        and "__main__" in ast.unparse(node.test)
    ]
    assert guards, "the entry script needs an `if __name__ == '__main__':` block"
    calls = [ast.unparse(node.func) for node in ast.walk(guards[0]) if isinstance(node, ast.Call)]
    assert "multiprocessing.freeze_support" in calls
    assert "main" in calls
    order = [name for name in calls if name in {"multiprocessing.freeze_support", "main"}]
    assert order[0] == "multiprocessing.freeze_support"


# Optional extras the frozen app leaves out on purpose: only functions import them, and a missing one
# becomes a sentence ("MLflow is not installed: install the app with its mlflow extra ...").
EXTRAS_LEFT_OUT = {
    "mlflow": "the [mlflow] extra: models export/import --mlflow and live tracking",
    "distributed": "the [cluster] extra: the Dask executor (--executor tcp://host:8786)",
    "dask": "the [cluster] extra (see distributed)",
}


def _module_level_imports(path: Path) -> set[str]:
    """The modules a file imports outside any function or class (what importing the file loads)."""
    names: set[str] = set()
    pending = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            pending.extend(ast.iter_child_nodes(node))
    return names


def _under(name: str, packages) -> bool:
    return any(name == top or name.startswith(top + ".") for top in packages)


def test_app_imports_no_module_the_spec_excludes():
    """An excluded Qt module imported by the app would be missing only in the frozen build."""
    spec = _spec_constants()
    excluded = set(spec["EXCLUDED_QT_MODULES"]) | set(spec["EXCLUDED_MODULES"])
    offenders = []
    for root in (REPO / "turbofan_desktop", REPO / "plugins"):
        for path in root.rglob("*.py"):
            at_import = _module_level_imports(path)
            for name in _imported_modules(path):
                if not _under(name, excluded):
                    continue
                if _under(name, EXTRAS_LEFT_OUT) and not _under(name, at_import):
                    continue  # an optional extra, imported only where it is used
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, "build.spec excludes modules the app uses:\n" + "\n".join(offenders)


# Excluded although a library imports them here: each importer treats the module as optional.
OPTIONAL_IMPORTS = {
    "PySide6.QtTest": "pyqtgraph.Qt imports it inside try/except, only to add a qWait helper",
    "pyarrow": "pandas imports it inside try/except when installed (the test extra installs it); "
    "the app reads Parquet with fastparquet",
    "psycopg": "peewee imports it inside try/except when installed (the test and postgres extras install it); "
    "the frozen app opens folder registries only and says so for a postgresql:// URL",
    "psycopg_binary": "psycopg imports its C implementation when installed (see psycopg)",
}

_IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
for root in ("turbofan_desktop", "turbofan_telemanom", "turbofan_transformer"):
    package = importlib.import_module(root)
    for info in pkgutil.walk_packages(package.__path__, root + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_whole_app_loads_no_excluded_module():
    """Libraries import Qt modules by computed names (pyqtgraph loads QtOpenGL via importlib), which
    no source scan sees: import every module of the app and its plugins and look at sys.modules."""
    pytest.importorskip("PySide6")
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    spec = _spec_constants()
    excluded = set(spec["EXCLUDED_QT_MODULES"]) | set(spec["EXCLUDED_MODULES"])
    clashes = {
        name
        for name in loaded
        for bad in excluded
        if (name == bad or name.startswith(bad + ".")) and bad not in OPTIONAL_IMPORTS
    }
    assert not clashes, f"build.spec excludes modules that importing the app loads: {sorted(clashes)}"


# --------------------------------------------------------------------------------------- the frozen app
def _frozen_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "TURBOFAN_HOME": str(home),
        "TURBOFAN_CONFIG_DIR": str(home / "config"),
        "TURBOFAN_TORCH_THREADS": "1",
    }


@pytest.fixture(scope="module")
def frozen_app(tmp_path_factory):
    """Build dist/TurbofanDesktop with build.spec into a temporary folder; yields the executable and
    deletes the ~1 GB folder afterwards (pytest would keep it among its last three temp dirs)."""
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (pip install -e '.[package]')")
    out = tmp_path_factory.mktemp("pyinstaller")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            str(SPEC),
            "--noconfirm",
            "--distpath",
            str(out / "dist"),
            "--workpath",
            str(out / "build"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    shutil.rmtree(out / "build", ignore_errors=True)  # the work folder is ~the size of the app again
    exe = (
        out
        / "dist"
        / "TurbofanDesktop"
        / ("turbofan-desktop.exe" if sys.platform == "win32" else "turbofan-desktop")
    )
    assert exe.is_file()
    yield exe
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_frozen_app_lists_commands_and_builtin_plugins(frozen_app, tmp_path):
    env = _frozen_env(tmp_path)
    commands = subprocess.run(
        [frozen_app, "--help-commands"], capture_output=True, text=True, timeout=120, env=env
    )
    assert commands.returncode == 0, commands.stderr
    assert "plugins" in commands.stdout
    listing = subprocess.run(
        [frozen_app, "plugins", "--json"], capture_output=True, text=True, timeout=300, env=env
    )
    assert listing.returncode == 0, listing.stderr
    plugins = {row["name"]: row for row in json.loads(listing.stdout)["plugins"]}
    for name in ("telemanom", "transformer"):
        assert plugins[name]["error"] is None, plugins[name]
        assert plugins[name]["models"], f"{name} registered no model"


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_frozen_app_self_test_passes(frozen_app, tmp_path):
    result = subprocess.run(
        [frozen_app, "--self-test"], capture_output=True, text=True, timeout=900, env=_frozen_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_frozen_app_renders_its_window(frozen_app, tmp_path):
    shot = tmp_path / "window.png"
    result = subprocess.run(
        [frozen_app, "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_frozen_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    width, height = _png_size(shot)
    assert width >= 640 and height >= 400


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux only")
def test_frozen_app_without_a_display_says_so_instead_of_aborting(frozen_app, tmp_path):
    env = {k: v for k, v in _frozen_env(tmp_path).items() if k not in {"QT_QPA_PLATFORM", "DISPLAY"}}
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("XDG_SESSION_TYPE", None)
    result = subprocess.run([frozen_app], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr[-3000:]  # Qt's abort would be -6
    assert "no display (DISPLAY is not set)" in result.stderr
    # the check found the bundle's own xcb plugin (it reads the plugin before asking for a display)
    assert "platform plugin is missing" not in result.stderr
