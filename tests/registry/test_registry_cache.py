"""The local cache of server registries' artifacts stays within its size and age limits
(``registry cache prune``, and on every open of a server registry); a pruned artifact unpacks again."""

from __future__ import annotations

import os
import time

import pytest
from registry_helpers import artifact_writer, make_lineage

from turbofan_desktop.registry.cache import prune_artifact_cache

DAY = 86400.0


def _cached(root, key: str, name: str, size: int, age_s: float):
    folder = root / "server-registries" / key / "artifacts" / name
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"w" * size)
    when = time.time() - age_s
    os.utime(folder, (when, when))
    return folder


def test_pruning_removes_the_old_then_the_least_recently_used_and_never_a_recent_one(tmp_path):
    old = _cached(tmp_path, "a", "old", 1000, 40 * DAY)
    middle = _cached(tmp_path, "a", "middle", 600_000, 3 * DAY)
    newer = _cached(tmp_path, "b", "newer", 600_000, 2 * DAY)
    in_use = _cached(tmp_path, "b", "in-use", 600_000, 10)
    staging = tmp_path / "server-registries" / "a" / "artifacts" / ".staging" / "tok.1.tmp"
    staging.mkdir(parents=True)
    os.utime(staging.parent, (0, 0))

    report = prune_artifact_cache(tmp_path, max_mb=0, max_days=30)
    assert report.removed == [str(old)] and report.removed_bytes == 1000
    assert middle.exists() and newer.exists() and in_use.exists() and staging.exists()

    # 1.2 MB allowed for 1.8 MB: the least recently used goes; the one used seconds ago stays
    report = prune_artifact_cache(tmp_path, max_mb=1.2, max_days=0)
    assert report.removed == [str(middle)]
    assert newer.exists() and in_use.exists()
    assert report.kept == 2 and report.kept_bytes == 1_200_000
    report = prune_artifact_cache(tmp_path, max_mb=0.1, max_days=0)
    assert report.removed == [str(newer)] and in_use.exists()  # over the limit, but in use


@pytest.mark.postgres_only
def test_cli_prunes_the_cache_of_a_server_registry_and_the_artifact_unpacks_again(
    cli, registry, isolated_home, backend
):
    dataset = registry.record_dataset(make_lineage())
    version = registry.register_version(
        run_id=None, plugin="telemanom", target="s", dataset_id=dataset, config={}, history=[],
        metrics={}, validation_performed=False, validation_metrics=None, validation_data_hash=None,
        training_seconds=0.1, library_versions={}, write_artifact=artifact_writer(b"cached"),
    )  # fmt: skip
    folder = registry.artifact_dir(version.id)
    assert str(folder).startswith(str(isolated_home / "cache"))  # the registry fixture's cache root
    os.utime(folder, (time.time() - 10 * DAY,) * 2)

    code, data, err = cli("registry", "cache", "prune", "--max-days", "5", "--json")
    assert code == 0, err
    assert data["removed"] == [str(folder)] and not folder.exists()
    assert (registry.artifact_dir(version.id) / "weights.pt").read_bytes() == b"cached"  # unpacked again

    code, _, err = cli("registry", "cache", "prune", "--max-mb", "-1")
    assert code == 2 and "--max-mb" in err
