"""Parse + validate C-MAPSS train_FD002.txt: seconds (best and median of N) and peak RSS; then the
long-line case: peak RSS while a file of one very long line is read, and its ratio to the file size.

Targets (issue 2): under 1 s and under 200 MB. Each repeat runs the full ``read_dataset`` path the app
uses: size check, sniffing, parsing, validation, sorting, constant-sensor detection and hashing.

Long line (issue 20): a text file of ``--long-line-mb`` MB holding one line of numbers and no line
break (as C-MAPSS text: spaces; as CSV: commas) once took about 400 times its size and aborted the
process. Each case runs in a fresh process so that its peak RSS is its own; the target is a peak RSS
growth (peak minus the RSS after the imports) of at most 3 times the file size.

    python benchmarks/load_speed.py [--data DIR] [--repeats N] [--long-line-mb MB] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cmapss"
TARGET_SECONDS = 1.0
TARGET_MB = 200.0
TARGET_LONG_LINE_RATIO = 3.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process: VmHWM on Linux (``ru_maxrss`` would carry the parent's
    peak over fork and exec into a child), else ``ru_maxrss`` (macOS reports bytes)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def write_long_line(path: Path, megabytes: float, separator: str) -> int:
    """One line of numbers (about 4 bytes each) and no line break; returns the file's size."""
    block = separator.join(f"{i % 10}.{i % 7}" for i in range(250_000)).encode() + separator.encode()
    target = int(megabytes * 1024 * 1024)
    with open(path, "wb") as handle:
        written = 0
        while written < target:
            piece = block[: target - written]
            handle.write(piece)
            written += len(piece)
    return written


def long_line_child(path: Path) -> dict:
    """Runs in a fresh process: read ``path`` the way the app does; report the outcome and peak RSS."""
    from turbofan_desktop.data import read_dataset
    from turbofan_desktop.errors import TurbofanError

    before = peak_rss_mb()
    start = time.perf_counter()
    try:
        read_dataset(path, max_file_mb=1024)
        outcome = "read"
    except TurbofanError as exc:
        outcome = f"refused: {exc}"
    except MemoryError:
        outcome = "MemoryError"
    return {"seconds": round(time.perf_counter() - start, 3), "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "outcome": outcome}  # fmt: skip


def long_line_cases(megabytes: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, separator in (("one_line.txt", " "), ("one_line.csv", ",")):
            path = Path(folder) / name
            size = write_long_line(path, megabytes, separator)
            child = subprocess.run(
                [sys.executable, __file__, "--long-line-child", str(path)],
                capture_output=True,
                text=True,
            )
            row = {"file": name, "size_mb": round(size / 1024 / 1024, 1), "exit": child.returncode}
            if child.returncode == 0:
                measured = json.loads(child.stdout)
                growth = measured["peak_rss_mb"] - measured["rss_before_mb"]
                row.update(measured)
                row["rss_growth_mb"] = round(growth, 1)
                row["growth_ratio"] = round(growth / row["size_mb"], 3)
                row["peak_ratio"] = round(measured["peak_rss_mb"] / row["size_mb"], 3)
            else:  # an abort (std::bad_alloc) or a kill: the case failed
                row["outcome"] = f"crashed: {(child.stderr.strip().splitlines() or ['?'])[-1]}"
                row["growth_ratio"] = None
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding train_FD002.txt")
    parser.add_argument("--file", default="train_FD002.txt", help="file inside --data to load")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument(
        "--long-line-mb", type=float, default=50.0, help="size of the one-line files (default 50; 0 = skip)"
    )
    parser.add_argument("--long-line-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)

    if args.long_line_child is not None:
        print(json.dumps(long_line_child(args.long_line_child)))
        return 0
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
    long_rows = long_line_cases(args.long_line_mb) if args.long_line_mb > 0 else []
    result["long_line"] = long_rows
    result["long_line_target_ratio"] = TARGET_LONG_LINE_RATIO
    result["long_line_within_target"] = all(
        r["growth_ratio"] is not None and r["growth_ratio"] <= TARGET_LONG_LINE_RATIO for r in long_rows
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{path.name}: {result['units']} units, {result['rows']} rows")
        print(f"parse + validate: best {result['best_s']:.3f} s, median {result['median_s']:.3f} s "
              f"over {result['repeats']} repeats (target < {TARGET_SECONDS:g} s)")  # fmt: skip
        print(f"peak RSS: {result['peak_rss_mb']:.1f} MB (after imports {result['rss_after_imports_mb']:.1f} MB;"
              f" target < {TARGET_MB:g} MB)")  # fmt: skip
        for row in long_rows:
            if row["growth_ratio"] is None:
                print(f"long line {row['file']} ({row['size_mb']} MB): {row['outcome']}")
                continue
            print(f"long line {row['file']} ({row['size_mb']} MB): peak RSS {row['peak_rss_mb']:.1f} MB"
                  f" = {row['peak_ratio']:.2f}x the file; growth {row['rss_growth_mb']:.1f} MB ="
                  f" {row['growth_ratio']:.3f}x the file (target <= {TARGET_LONG_LINE_RATIO:g}x);"
                  f" {row['seconds']:.2f} s; {row['outcome'][:120]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
