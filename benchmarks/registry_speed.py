"""Registry speed: listing 10,000 versions with filters, registering 1,000 versions.

    python benchmarks/registry_speed.py [--versions 10000] [--registers 1000] [--repeats 50] [--json]
        [--url postgresql://user@host:port/db]

Targets (issue 3): a list page under 50 ms, a registration under 10 ms (SQLite); on PostgreSQL on
localhost (issue 19) a registration under 20 ms median, a list page under 50 ms. With ``--url`` the
benchmark creates a scratch database ``registry_bench_<random>`` on that server and drops it after
(the named database is only used to connect); artifacts then go into the database, as in a team
registry. Registration is measured
end to end through ``Registry.register_version`` with a tiny two-file artifact, so it includes the
artifact fsyncs, the atomic rename and the ``synchronous=full`` commit. The 10,000 listed rows are
seeded with one bulk insert (their artifacts are not written: listing never touches them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from turbofan_desktop.data.split import UnitSplit
from turbofan_desktop.registry import (
    FitSummary,
    HeldOut,
    Registry,
    TrainingProvenance,
    TrainingSource,
    ValidationSet,
)
from turbofan_desktop.registry.db import redact_url
from turbofan_desktop.registry.records import provenance_to_row
from turbofan_desktop.registry.store import utc_now

PLUGINS = ("telemanom", "transformer")
TARGETS = tuple(f"sensor_{i}" for i in range(1, 22)) + ("*",)


def _stats(wall_s: list[float], cpu_s: list[float]) -> dict[str, float]:
    """Wall-clock median/p95/max, plus the median CPU time of the calling thread.

    The CPU figure is what the call costs on an idle machine; on a shared one the wall clock also
    counts time spent waiting for a core (and, for registration, for fsync).
    """
    ms = sorted(s * 1000 for s in wall_s)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": p95,
        "max_ms": ms[-1],
        "cpu_median_ms": statistics.median(cpu_s) * 1000,
        "n": len(ms),
    }


def _timed(call) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    call()
    return time.perf_counter() - wall, time.thread_time() - cpu


def seed(registry: Registry, count: int, dataset_id: int, rng: random.Random) -> None:
    """Bulk-insert ``count`` realistic rows (20-epoch history, config, metrics, lineage, and the
    training provenance of a 100-unit split, as training records it)."""
    rows = []
    numbers: dict[tuple[str, str], int] = {}
    now = utc_now()
    for i in range(count):
        key = (PLUGINS[i % 2], TARGETS[(i // 2) % len(TARGETS)])
        numbers[key] = numbers.get(key, 0) + 1
        validated = rng.random() < 0.7
        rows.append(
            {
                "plugin": key[0],
                "target": key[1],
                "version": numbers[key],
                "stage": rng.choice(("none", "none", "none", "archived", "staging")),
                "status": "failed" if rng.random() < 0.05 else "trained",
                "created": now,
                "artifact_path": f"seed{i:08x}",
                "artifact_sha256": "0" * 64,
                "config": {"epochs": 20, "window": 30, "hidden": 64, "layers": 2, "lr": 1e-3, "batch": 64},
                "history": [{"epoch": e, "loss": rng.random(), "val_loss": rng.random()} for e in range(20)],
                "metrics": {"mse": rng.random(), "mae": rng.random()},
                "validation_performed": validated,
                "validation_metrics": {"f1": rng.random(), "precision": rng.random()} if validated else None,
                "validation_data_hash": "v" * 64 if validated else None,
                "training_seconds": rng.uniform(5, 500),
                "library_versions": {"torch": "2.13", "numpy": "2.1", "turbofan-desktop": "0.1.0"},
                "dataset": dataset_id,
            }
        )

    versions, provenance = registry.tables.ModelVersion, registry.tables.ProvenanceRow
    units = list(range(1, 101))
    split = UnitSplit(
        train=tuple(units[:80]), val=tuple(units[80:]), test=(), seed=0, val_fraction=0.2, test_fraction=0.0
    )
    document = provenance_to_row(
        TrainingProvenance(
            split=split,
            source=TrainingSource("/data/train_FD001.txt", None, None, None, "cmapss", "s" * 64, 100),
            validation=ValidationSet("val", 20, "v" * 64),
            held_out=HeldOut("val", "f" * 64),
            fit=FitSummary(
                epochs_run=20, best_epoch=17, stopped_early=False, seed=0, notes=("ran all 20 epochs",)
            ),
            model_version="0.1.0",
        )
    )

    def insert() -> None:
        for start in range(0, len(rows), 500):
            versions.insert_many(rows[start : start + 500]).execute()
        ids = [row.id for row in versions.select(versions.id)]
        for start in range(0, len(ids), 500):
            provenance.insert_many([{"version": i, **document} for i in ids[start : start + 500]]).execute()

    registry._write(insert)
    # one production version per (plugin, target), as in a real registry
    for plugin in PLUGINS:
        for target in TARGETS:
            newest = registry.latest(plugin, target)
            if newest is not None:

                def promote(vid: int = newest.id) -> None:
                    versions.update(stage="production").where(versions.id == vid).execute()

                registry._write(promote)


def bench_list(registry: Registry, repeats: int) -> dict[str, dict[str, float]]:
    queries = {
        "all (newest 100)": lambda: registry.list_versions(),
        "plugin": lambda: registry.list_versions(plugin="transformer"),
        "plugin+target": lambda: registry.list_versions(plugin="telemanom", target="sensor_11"),
        "target": lambda: registry.list_versions(target="sensor_7"),
        "stage=production": lambda: registry.list_versions(stage="production"),
        "status=failed": lambda: registry.list_versions(status="failed"),
        "offset 9000": lambda: registry.list_versions(offset=9000),
        "count (plugin)": lambda: registry.count_versions(plugin="telemanom"),
        "status overview": lambda: registry.status(),
    }
    results = {}
    for name, query in queries.items():
        query()  # warm the page cache and the statement cache
        walls, cpus = zip(*(_timed(query) for _ in range(repeats)), strict=True)
        results[name] = _stats(list(walls), list(cpus))
    return results


def bench_register(registry: Registry, count: int, dataset_id: int, rng: random.Random) -> dict[str, float]:
    payload = rng.randbytes(4096)

    def write(folder: Path) -> None:
        (folder / "weights.pt").write_bytes(payload)
        (folder / "config.json").write_text('{"window": 30}')

    walls, cpus = [], []
    statements = _Statements()
    for i in range(count + 1):
        plugin, target = PLUGINS[i % 2], TARGETS[i % len(TARGETS)]
        if i == count:  # one more, untimed, to count the SQL statements one registration sends
            statements.start()
        wall, cpu = time.perf_counter(), time.thread_time()
        registry.register_version(
            run_id=None,
            plugin=plugin,
            target=target,
            dataset_id=dataset_id,
            config={"epochs": 1},
            history=[{"epoch": 0, "loss": 0.5}],
            metrics={"mse": 0.1},
            validation_performed=True,
            validation_metrics={"f1": 0.5},
            validation_data_hash="v",
            training_seconds=0.1,
            library_versions={},
            write_artifact=write,
        )
        if i == count:
            statements.stop()
            break
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return {**_stats(walls, cpus), "statements": len(statements.seen)}


class _Statements(logging.Handler):
    """Counts the statements peewee sends (its DEBUG log has one line per statement; the
    transaction's BEGIN and COMMIT come on top)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[str] = []
        self._logger = logging.getLogger("peewee")
        self._level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())

    def start(self) -> None:
        self._logger.addHandler(self)
        self._logger.setLevel(logging.DEBUG)

    def stop(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


@contextmanager
def scratch_database(url: str):
    """A fresh database on the server of ``url`` for one run, dropped afterwards; yields its URL."""
    import psycopg

    name = f"registry_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, rest = url.partition("?")
    scratch = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{rest}" if rest else "")
    try:
        yield scratch
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def _location(args: argparse.Namespace, tmp: str):
    if args.url:
        with scratch_database(args.url) as url:
            yield url
    else:
        yield str(args.home or Path(tmp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000, help="rows to seed for listing")
    parser.add_argument("--registers", type=int, default=1_000, help="versions to register")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per list query")
    parser.add_argument("--home", type=Path, help="registry folder (default: a fresh temporary one)")
    parser.add_argument(
        "--url", help="a PostgreSQL server to measure instead (postgresql://user@host:port/db)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(0)

    with (
        tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp,
        _location(args, tmp) as location,
        Registry.open(location, cache_root=Path(tmp) / "cache") as registry,
    ):
        dataset_id = registry.record_dataset(
            {
                "data_hash": "d" * 64,
                "source": "train_FD001.txt",
                "format": "cmapss",
                "units": 100,
                "rows": 20631,
            }
        )
        start = time.perf_counter()
        seed(registry, args.versions, dataset_id, rng)
        seed_s = time.perf_counter() - start
        listing = bench_list(registry, args.repeats)
        register = bench_register(registry, args.registers, dataset_id, rng)
        total = registry.count_versions()

    server = bool(args.url)
    result = {
        "backend": "postgresql" if server else "sqlite",
        "registry": redact_url(args.url) if server else "temporary folder",
        "seeded_versions": args.versions,
        "seed_seconds": seed_s,
        "list_page_size": 100,
        "list": listing,
        "register": register,
        "versions_at_end": total,
        "targets": {"list_ms": 50, "register_ms": 20 if server else 10},
        "list_worst_median_ms": max(v["median_ms"] for v in listing.values()),
        "list_worst_p95_ms": max(v["p95_ms"] for v in listing.values()),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{result['backend']} registry ({result['registry']})")
    print(f"seeded {args.versions} versions in {seed_s:.2f} s")
    print(f"{'list query (page of 100)':28s} {'median ms':>10s} {'p95 ms':>10s} {'cpu ms':>10s}")
    for name, stats in listing.items():
        print(f"{name:28s} {stats['median_ms']:10.2f} {stats['p95_ms']:10.2f} {stats['cpu_median_ms']:10.2f}")
    print(
        f"register ({args.registers} versions, tiny artifacts): median {register['median_ms']:.2f} ms, "
        f"p95 {register['p95_ms']:.2f} ms, max {register['max_ms']:.2f} ms, "
        f"cpu median {register['cpu_median_ms']:.2f} ms; {register['statements']} SQL statements per "
        "registration (plus BEGIN and COMMIT)"
    )
    try:
        load = os.getloadavg()[0]
        print(f"(1-minute load average {load:.1f} on {os.cpu_count()} cores while measuring)")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
