"""Reopening a big store: the time and memory from ``EventStore(path)`` to the first ``events``.

The store (a million small events by default) is built once with ``append_many`` in big
batches and kept under the temporary directory, so later runs reuse it; each measurement
runs in a fresh interpreter, after its imports, so that nothing is warm but the OS's cache.

    python -m bench.history                 # 1,000,000 events, 3 reopenings
    python -m bench.history --events 100000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core import small_body

BATCH = 100_000

# Runs in a fresh interpreter: the imports first, then the reopening, timed, with RSS around it.
_MEASURE = """
import gc, json, resource, sys, time
import psutil
from elwh_nb import EventStore
process = psutil.Process()
gc.collect()
before = process.memory_info().rss
t0 = time.perf_counter()
store = EventStore(sys.argv[1])
opened = time.perf_counter() - t0
frame = store.events
first = time.perf_counter() - t0
after = process.memory_info().rss
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
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


def reopen(path: Path) -> dict[str, float]:
    """One reopening of ``path`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    path = store_file(args.events)
    print(f"command: python -m bench.history --events {args.events} --runs {args.runs}")
    print(f"{path}: {os.path.getsize(path) / 2**20:.0f} MB, {os.cpu_count()} cores\n")
    print("| run | EventStore() | + first `events` | RSS growth | RSS | peak RSS |")
    print("|---|---|---|---|---|---|")
    for run in range(1, args.runs + 1):
        r = reopen(path)
        assert r["rows"] == args.events, r
        print(
            f"| {run} | {r['opened_s']:.2f} s | {r['first_read_s']:.2f} s | {r['rss_growth'] / 2**20:.0f} MB "
            f"| {r['rss'] / 2**20:.0f} MB | {r['peak_rss'] / 2**20:.0f} MB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
