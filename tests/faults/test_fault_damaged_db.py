"""Class 3 of issue 20: garbage in the pages of the registry database.

Every command but ``registry check`` says the database is damaged and points at ``registry check``
(exit 2, no traceback). ``registry check`` reports the damage without changing the file; ``--repair``
rebuilds the database from the rows that can still be read, says what it could not recover, keeps the
damaged file in quarantine, and leaves a registry that ``registry check`` finds consistent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import assert_one_sentence, damage_page, file_digest, root_page, run_main, table

from turbofan_desktop.registry import Registry, check_folder


def _commands(registry: Path, data: dict[str, Path]) -> list[list[str]]:
    reg = ["--registry", str(registry)]
    return [
        ["models", "list", *reg],
        ["models", "show", "1", *reg],
        ["status", *reg],
        ["detect", str(data["test"]), "--version", "1", *reg],
        ["validate", "1", *reg],
        ["models", "promote", "1", "--stage", "staging", *reg],
        ["models", "delete", "1", *reg],
        ["train", str(data["train"]), "--model", "telemanom", "--sensor", "s_2", *reg],
    ]


def _quarantined_copy(registry: Path) -> Path:
    (copy,) = [p for p in (registry / "quarantine").iterdir() if p.name.startswith("registry.db.damaged-")]
    return copy


@pytest.mark.parametrize(
    "where",
    ["model_versions table", "file header"],
)
def test_damaged_database_is_reported_everywhere_and_repaired(where, capsys, trained_registry, fault_data):
    db = trained_registry / "registry.db"
    if where == "file header":
        damage_page(db, 1, length=64)  # the "SQLite format 3" magic and page size are gone
    else:
        damage_page(db, root_page(db, "model_versions"))
    damaged = file_digest(db)

    for argv in _commands(trained_registry, fault_data):
        code, out, err = run_main(capsys, *argv)
        assert code == 2, (argv, out, err)
        sentence = assert_one_sentence(err, naming=str(db))
        assert "is damaged" in sentence and "registry check" in sentence, sentence
    assert file_digest(db) == damaged  # nobody wrote into the damaged file

    code, out, err = run_main(capsys, "registry", "check", "--registry", str(trained_registry))
    assert code == 1 and "Traceback" not in err, out + err
    assert f"The registry database {db} is damaged" in out and "--repair" in out
    assert file_digest(db) == damaged

    code, out, err = run_main(capsys, "registry", "check", "--repair", "--registry", str(trained_registry))
    assert code == 1 and "Traceback" not in err, out + err  # rows were lost: said, not hidden
    copy = _quarantined_copy(trained_registry)
    assert file_digest(copy) == damaged
    assert f"the damaged file is kept as {copy}" in out
    assert "Could not recover" in out or "None of the damaged file's tables could be read" in out
    # the lost version's artifact is kept too, in quarantine, not deleted
    assert "moved to" in out and len(list((trained_registry / "quarantine").iterdir())) >= 2

    code, out, err = run_main(capsys, "registry", "check", "--registry", str(trained_registry))
    assert code == 0 and "The registry is consistent." in out, out + err
    code, out, err = run_main(capsys, "models", "list", "--registry", str(trained_registry))
    assert code == 0 and "No model versions." in out, out + err
    if where == "model_versions table":  # what sat on other pages survived
        assert table(db, "SELECT status FROM training_runs") == [("succeeded",)]
        assert table(db, "SELECT COUNT(*) FROM datasets") == [(1,)]


def test_damaged_index_loses_nothing(capsys, trained_registry, fault_data):
    db = trained_registry / "registry.db"
    damage_page(db, root_page(db, "model_versions_plugin_target"))
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(trained_registry))
    assert code == 1 and "is damaged" in out, out + err

    code, out, err = run_main(capsys, "registry", "check", "--repair", "--registry", str(trained_registry))
    assert code == 0 and "Traceback" not in err, out + err
    assert "Could not recover" not in out and "1 model_versions" in out
    code, out, err = run_main(capsys, "registry", "check", "--registry", str(trained_registry))
    assert code == 0 and "The registry is consistent." in out, out + err
    code, out, err = run_main(
        capsys, "detect", str(fault_data["test"]), "--version", "1", "--registry", str(trained_registry)
    )
    assert code == 0, out + err


def test_one_damaged_leaf_costs_only_its_rows(tmp_path):
    """Rows on pages before and after a damaged leaf page are recovered; ids are never reused."""
    home = tmp_path / "registry"
    with Registry.open(home) as registry:
        for index in range(400):
            registry.start_run(
                plugin="telemanom", target=f"s_{index}", config={"pad": "x" * 40}, dataset_id=None
            )
            registry.finish_run(index + 1, status="succeeded")
    db = home / "registry.db"
    if not _has_dbstat(db):
        pytest.skip("this SQLite has no dbstat table to find a leaf page")
    leaves = "SELECT pageno FROM dbstat WHERE name = 'training_runs' AND pagetype = 'leaf' ORDER BY path"
    pages = [row[0] for row in table(db, leaves)]
    assert len(pages) >= 3, pages
    victim = pages[len(pages) // 2]
    on_victim = table(db, f"SELECT ncell FROM dbstat WHERE name = 'training_runs' AND pageno = {victim}")[0][
        0
    ]
    damage_page(db, victim)

    report = check_folder(home, repair=True)
    lost = [p for p in report.problems if p["kind"] == "rows_lost"]
    assert len(lost) == 1 and f"{on_victim} training_runs row(s)" in lost[0]["message"], report.problems
    assert table(db, "SELECT COUNT(*) FROM training_runs") == [(400 - on_victim,)]
    assert table(db, "SELECT seq FROM sqlite_sequence WHERE name = 'training_runs'") == [(400,)]
    assert check_folder(home).ok
    with Registry.open(home) as registry:
        assert registry.start_run(plugin="telemanom", target="next", config={}, dataset_id=None) == 401


def _has_dbstat(db: Path) -> bool:
    try:
        table(db, "SELECT COUNT(*) FROM dbstat")
    except Exception:  # noqa: BLE001 - compiled without SQLITE_ENABLE_DBSTAT_VTAB
        return False
    return True
