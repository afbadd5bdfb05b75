"""Core benchmark: sign, verify, normalise, append, and reading ``events`` as the store grows.

Each figure sits next to a reference measured in the same run, on the same bodies, with
the same number of passes and the same best-of rule: stdlib HMAC for sign, the official
SDK's construct_event for verify, pandas' json_normalize for normalise, a bare sqlite3
insert+commit (same durability, a fresh file each pass) for append, and the tutorial's
``pd.concat`` of one new row for "append one event, then read the table" (the append is
timed on both sides).

    python -m bench.core            # sizes 10k, 100k, 1M (about a minute)
    python -m bench.core --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

import elwh_nb
from elwh_nb import EventStore, normalize, payloads, sign, verify

SECRET = "wsec_test_" + "5e" * 32
PASSES = 3  # every measurement, ours and the reference's: best of this many passes
READ_TIMES: dict[int, float] = {}  # stored events -> ms, from the last reads() call


def rate(fn: Callable[[Any], Any], items: list[Any], passes: int = PASSES) -> float:
    """Items per second in the best of ``passes`` passes."""
    best = float("inf")
    for _ in range(passes):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def fresh_rate(make: Callable[[Path], Callable[[Any], Any]], items: list[Any], passes: int = PASSES) -> float:
    """Like :func:`rate`, for appends: each pass writes into a new file (no pass sees repeats)."""
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(passes):
            fn = make(Path(tmp) / f"pass{i}.sqlite")
            t0 = time.perf_counter()
            for item in items:
                fn(item)
            best = min(best, time.perf_counter() - t0)
            getattr(fn, "close", lambda: None)()
    return len(items) / best


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def row(name: str, ours: float, ref_name: str, ref: float, unit: str = "events/s") -> str:
    ratio = ours / ref if unit == "events/s" else ref / ours
    return f"| {name} | {ours:,.0f} {unit} | {ref_name}: {ref:,.0f} {unit} | {ratio:.2f}x |"


def throughput(n: int) -> list[str]:
    factory = payloads(42)
    events = factory.batch(n, audio_bytes=32_000)
    bodies = [factory.body(e) for e in events]
    t = int(time.time())
    headers = [sign(b, SECRET, t) for b in bodies]
    texts = [b.decode() for b in bodies]
    key = SECRET.encode()
    mean_kb = sum(map(len, bodies)) / len(bodies) / 1024
    lines = [
        f"Throughput on {n} realistic deliveries (mean body {mean_kb:.1f} KB, default type mix):",
        "",
        "| operation | elwh_nb | reference (same run) | ratio (higher is better) |",
        "|---|---|---|---|",
    ]
    ours = rate(lambda b: sign(b, SECRET, t), bodies)
    ref = rate(lambda b: hmac.new(key, f"{t}.".encode() + b, hashlib.sha256).hexdigest(), bodies)
    lines.append(row("sign", ours, "bare stdlib HMAC", ref))

    pairs = list(zip(bodies, headers, strict=True))
    ours = rate(lambda p: verify(p[0], p[1], SECRET), pairs)
    try:
        from elevenlabs import ElevenLabs

        sdk = ElevenLabs(api_key="x").webhooks
        text_pairs = list(zip(texts, headers, strict=True))
        ref = rate(lambda p: sdk.construct_event(p[0], p[1], SECRET), text_pairs)
        lines.append(row("verify (+ JSON parse)", ours, "official SDK construct_event", ref))
    except ImportError:
        lines.append(f"| verify | {ours:,.0f} events/s | (elevenlabs not installed) | |")

    ours = rate(normalize, events)
    ref = rate(lambda e: pd.json_normalize(e, max_level=1), events)
    lines.append(row("normalize", ours, "pd.json_normalize", ref))

    class Ours:
        def __init__(self, path: Path) -> None:
            self.store = EventStore(path)

        def __call__(self, item: tuple[bytes, dict[str, Any]]) -> None:
            self.store.append(*item)

        def close(self) -> None:
            self.store.close()

    class Bare:
        def __init__(self, path: Path) -> None:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, h BLOB UNIQUE, body BLOB)")

        def __call__(self, item: tuple[bytes, dict[str, Any]]) -> None:
            body = item[0]
            self.db.execute("INSERT INTO e (h, body) VALUES (?, ?)", (hashlib.sha256(body).digest(), body))

        def close(self) -> None:
            self.db.close()

    parsed = list(zip(bodies, events, strict=True))
    ours = fresh_rate(Ours, parsed)
    ref = fresh_rate(Bare, parsed)
    lines.append(row("append (durable file, one commit each)", ours, "bare sqlite3 insert+commit", ref))
    return lines


def small_body(i: int) -> bytes:
    return (
        b'{"type":"speech_to_text_transcription","event_timestamp":%d,'
        b'"data":{"request_id":"req_%09d","transcription":{"text":"hi"}}}' % (1_700_000_000 + i, i)
    )


READ_RUNS = 15  # appends measured per size, on both sides


def append_then_read(store: EventStore, first_new: int, runs: int = READ_RUNS) -> float:
    """Median ms to append one new event (a durable commit) and then read ``store.events``."""
    times = []
    for i in range(first_new, first_new + runs):
        body = small_body(i)
        t0 = time.perf_counter()
        store.append(body)
        store.events  # noqa: B018
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def concat_one_row(size: int, runs: int = READ_RUNS) -> float:
    """Median ms of the tutorial's way: ``pd.concat`` of one new row onto a frame of ``size``.

    Its frame grows by one row each time, as the tutorial's does.
    """
    seed = pd.DataFrame([normalize(json.loads(small_body(i))) for i in range(5)])
    frame = pd.concat([seed] * (size // len(seed)), ignore_index=True)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        new_row = pd.DataFrame([normalize(json.loads(small_body(size + i)))])
        frame = pd.concat([frame, new_row], ignore_index=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def reads(sizes: list[int]) -> list[str]:
    lines = [
        "",
        f"One new event appended, then the table read (median of {READ_RUNS}; the append is timed on both sides: "
        "a durable commit for the kit, parsing and `pd.concat` for the tutorial):",
        "",
        "| stored events | `store.append` + `store.events` | tutorial `pd.concat` of one row | ratio (higher is better) |",
        "|---|---|---|---|",
    ]
    next_id = 10**9  # bodies for the measured appends, apart from the fill
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(Path(tmp) / "grow.sqlite")
        for size in sorted(sizes):
            while len(store) < size:
                start = len(store)
                store.append_many([small_body(i) for i in range(start, min(size, start + 50_000))])
            ours = READ_TIMES[size] = append_then_read(store, next_id)
            next_id += 1000
            ref = concat_one_row(size)
            lines.append(f"| {size:,} | {ours:.3f} ms | {ref:.1f} ms | {ref / ours:,.1f}x |")
        store.close()
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="deliveries for the throughput rows")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args(argv)
    print(
        f"elwh_nb {elwh_nb.__version__}, Python {platform.python_version()}, pandas {pd.__version__}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores, {platform.machine()}"
    )
    print(f"command: python -m bench.core --events {args.events} --sizes {' '.join(map(str, args.sizes))}\n")
    for line in throughput(args.events):
        print(line, flush=True)
    for line in reads(args.sizes):
        print(line, flush=True)


if __name__ == "__main__":
    main()
