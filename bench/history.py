"""Reopening a big store: the time and memory from ``EventStore(path)`` to the first ``events``.

The store (a million small events by default) is built once with ``append_many`` in big
batches and kept under the temporary directory, so later runs reuse it; each measurement
runs in a fresh interpreter, after its imports, so that nothing is warm but the OS's cache.
Three ways side by side, alternating: from the column copy beside the file (what a reopening
does), from the file alone without writing a copy (what it did before there was one), and
from the file alone writing the copy (the first reopening of a store that has none).

    python -m bench.history                 # 1,000,000 events, 3 runs of each
    python -m bench.history --events 100000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core import small_body
from elwh_nb._core import colcache

BATCH = 100_000

# Runs in a fresh interpreter: the imports first, then the reopening, timed, with RSS around it.
_MEASURE = """
import gc, json, sys, time
import psutil
from elwh_nb import EventStore
process = psutil.Process()
gc.collect()
before = process.memory_info().rss
t0 = time.perf_counter()
store = EventStore(sys.argv[1], readonly=sys.argv[2] == "ro")
opened = time.perf_counter() - t0
frame = store.events
first = time.perf_counter() - t0
after = process.memory_info().rss
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would show the parent's peak.
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rows": len(frame), "opened_s": opened, "first_read_s": first,
                  "rss_growth": after - before, "rss": after, "peak_rss": peak}))
"""


def store_file(events: int) -> Path:
    """The cached store of ``events`` small events, built when missing (or left half-built)."""
    from elwh_nb import EventStore

    path = Path(tempfile.gettempdir()) / f"elwh-bench-history-{events}.sqlite"
    done = path.with_suffix(".done")
    if path.exists() and done.exists():
        return path
    for stale in (path, done, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with EventStore(path) as store:
        for start in range(0, events, BATCH):
            store.append_many([small_body(i) for i in range(start, min(events, start + BATCH))])
        store.checkpoint()
    done.touch()
    print(f"built {path} ({events:,} events) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def reopen(path: Path, readonly: bool = False) -> dict[str, float]:
    """One reopening of ``path`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), "ro" if readonly else "rw"],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


WAYS = {
    "from the column copy": "copy",
    "from the file alone (no copy, as before)": "file",
    "from the file alone, writing the copy (first reopening)": "first",
}


def side_by_side(events: int, runs: int) -> tuple[list[str], dict[str, list[dict[str, float]]]]:
    """Markdown lines comparing the three ways, alternating, and the raw results by way."""
    path = store_file(events)
    copy = colcache.path_for(path)
    copy.unlink(missing_ok=True)  # one made by this code's columns (a cached store may predate them)
    reopen(path)  # a first reopening migrates the file if need be and writes the copy
    assert copy.exists(), "the first reopening wrote no copy"
    kept = copy.with_name(copy.name + ".kept")
    shutil.copy(copy, kept)
    results: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS.values()}
    try:
        for _ in range(runs):
            for way in WAYS.values():
                if way == "copy":
                    shutil.copy(kept, copy)
                else:
                    copy.unlink(missing_ok=True)
                r = reopen(path, readonly=way == "file")
                assert r["rows"] == events, r  # the workload: every stored event is in the frame
                if way == "first":
                    assert copy.exists(), "the first reopening wrote no copy"
                results[way].append(r)
    finally:
        shutil.copy(kept, copy)
        kept.unlink()

    def spread(way: str, key: str, scale: float = 1.0, fmt: str = ".2f") -> str:
        values = [r[key] / scale for r in results[way]]
        mid = format(statistics.median(values), fmt)
        return mid if len(values) == 1 else f"{mid} ({format(min(values), fmt)}–{format(max(values), fmt)})"

    base = [r["first_read_s"] for r in results["file"]]
    lines = [
        f"A store of {events:,} small events ({os.path.getsize(path) / 2**20:,.0f} MB file), reopened in a fresh "
        f"interpreter each time ({runs} runs of each way, alternating; median and range): the time from "
        "`EventStore(path)` to the first `events` frame, and resident memory after it.",
        "",
        "| reopening | seconds to the first `events` | x faster than the file alone | RSS after | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for label, way in WAYS.items():
        ratios = [b / r["first_read_s"] for b, r in zip(base, results[way], strict=True)]
        lines.append(
            f"| {label} | {spread(way, 'first_read_s')} | {statistics.median(ratios):.1f}x "
            f"({min(ratios):.1f}–{max(ratios):.1f}) | {spread(way, 'rss', 2**20, ',.0f')} MB "
            f"| {spread(way, 'peak_rss', 2**20, ',.0f')} MB |"
        )
    lines += [
        "",
        f"The column copy is {copy.stat().st_size / 2**20:,.0f} MB beside the file. Every reopening checked "
        f"that its frame has all {events:,} events.",
    ]
    return lines, results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"command: python -m bench.history --events {args.events} --runs {args.runs}\n")
    lines, _ = side_by_side(args.events, args.runs)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
