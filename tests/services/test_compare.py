"""Comparing versions (issue 17): metrics on the same data side by side, config and lineage differences."""

from __future__ import annotations

import json

import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.cli import main
from turbofan_desktop.errors import ConfigError
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.compare import compare_versions
from turbofan_desktop.services.training import TrainRequest, train


@pytest.fixture(scope="module")
def two_transformers(tmp_path_factory, fd001_small):
    """Two tiny Transformer versions of the same file, split and seeded differently."""
    require_plugin("transformer")
    folder = tmp_path_factory.mktemp("compare_registry")
    ws = Workspace.open(folder)
    ids = []
    for seed in (0, 1):
        summary = train(
            ws,
            TrainRequest(
                plugin="transformer", data_path=fd001_small["train"], config=TINY["transformer"], seed=seed
            ),
        )
        assert summary.failed == 0, summary.to_dict()
        ids.append(summary.registered[0])
    yield ws, ids, folder
    ws.close()


def test_compare_two_versions_on_one_file(two_transformers, fd001_small, capsys):
    ws, (a, b), folder = two_transformers
    # different held-out units (seeds 0 and 1): nothing is put side by side yet
    apart = compare_versions(ws, [a, b])
    assert apart.data is None and apart.metrics == [] and "never validated on the same data" in apart.notes[0]
    assert any(row["key"] == "seed" for row in apart.config_differences)
    assert any(row["key"] == "split seed" for row in apart.lineage_differences)

    on_file = compare_versions(ws, [a, b], data_path=fd001_small["test"])
    assert on_file.data["text"].startswith("test_FD001.txt (")
    assert [v["scored"] for v in on_file.versions] == ["now", "now"]
    assert all(v["applicability"]["verdict"] in ("ok", "caution") for v in on_file.versions)
    rows = {row["metric"]: row for row in on_file.metrics}
    rmse = rows["rul_rmse"]
    assert set(rmse["values"]) == {a, b} and all(isinstance(v, float) for v in rmse["values"].values())
    assert rmse["direction"] == -1 and rmse["best"] == [min(rmse["values"], key=rmse["values"].get)]

    again = compare_versions(ws, [a, b], data_path=fd001_small["test"])  # scored once, then reused
    assert [v["scored"] for v in again.versions] == ["stored", "stored"]
    assert {row["metric"]: row["values"] for row in again.metrics} == {
        row["metric"]: row["values"] for row in on_file.metrics
    }
    common = compare_versions(ws, [a, b])  # now both carry metrics on the test file
    assert common.data["text"] == on_file.data["text"] and common.metrics

    code = main(
        [
            "models",
            "compare",
            str(a),
            str(b),
            "--data",
            str(fd001_small["test"]),
            "--json",
            "--registry",
            str(folder),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [v["id"] for v in out["versions"]] == [a, b]
    assert out["metrics"] and set(out["metrics"][0]["values"]) == {str(a), str(b)}
    code = main(["models", "compare", str(a), str(b), "--registry", str(folder)])
    text = capsys.readouterr().out
    assert code == 0 and "Metrics on test_FD001.txt" in text and "rul_rmse" in text and f"(#{b})" in text


def test_compare_needs_two_versions(two_transformers, capsys):
    ws, (a, _b), folder = two_transformers
    with pytest.raises(ConfigError, match="two or more"):
        compare_versions(ws, [a, a])
    assert main(["models", "compare", str(a), "--registry", str(folder)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
