"""Parse + validate C-MAPSS train_FD002.txt: seconds (best and median of N) and peak RSS.

Targets (issue 2): under 1 s and under 200 MB. Each repeat runs the full ``read_dataset`` path the app
uses: size check, sniffing, parsing, validation, sorting, constant-sensor detection and hashing.

    python benchmarks/load_speed.py [--data DIR] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cmapss"
TARGET_SECONDS = 1.0
TARGET_MB = 200.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding train_FD002.txt")
    parser.add_argument("--file", default="train_FD002.txt", help="file inside --data to load")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)

    path = args.data / args.file
    if not path.is_file():
        print(f"error: {path} not found (use --data DIR)", file=sys.stderr)
        return 2

    from turbofan_desktop.data import read_dataset

    rss_after_import = peak_rss_mb()
    times = []
    for _ in range(max(1, args.repeats)):
        start = time.perf_counter()
        dataset = read_dataset(path, max_file_mb=1024)
        times.append(time.perf_counter() - start)
    result = {
        "file": str(path),
        "units": len(dataset.units),
        "rows": dataset.n_rows,
        "repeats": len(times),
        "best_s": round(min(times), 4),
        "median_s": round(statistics.median(times), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_imports_mb": round(rss_after_import, 1),
        "target_s": TARGET_SECONDS,
        "target_mb": TARGET_MB,
    }
    result["within_target"] = result["median_s"] < TARGET_SECONDS and result["peak_rss_mb"] < TARGET_MB
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{path.name}: {result['units']} units, {result['rows']} rows")
        print(f"parse + validate: best {result['best_s']:.3f} s, median {result['median_s']:.3f} s "
              f"over {result['repeats']} repeats (target < {TARGET_SECONDS:g} s)")  # fmt: skip
        print(f"peak RSS: {result['peak_rss_mb']:.1f} MB (after imports {result['rss_after_imports_mb']:.1f} MB;"
              f" target < {TARGET_MB:g} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
