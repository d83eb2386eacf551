"""Issue 20, class 10: the small things. A complex .npy is refused (not silently made real); Python
warnings go to the log, never to stderr; a FIFO is "not a regular file"; messages show 1.5, not
np.float64(1.5); "... lacks ..." names the file; a report or a command never passes on torch's advice
to load a refused weights file with weights_only=False."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from data_faults_helpers import assert_refused, run_cli, small_train_file

from turbofan_desktop.plugins.manager import get_plugin_manager
from turbofan_desktop.registry import Registry

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from stub_versions import register_stub_version  # noqa: E402


@pytest.fixture
def registry(isolated_home, capsys):
    code, _, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    return isolated_home


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_npy_is_refused(capsys, registry, tmp_path, dtype):
    path = tmp_path / "channel.npy"
    np.save(path, (np.arange(20) + 1j * np.arange(20)).astype(dtype).reshape(10, 2))
    sentence = assert_refused(capsys, registry, ["inspect", str(path)], str(path), np.dtype(dtype).name)
    assert "real numbers" in sentence


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_not_a_regular_file(capsys, registry, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it would block: the check must come before any read
    sentence = assert_refused(capsys, registry, ["inspect", str(fifo)], str(fifo), "not a regular file")
    assert "empty" not in sentence


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("units.csv", "unit,cycle,s_1\n1,1,0.5\n2.25,1,0.6\n", "line 3, column unit: unit is 2.25"),
        (
            "cmapss.txt",
            "1 1 " + "0.5 " * 24 + "\n1 2.5 " + "0.5 " * 24 + "\n",
            "line 2, column cycle: cycle is 2.5",
        ),
    ],
)
def test_messages_show_plain_numbers(capsys, registry, tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    sentence = assert_refused(capsys, registry, ["inspect", str(path)], str(path), where)
    assert "np.float64" not in sentence and "np.int64" not in sentence


def test_warnings_go_to_the_log_not_to_stderr(tmp_path):
    """1e308 and -1e308 are finite, but their spread overflows inside numpy: a RuntimeWarning that used
    to be printed between the command's output lines. Run as a subprocess: pytest would catch it."""
    path = tmp_path / "extreme.csv"
    path.write_text("unit,cycle,s_1\n1,1,1e308\n1,2,1e308\n1,3,-1e308\n2,1,5\n2,2,6\n")
    home = tmp_path / "home"
    env = {**os.environ, "TURBOFAN_HOME": str(home), "TURBOFAN_CONFIG_DIR": str(home / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "turbofan_desktop", "inspect", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "RuntimeWarning" in (home / "logs" / "turbofan-desktop.log").read_text()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Telemanom version for s_2 of six FD001 engines (inputs: every informative sensor)."""
    folder = tmp_path_factory.mktemp("small_things")
    data = small_train_file(folder)
    registry_dir = folder / "registry"
    argv = ["train", str(data), "--model", "telemanom", "--sensor", "s_2", "--registry", str(registry_dir)]
    for key, value in get_plugin_manager().model("telemanom").preset("tiny").items():
        argv += ["--set", f"{key}={value}"]
    from turbofan_desktop.cli import main

    assert main([*argv, "--json"]) == 0
    with Registry.open(registry_dir, create=False) as registry:
        version = registry.list_versions()[0]
        artifact = registry.artifact_dir(version.id)
    return {"registry": registry_dir, "data": data, "version": version.id, "artifact": artifact}


def test_lacks_names_the_file(capsys, trained, tmp_path):
    """The target is there but an input sensor is not: the message names the file that lacks it."""
    source = trained["data"].read_text().splitlines()
    rows = [" ".join(line.split()[:7] + line.split()[8:]) for line in source]  # drop s_3 (column 8)
    path = tmp_path / "no_s3.csv"
    header = ",".join(
        [
            "unit",
            "cycle",
            "setting_1",
            "setting_2",
            "setting_3",
            "s_1",
            "s_2",
            *[f"s_{i}" for i in range(4, 22)],
        ]
    )
    path.write_text(header + "\n" + "\n".join(r.replace(" ", ",") for r in rows) + "\n")
    argv = ["detect", str(path), "--version", str(trained["version"]), "--registry", str(trained["registry"])]
    sentence = assert_refused(capsys, trained["registry"], argv, str(path), "lacks", "s_3")
    assert "The data lacks" not in sentence


def _hostile_weights(path: Path) -> None:
    """A weights file whose pickle names a function (os.system): torch's safe loader refuses it and
    its message suggests weights_only=False. Nothing here ever runs that function."""
    torch.save({"weight": os.system}, path)


def test_refused_weights_never_suggest_weights_only_false(capsys, trained, tmp_path):
    def write(folder: Path) -> None:
        shutil.copy(trained["artifact"] / "meta.json", folder / "meta.json")
        _hostile_weights(folder / "weights.pt")

    meta = json.loads((trained["artifact"] / "meta.json").read_text())
    with Registry.open(trained["registry"], create=False) as registry:
        record = registry.get(trained["version"])
        hostile = register_stub_version(
            registry, plugin="telemanom", target="s_2", write_artifact=write, config=record.config
        ).id
    assert meta["target"] == "s_2"
    reg = ["--registry", str(trained["registry"])]
    sentence = assert_refused(
        capsys,
        trained["registry"],
        ["detect", str(trained["data"]), "--version", str(hostile), *reg],
        f"version {hostile}",
    )
    assert "weights_only" not in sentence and "tampered" in sentence
    out = tmp_path / "report.html"
    code, _, err = run_cli(
        capsys, "report", str(hostile), "-o", str(out), "--data", str(trained["data"]), *reg
    )
    assert code == 0, err
    page = out.read_text()
    at = page.find("weights_only")
    assert at < 0, page[max(0, at - 300) : at + 100]
    assert "tampered" in page
