"""The job commands (train, validate, detect, forecast, rul, report) through ``cli.main`` with --json."""

from __future__ import annotations

import json

import pytest
from services_helpers import TINY, multi_regime_copy, require_plugin

from turbofan_desktop.cli import main


def _settings(plugin: str) -> list[str]:
    args = []
    for key, value in TINY[plugin].items():
        args += ["--set", f"{key}={value}"]
    return args


def run_json(capsys, *argv) -> tuple[int, object, str]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


@pytest.fixture(scope="module")
def cli_registry(tmp_path_factory):
    return tmp_path_factory.mktemp("cli_registry")


def test_cli_workflow(capsys, cli_registry, fd001_small, tmp_path):
    require_plugin("telemanom")
    require_plugin("transformer")
    reg = ["--registry", str(cli_registry)]
    train_file, test_file = str(fd001_small["train"]), str(fd001_small["test"])

    code, out, err = run_json(
        capsys,
        "train",
        train_file,
        "--model",
        "telemanom",
        "--sensor",
        "s_2",
        "s_3",
        *_settings("telemanom"),
        *reg,
    )
    assert code == 0, err
    assert [r["target"] for r in out["results"]] == ["s_2", "s_3"]
    assert all(isinstance(r["version_id"], int) and r["plugin"] == "telemanom" for r in out["results"])
    assert out["summary"]["successful"] == 2 and out["summary"]["failed"] == 0
    tele_id = out["results"][0]["version_id"]
    assert out["summary"]["registered"] == [r["version_id"] for r in out["results"]]
    assert err == ""  # no progress bar with --json

    code, out, err = run_json(
        capsys, "train", train_file, "--model", "transformer", *_settings("transformer"), "--seed", "1", *reg
    )
    assert code == 0, err
    assert out["results"][0]["target"] == "*"
    trans_id = out["results"][0]["version_id"]

    code, out, err = run_json(capsys, "validate", str(trans_id), "--data", test_file, *reg)
    assert code == 0, err
    (row,) = out["results"]
    assert row["id"] == trans_id and row["data_hash"] and "rul_rmse" in row["metrics"]
    assert row["data"].startswith("test_FD001.txt (")  # the metrics say what they were computed on

    code, out, err = run_json(capsys, "validate", "--all", *reg)
    assert code == 0, err
    assert sorted(r["id"] for r in out["results"]) == sorted([tele_id, tele_id + 1, trans_id])
    assert all(r["metrics"] and r["data_hash"] for r in out["results"])
    assert {r["data"] for r in out["results"]} == {"held-out units of train_small.txt"}
    code, out, err = run_json(capsys, "models", "list", *reg)
    assert code == 0, err
    listed = {row["id"]: row for row in out}
    assert listed[trans_id]["trained_on"]["file"] == "train_small.txt"
    assert listed[trans_id]["key_metric"]["data"]["text"] == "held-out units of train_small.txt"

    code, out, err = run_json(
        capsys, "detect", test_file, "--version", str(tele_id), "--unit", "1", "2", *reg
    )
    assert code == 0, err
    assert [u["unit"] for u in out["units"]] == [1, 2]
    for unit in out["units"]:
        assert unit["target"] == "s_2"
        for r in unit["ranges"]:
            assert {"start", "end", "score"} <= set(r) and r["start"] <= r["end"]
    # the detected units checked against the version's training data (statistics in its artifact)
    assert {"psi", "ks_pvalue", "drift"} <= set(out["drift"]["sensors"]["s_2"])

    code, out, err = run_json(
        capsys, "forecast", test_file, "--version", str(trans_id), "--unit", "2", "--horizon", "4", *reg
    )
    assert code == 0, err
    (unit,) = out["units"]
    assert unit["unit"] == 2 and out["horizon"] == 4
    assert all(len(s["median"]) == 4 for s in unit["sensors"].values())

    code, out, err = run_json(capsys, "rul", test_file, "--version", str(trans_id), *reg)
    assert code == 0, err
    assert len(out["units"]) == 6
    # the same fleet as the training file: applicable (a few test values may stray from 10 units)
    assert out["applicability"]["verdict"] in ("ok", "caution"), out["applicability"]
    truth = (fd001_small["rul"]).read_text().split()
    for row, true in zip(out["units"], truth, strict=True):
        assert {"unit", "rul", "lower", "upper"} <= set(row)
        assert row["true_rul"] == float(true)
    # another fleet (three operating regimes) is refused, unless the user insists
    mixed = str(multi_regime_copy(fd001_small["test"], tmp_path / "mixed.txt"))
    code, out, err = run_json(capsys, "rul", mixed, "--version", str(trans_id), *reg)
    assert code == 2 and out["applicability"]["verdict"] == "out_of_scope" and "units" not in out
    code, out, err = run_json(capsys, "rul", mixed, "--version", str(trans_id), "--force", *reg)
    assert code == 0 and out["applicability"]["verdict"] == "out_of_scope" and len(out["units"]) == 6

    pdf = tmp_path / "model.pdf"
    code, out, err = run_json(capsys, "report", str(trans_id), "--format", "pdf", "-o", str(pdf), *reg)
    assert code == 0, err
    assert out["path"] == str(pdf) and pdf.read_bytes().startswith(b"%PDF")


def test_cli_errors_are_one_sentence_with_exit_2(capsys, cli_registry, tmp_path, fd001_small):
    reg = ["--registry", str(cli_registry)]
    cases = [
        ["train", str(tmp_path / "missing.txt"), "--model", "telemanom", "--sensor", "s_2"],
        ["train", str(fd001_small["train"]), "--model", "nosuchmodel"],
        ["train", str(fd001_small["train"]), "--model", "telemanom", "--sensor", "s_99"],
        [
            "train",
            str(fd001_small["train"]),
            "--model",
            "telemanom",
            "--sensor",
            "s_2",
            "--set",
            "epochs=zero",
        ],
        ["train", str(fd001_small["train"]), "--model", "telemanom", "--set", "epochs"],
        ["validate", "424242"],
        ["validate"],
        ["rul", str(fd001_small["test"]), "--version", "424242"],
        ["report", "424242", "-o", str(tmp_path / "r.html")],
    ]
    runs = [[*argv, *reg] for argv in cases]
    runs.append(["validate", "--all", "--registry", str(tmp_path / "no-such-registry")])
    for argv in runs:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (argv, captured)
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, captured.err)
        assert "Traceback" not in captured.err


def test_cli_text_output(capsys, cli_registry, fd001_small):
    require_plugin("telemanom")
    code = main(
        [
            "train",
            str(fd001_small["train"]),
            "--model",
            "telemanom",
            "--sensor",
            "s_4",
            *_settings("telemanom"),
            "--registry",
            str(cli_registry),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "telemanom s_4: registered version id" in out and "1 registered, 0 failed" in out
