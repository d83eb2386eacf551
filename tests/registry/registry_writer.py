"""A process that writes to a registry in a loop, for the crash and multi-process tests.

    python registry_writer.py LOCATION SEED [COUNT [register-only]]

LOCATION is a registry folder or URL (a server registry caches artifacts under $TURBOFAN_HOME/cache);
``register-only`` skips the promotions and deletions (for the gap-free numbering test).

Prints ``ready`` once the registry is open, then for each step what it is about to do and what
committed (``committed ID SHA``), flushing each line so a parent that SIGKILLs it knows exactly
which versions were committed before it died. Without COUNT it loops until killed.
Deliberately imports only the registry (no pandas) so it starts fast.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

from turbofan_desktop.registry import Registry


def say(*words: object) -> None:
    print(*words, flush=True)


def main() -> int:
    location, seed = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    register_only = len(sys.argv) > 4 and sys.argv[4] == "register-only"
    rng = random.Random(seed)
    cache_root = Path(os.environ.get("TURBOFAN_HOME", tempfile.gettempdir())) / "cache"
    registry = Registry.open(location, cache_root=cache_root)
    dataset_id = registry.record_dataset(
        {"data_hash": "h-writer", "source": "train_FD001.txt", "format": "cmapss", "units": 2, "rows": 50}
    )
    say("ready")
    previous = None
    step = 0
    while count is None or step < count:
        step += 1
        plugin = rng.choice(["telemanom", "transformer"])
        target = rng.choice(["sensor_2", "sensor_3", "*"])
        run = registry.start_run(plugin=plugin, target=target, config={"step": step}, dataset_id=dataset_id)
        payload = rng.randbytes(rng.randint(1_000, 40_000))

        def write(folder: Path, payload: bytes = payload) -> None:
            (folder / "weights.pt").write_bytes(payload)
            (folder / "nested").mkdir()
            (folder / "nested" / "config.json").write_text('{"window": 10}')

        rec = registry.register_version(
            run_id=run,
            plugin=plugin,
            target=target,
            dataset_id=dataset_id,
            config={"step": step},
            history=[{"epoch": 1, "loss": rng.random()}],
            metrics={"mse": rng.random()},
            validation_performed=False,
            validation_metrics=None,
            validation_data_hash=None,
            training_seconds=0.01,
            library_versions={},
            write_artifact=write,
        )
        say("committed", rec.id, rec.artifact_sha256)
        registry.finish_run(run, status="succeeded", epochs_done=1)
        if register_only:
            continue
        if step % 3 == 0:
            registry.record_validation(rec.id, metrics={"f1": rng.random()}, data_hash="h-val")
            registry.promote(rec.id, "production")
        if step % 4 == 0 and previous is not None:
            say("deleting", previous)
            registry.delete(previous, force=True)
            say("deleted", previous)
        previous = rec.id
    registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
