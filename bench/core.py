"""Core benchmark: sign, verify, normalise, append, and reading ``events`` as the store grows.

Each figure sits next to a reference measured in the same run, on the same bodies:
stdlib HMAC for sign, the official SDK's construct_event for verify, pandas'
json_normalize for normalise, a bare sqlite3 insert+commit (same durability) for append,
and the tutorial's ``pd.concat`` of one new row for reading the table.

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


def rate(fn: Callable[[Any], Any], items: list[Any], repeat: int = 3) -> float:
    """Best-of-``repeat`` items per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
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
    ref = rate(lambda e: pd.json_normalize(e, max_level=1), events[: max(50, n // 10)], repeat=1)
    lines.append(row("normalize", ours, "pd.json_normalize", ref))

    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(Path(tmp) / "bench.sqlite")
        parsed = list(zip(bodies, events, strict=True))
        t0 = time.perf_counter()
        for body, event in parsed:
            store.append(body, event)
        ours = n / (time.perf_counter() - t0)
        store.close()
        db = sqlite3.connect(Path(tmp) / "ref.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, h BLOB UNIQUE, body BLOB)")
        t0 = time.perf_counter()
        for body in bodies:
            db.execute("INSERT INTO e (h, body) VALUES (?, ?)", (hashlib.sha256(body).digest(), body))
        ref = n / (time.perf_counter() - t0)
        db.close()
    lines.append(row("append (durable file, one commit each)", ours, "bare sqlite3 insert+commit", ref))
    return lines


def small_body(i: int) -> bytes:
    return (
        b'{"type":"speech_to_text_transcription","event_timestamp":%d,'
        b'"data":{"request_id":"req_%09d","transcription":{"text":"hi"}}}' % (1_700_000_000 + i, i)
    )


def read_after_one_new_event(store: EventStore, first_new: int, runs: int = 50) -> float:
    """Median ms to read ``store.events`` right after appending one new event."""
    times = []
    for i in range(first_new, first_new + runs):
        store.append(small_body(i))
        t0 = time.perf_counter()
        store.events  # noqa: B018
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def concat_one_row(size: int, runs: int = 5) -> float:
    """Median ms of the tutorial's way: ``pd.concat`` of one new row onto a frame of ``size``."""
    seed = pd.DataFrame([normalize(json.loads(small_body(i))) for i in range(5)])
    frame = pd.concat([seed] * (size // len(seed)), ignore_index=True)
    new_row = pd.DataFrame([normalize(json.loads(small_body(0)))])
    return median_ms(lambda: pd.concat([frame, new_row], ignore_index=True), runs)


def reads(sizes: list[int]) -> list[str]:
    lines = [
        "",
        "Reading the table after one new event (median; O(k) means flat as the store grows):",
        "",
        "| stored events | `store.events` | tutorial `pd.concat` of one row | ratio (higher is better) |",
        "|---|---|---|---|",
    ]
    next_id = 10**9  # bodies for the measured appends, apart from the fill
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(Path(tmp) / "grow.sqlite")
        for size in sorted(sizes):
            while len(store) < size:
                start = len(store)
                store.append_many([small_body(i) for i in range(start, min(size, start + 50_000))])
            ours = read_after_one_new_event(store, next_id)
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
